"""Representation similarity by linear centred kernel alignment (CKA).

CKA compares what two layers compute on the same inputs, invariant to orthogonal
transforms and isotropic scaling of either representation, so it can compare
layers of different widths and of different networks: where does a fine-tuned
network still look like its source, and where did it change?

References:
    Kornblith, Norouzi, Lee and Hinton (2019), "Similarity of Neural Network
        Representations Revisited", ICML 2019.
    Song, Smola, Gretton, Bedo and Borgwardt (2012), "Feature Selection via
        Dependence Maximization", JMLR 13 (the unbiased HSIC estimator).
    Nguyen, Raghu and Kornblith (2021), "Do Wide and Deep Networks Learn the Same
        Things?", ICLR 2021 (debiased CKA).
"""

import math

import numpy as np

from keras_tl.errors import DataError

__all__ = ["linear_cka"]


class Activations:
    """Column-centred float64 activations with the statistics CKA needs.

    Products are taken in whichever space is smaller: the N x N Gram matrix when
    there are fewer samples than features (the features are then dropped), the
    D x D feature space otherwise.
    """

    def __init__(self, values, name):
        try:
            array = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(
                f"{name} must be a numeric array of activations. Received: "
                f"{type(values).__name__}. Pass an (N, ...) array, one row per input."
            ) from None
        if array.ndim == 0 or array.shape[0] == 0:
            raise DataError(
                f"{name} must have one row per input. Received: an array of shape "
                f"{array.shape}. Pass an (N, D) array of activations, N >= 2."
            )
        if array.ndim == 1:
            array = array[:, None]
        array = array.reshape(array.shape[0], -1)
        if not np.all(np.isfinite(array)):
            raise DataError(
                f"{name} must be finite. Received: activations with NaN or inf. "
                "Check the model for diverged weights before comparing layers."
            )
        features = array - array.mean(axis=0, keepdims=True)
        self.num_samples, num_features = features.shape
        # Diagonal of the Gram matrix and its sum, for the debiased estimator.
        self.row_norms = np.einsum("ij,ij->i", features, features)
        self.total_norm = float(self.row_norms.sum())
        # Keep whichever of the Gram matrix (N x N) or the features (N x D) is
        # smaller: every product CKA needs can be taken from either.
        self.gram = self.features = None
        if self.num_samples < num_features:
            self.gram = features @ features.T
            self.self_product = float(np.sum(self.gram * self.gram))
        else:
            self.features = features
            covariance = features.T @ features
            self.self_product = float(np.sum(covariance * covariance))


def _cross_product(a, b):
    """Returns <K_a, K_b>_F = |B^T A|_F^2 for centred activations a and b."""
    if a.gram is not None and b.gram is not None:
        return float(np.sum(a.gram * b.gram))
    if a.gram is not None:
        return float(np.sum((a.gram @ b.features) * b.features))
    if b.gram is not None:
        return float(np.sum((b.gram @ a.features) * a.features))
    cross = a.features.T @ b.features
    return float(np.sum(cross * cross))


def _debiased_product(product, a, b):
    """Unbiased HSIC times n(n-3) on linear kernels, from centred activations.

    With K the linear kernel of centred features (so K 1 = 0) and K~ it with its
    diagonal set to zero, Song et al.'s (2012) estimator
    `[tr(K~L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3))`
    reduces to `<K,L> - n/(n-2) k.l + sum(k) sum(l) / ((n-1)(n-2))`, k = diag K.
    The estimator is unchanged by centring the features first.
    """
    n = a.num_samples
    return (
        product
        - n / (n - 2.0) * float(a.row_norms @ b.row_norms)
        + a.total_norm * b.total_norm / ((n - 1.0) * (n - 2.0))
    )


def activations_cka(a, b, debiased):
    if a.num_samples != b.num_samples:
        raise DataError(
            f"x and y must hold activations for the same inputs. Received: "
            f"{a.num_samples} rows in x and {b.num_samples} in y. "
            "Compute both on the same batch of inputs, in the same order."
        )
    minimum = 4 if debiased else 2
    if a.num_samples < minimum:
        estimator = "Debiased CKA" if debiased else "CKA"
        raise DataError(
            f"{estimator} needs at least {minimum} inputs. Received: "
            f"{a.num_samples}. Compare the activations on more inputs."
        )
    cross, self_a, self_b = _cross_product(a, b), a.self_product, b.self_product
    if debiased:
        cross = _debiased_product(cross, a, b)
        self_a = _debiased_product(self_a, a, a)
        self_b = _debiased_product(self_b, b, b)
    denominator = self_a * self_b
    if not denominator > 0.0:
        return None  # A constant (or, debiased, degenerate) representation.
    return float(cross / math.sqrt(denominator))


def linear_cka(x, y, debiased=False):
    """Linear centred kernel alignment between two representations of the same inputs.

    With `X` (N x D1) and `Y` (N x D2) column-centred,
    `CKA = |Y^T X|_F^2 / (|X^T X|_F |Y^T Y|_F)` (Kornblith et al., 2019): 1 for
    representations equal up to an orthogonal transform and isotropic scaling,
    near 0 for unrelated ones. The standard estimator is biased upward when the
    number of features is large relative to N; `debiased=True` replaces each HSIC
    by the unbiased estimator of Song et al. (2012) on linear kernels, as in
    Kornblith et al. (2019) and Nguyen et al. (2021); it can then be slightly
    negative. Computed in float64, in the Gram or the feature space, whichever is
    smaller. Inputs with more than two dimensions are flattened per sample.

    Args:
        x: array-like of shape `(N, ...)`. Activations of the first layer.
        y: array-like of shape `(N, ...)`. Activations of the second layer on the
            same N inputs, in the same order.
        debiased: bool. Use the unbiased HSIC estimator (needs `N >= 4`).
            Defaults to `False`.

    Returns:
        The CKA as a float, or None when a representation is constant over the
        inputs (CKA undefined).

    Example:

    >>> import numpy as np
    >>> from keras_tl.scores.similarity import linear_cka
    >>> x = np.random.default_rng(0).normal(size=(100, 8))
    >>> round(linear_cka(x, 3.0 * x), 6)
    1.0
    """
    return activations_cka(Activations(x, "x"), Activations(y, "y"), debiased)
