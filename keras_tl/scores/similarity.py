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

from keras_tl.errors import ConfigError, DataError

__all__ = ["linear_cka", "layer_similarity"]


class _Activations:
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


def _cka(a, b, debiased):
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
    return _cka(_Activations(x, "x"), _Activations(y, "y"), debiased)


def _layer_names(model, names, argument):
    if isinstance(names, str):
        names = [names]
    try:
        names = list(names)
    except TypeError:
        names = None
    if not names or not all(isinstance(name, str) for name in names):
        raise ConfigError(
            f"{argument} must be a non-empty list of layer names. Received: "
            f"{argument}={names!r}. Pass e.g. {argument}=['dense_1', 'dense_2']."
        )
    available = [layer.name for layer in model.layers]
    unknown = [name for name in names if name not in available]
    if unknown:
        raise DataError(
            f"Model {model.name!r} has no layer named {unknown}. Expected one of "
            f"{available}. Fix {argument} (see model.summary() for names)."
        )
    return names


def _activations(model, names, inputs, batch_size, argument):
    import keras

    from keras_tl.training import predict

    outputs = [model.get_layer(name).output for name in names]
    extractor = keras.Model(model.inputs, outputs)
    predictions = predict(extractor, inputs, batch_size)
    if not isinstance(predictions, (list, tuple)):
        predictions = [predictions]
    return [
        _Activations(values, f"{argument}[{name!r}]")
        for name, values in zip(names, predictions)
    ]


def layer_similarity(
    model_a,
    model_b,
    inputs,
    layers_a,
    layers_b=None,
    debiased=False,
    batch_size=256,
):
    """Linear CKA between the layers of two models on the same inputs.

    Builds a feature extractor `keras.Model(model.inputs, [layer outputs])` for
    each model, runs it once over `inputs` in inference mode, batch by batch, and
    returns the `len(layers_a) x len(layers_b)` matrix of `linear_cka` values
    (Kornblith et al., 2019). Typical use: compare a fine-tuned network with its source to see
    which layers kept the source representation. Each layer's activations are
    flattened per sample and held in memory in float64, so use a few hundred to
    a few thousand inputs.

    Args:
        model_a: `keras.Model`. A functional (or built Sequential) model.
        model_b: `keras.Model`. A second model accepting the same `inputs`.
        inputs: array of N samples, the inputs both models are evaluated on.
        layers_a: list of str. Layer names in `model_a`.
        layers_b: list of str or None. Layer names in `model_b`; defaults to
            `layers_a`.
        debiased: bool. Use the debiased CKA estimator. Defaults to `False`.
        batch_size: int. Inputs per model call. Defaults to `256`.

    Returns:
        A dict with keys `layers_a` (list of str), `layers_b` (list of str) and
        `matrix` (list of lists of float or None, `matrix[i][j]` the CKA between
        `layers_a[i]` and `layers_b[j]`).

    Example:

    >>> import keras, numpy as np
    >>> from keras_tl.scores.similarity import layer_similarity
    >>> inputs = keras.Input((4,))
    >>> hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    >>> model = keras.Model(inputs, keras.layers.Dense(2, name="head")(hidden))
    >>> x = np.random.default_rng(0).normal(size=(64, 4))
    >>> result = layer_similarity(model, model, x, ["hidden", "head"])
    >>> round(result["matrix"][0][0], 6)
    1.0
    """
    is_integer = isinstance(batch_size, int) and not isinstance(batch_size, bool)
    if not is_integer or batch_size < 1:
        raise ConfigError(
            f"batch_size must be a positive integer. Received: "
            f"batch_size={batch_size!r}. Use e.g. batch_size=256."
        )
    layers_a = _layer_names(model_a, layers_a, "layers_a")
    if layers_b is None:
        layers_b = layers_a
    layers_b = _layer_names(model_b, layers_b, "layers_b")
    activations_a = _activations(model_a, layers_a, inputs, batch_size, "layers_a")
    activations_b = _activations(model_b, layers_b, inputs, batch_size, "layers_b")
    matrix = [[_cka(a, b, debiased) for b in activations_b] for a in activations_a]
    return {"layers_a": layers_a, "layers_b": layers_b, "matrix": matrix}
