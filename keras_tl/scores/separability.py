"""Class separability of features: H-score, regularized H-score, GBC, TransRate.

Part of `keras_tl.scores.transferability` (import them from there). Each takes the
(N, D) features of a source layer on the target inputs; the regularized H-score,
GBC and TransRate also come in the authors' published normalisation
(`form="authors"`), compared in docs/scores-notes.md.
"""

import math
import numbers

import numpy as np

from keras_tl.errors import ConfigError, DataError
from keras_tl.scores._score_inputs import (
    as_features,
    check_form,
    class_labels,
    class_sums,
    rank_tolerance,
)

_GBC_MIN_VARIANCE = 1e-4
_GBC_PCA_DIM = 64


def h_score(features, labels):
    """H-score: how much of the feature covariance the class means explain.

    H-score (Bao et al., "An Information-Theoretic Approach to Transferability
    in Task Transfer Learning", ICIP 2019) is
    `tr(pinv(cov(F)) cov(E[F | y]))`, the discriminability of the features for
    the target labels. Eigenvalues of `cov(F)` below
    `max * max(N, D) * machine_epsilon` are treated as zero by the pseudo-inverse.

    Higher is better; `0 <= H-score <= min(C - 1, rank(F))`.

    When the centred features have rank N - 1 (any generic features with
    N <= D + 1) every labelling, informative or random, scores exactly C - 1, so
    this raises `DataError` instead. A rank below D (dead units, collinear columns)
    is scored: the pseudo-inverse then scores the span of the features. Just below
    the bound the score is still biased towards C - 1; prefer
    `regularized_h_score` when N is not much larger than D. Details in
    docs/scores-notes.md ("H-score").

    Args:
        features: array-like or tensor of shape (N, D). Features of the target
            inputs from the source model (not its predictions).
        labels: array-like or tensor of shape (N,). Target class indices 0..C-1.

    Returns:
        The H-score, a Python float.

    Raises:
        DataError: when the centred features have rank N - 1 (typically
            N <= D + 1), where the score is C - 1 for any features.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> labels = np.arange(200) % 4
    >>> features = rng.normal(size=(200, 16)) + np.eye(16)[labels] * 3
    >>> 0.0 <= h_score(features, labels) <= 3.0
    True
    """
    features = as_features(features)
    labels, num_classes = class_labels(labels, len(features))
    centred = features - features.mean(axis=0)
    variances, explained_fractions = _class_explained_spectrum(
        centred, labels, num_classes
    )
    if variances.size >= len(features) - 1:
        raise DataError(
            "h_score is degenerate for these features: they span every centred "
            "direction of the samples, so any labels would score C - 1 = "
            f"{num_classes - 1}. Received: {features.shape[0]} samples with "
            f"{features.shape[1]} features (centred rank {variances.size}). "
            "Expected: more samples than feature dimensions (a centred rank below "
            "N - 1). Score on more target samples, a lower layer or PCA-reduced "
            "features, or use regularized_h_score."
        )
    return float(np.sum(explained_fractions))


def regularized_h_score(features, labels, form="keras_tl"):
    """H-score with a Ledoit-Wolf shrinkage estimate of the feature covariance.

    The shrinkage-based H-score of Ibrahim et al. ("Newer is not Always Better:
    Rethinking Transferability Metrics, Their Peculiarities, Stability and
    Performance", ECML-PKDD 2022, arXiv:2110.06893) replaces `cov(F)` by the
    Ledoit-Wolf estimate `cov_a(F) = (1 - a) cov(F) + a mu I` (`mu = tr(cov(F)) /
    D`, the shrinkage `a` from `sklearn.covariance.ledoit_wolf_shrinkage`) and
    scores `tr(cov_a(F)^-1 (1 - a) cov(E[F | y]))`. It stays informative when
    N <= D, where the plain H-score saturates.

    When the shrinkage is 1 (a sample covariance indistinguishable from isotropic
    noise at this sample size) every labelling would score exactly 0, so this
    raises `DataError` instead.

    Two normalisations (`form`), compared in docs/scores-notes.md
    ("Regularized H-score"):

    * `"keras_tl"` (default): both covariances are the 1/N estimates Ledoit-Wolf
      is defined on; `0 <= regularized H-score <= H-score <= C - 1`.
    * `"authors"`: `regularized_h_score` of thuml/Transfer-Learning-Library
      (`tllib/ranking/hscore.py`): the default form times N / (N - 1), so it can
      exceed C - 1 slightly.

    Args:
        features: array-like or tensor of shape (N, D). Features of the target
            inputs from the source model (not its predictions).
        labels: array-like or tensor of shape (N,). Target class indices 0..C-1.
        form: str. `"keras_tl"` (default) or `"authors"`, see above.

    Returns:
        The regularized H-score, a Python float.

    Raises:
        DataError: when the Ledoit-Wolf shrinkage is 1, where the score is 0 for
            any labels.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> labels = np.arange(40) % 4
    >>> features = rng.normal(size=(40, 64)) + np.eye(64)[labels] * 3
    >>> 0.0 < regularized_h_score(features, labels) < 3.0
    True
    """
    from sklearn.covariance import ledoit_wolf_shrinkage

    check_form(form, "regularized_h_score")
    features = as_features(features)
    labels, num_classes = class_labels(labels, len(features))
    centred = features - features.mean(axis=0)
    variances, explained_fractions = _class_explained_spectrum(
        centred, labels, num_classes
    )
    mean_variance = np.sum(centred**2) / centred.size
    if mean_variance == 0.0:
        return 0.0
    shrinkage = float(ledoit_wolf_shrinkage(centred, assume_centered=True))
    if shrinkage >= 1.0:
        raise DataError(
            "regularized_h_score is degenerate for these features: the Ledoit-Wolf "
            "shrinkage is 1 (their sample covariance is indistinguishable from "
            "isotropic noise at this sample size), so any labels would score 0. "
            f"Received: {features.shape[0]} samples with {features.shape[1]} "
            "features. Expected: a sample covariance with structure beyond its "
            "sampling noise (shrinkage below 1), typically more samples per feature "
            "dimension. Score on more target samples, a lower layer or PCA-reduced "
            "features."
        )
    kept_variances = (1.0 - shrinkage) * variances
    weights = kept_variances / (kept_variances + shrinkage * mean_variance)
    score = float(np.sum(weights * explained_fractions))
    if form == "authors":
        num_samples = len(features)
        score *= num_samples / (num_samples - 1)
    return score


def gbc(features, labels, pca_dim=_GBC_PCA_DIM, form="keras_tl"):
    """Gaussian Bhattacharyya coefficient: how little the classes overlap.

    GBC (Pandy et al., "Transferability Estimation using Bhattacharyya Class
    Separability", CVPR 2022) models each class's features as a spherical Gaussian
    `N(mu_c, s_c I)` (`s_c` the mean of the class's per-dimension 1/n_c variances,
    each floored at 1e-4 as in the authors' code, so standardise features on a
    scale far below 1e-2 first) and sums the Bhattacharyya coefficients
    `BC = exp(-D_B)` over all ordered pairs of distinct classes:
    `GBC = -sum_{c != c'} BC(c, c')`.

    Like the paper, the centred features are first projected onto their first
    `pca_dim` (default 64) principal axes; without it every `BC` of wide features
    underflows towards 0. Features with `D <= pca_dim` are scored as given, and
    axes beyond the rank of the features get coordinate 0, so the score is always
    computed in `min(pca_dim, D)` dimensions.

    Two forms of the spherical Bhattacharyya distance (`form`), with
    `s = (s_c + s_c') / 2` and d the dimension after the reduction:

    * `"keras_tl"` (default): the exact distance between d-dimensional spherical
      Gaussians, `D_B = |mu_c - mu_c'|^2 / (8 s) + d / 2 ln(s / sqrt(s_c s_c'))`.
    * `"authors"`: the authors' code (google-research/google-research,
      `stable_transfer/transferability/gbc.py`), which counts the log-determinant
      term once: `D_B = |mu_c - mu_c'|^2 / (8 s) + 1/2 ln(s / sqrt(s_c s_c'))`.
      The two agree when the class variances are equal; see
      docs/scores-notes.md ("GBC").

    Higher is better; `-C (C - 1) <= GBC <= 0`, and 0 means perfectly separated
    classes.

    Args:
        features: array-like or tensor of shape (N, D). Features of the target
            inputs from the source model (not its predictions).
        labels: array-like or tensor of shape (N,). Target class indices 0..C-1.
        pca_dim: int or None. Number of principal components to keep (default
            64, as in the paper); None scores the features as given.
        form: str. `"keras_tl"` (default) or `"authors"`, see above.

    Returns:
        The GBC score, a Python float.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> labels = np.arange(200) % 4
    >>> features = rng.normal(size=(200, 16)) + np.eye(16)[labels] * 3
    >>> gbc(features, labels) > gbc(rng.normal(size=(200, 16)), labels)
    True
    """
    check_form(form, "gbc")
    if pca_dim is not None and not (
        isinstance(pca_dim, numbers.Integral)
        and not isinstance(pca_dim, bool)
        and pca_dim >= 1
    ):
        raise ConfigError(
            "GBC pca_dim must be a positive integer or None. "
            f"Received: pca_dim={pca_dim!r}. Use the default pca_dim=64 (the "
            "paper's), or None to score the features as given."
        )
    features = as_features(features)
    labels, num_classes = class_labels(labels, len(features))
    centred = features - features.mean(axis=0)
    if pca_dim is not None and centred.shape[1] > pca_dim:
        centred = _principal_coordinates(centred, int(pca_dim))
    num_features = centred.shape[1]
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    means = class_sums(centred, labels, num_classes) / counts[:, None]
    deviations = centred - means[labels]
    variances = class_sums(deviations**2, labels, num_classes) / counts[:, None]
    spherical = np.mean(np.maximum(variances, _GBC_MIN_VARIANCE), axis=1)
    squared_norms = np.sum(means**2, axis=1)
    squared_distances = np.maximum(
        squared_norms[:, None] + squared_norms[None, :] - 2.0 * means @ means.T, 0.0
    )
    pair_variances = (spherical[:, None] + spherical[None, :]) / 2.0
    log_spherical = np.log(spherical)
    log_term_weight = num_features / 2.0 if form == "keras_tl" else 0.5
    distances = squared_distances / (8.0 * pair_variances) + log_term_weight * (
        np.log(pair_variances) - 0.5 * (log_spherical[:, None] + log_spherical[None, :])
    )
    coefficients = np.exp(-distances)
    np.fill_diagonal(coefficients, 0.0)
    return float(-np.sum(coefficients))


def transrate(features, labels, eps=1e-4, form="keras_tl"):
    """TransRate: the mutual information between features and labels as coding rate.

    TransRate (Huang et al., "Frustratingly Easy Transferability Estimation",
    ICML 2022) is the coding rate of all features minus the average coding rate
    of the features of each class, `R(Z, eps) - 1/C sum_c R(Z_c, eps)`, with
    `R(Z, eps) = 1/2 logdet(I + Z^T Z / (n eps))` for a block Z of n rows, as in
    the authors' code. The features are centred; the class blocks are rows of the
    centred matrix and are not re-centred.

    Two normalisations (`form`), compared in docs/scores-notes.md ("TransRate"):

    * `"keras_tl"` (default): the centred features are scaled to a mean squared
      row norm of 1, which makes the score invariant to the feature scale.
    * `"authors"`: the code in the paper's appendix (`transrate` in
      thuml/Transfer-Learning-Library `tllib/ranking/transrate.py`): centred but
      not scaled, so the score depends on the feature scale through `Z^T Z / eps`.

    Higher is better. The value is in nats and depends on `eps`. When N <= D it
    carries a term that depends only on the sample counts, so compare feature sets
    only on the same target samples.

    Args:
        features: array-like or tensor of shape (N, D). Features of the target
            inputs from the source model (not its predictions).
        labels: array-like or tensor of shape (N,). Target class indices 0..C-1.
        eps: float. Distortion of the coding rate (default 1e-4, as in the paper).
        form: str. `"keras_tl"` (default) or `"authors"`, see above.

    Returns:
        The TransRate score, a Python float.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> labels = np.arange(200) % 4
    >>> features = rng.normal(size=(200, 16)) + np.eye(16)[labels] * 3
    >>> transrate(features, labels) > transrate(rng.normal(size=(200, 16)), labels)
    True
    """
    if not (
        isinstance(eps, numbers.Real)
        and not isinstance(eps, bool)
        and math.isfinite(eps)
        and eps > 0
    ):
        raise ConfigError(
            "TransRate eps must be a positive number. "
            f"Received: eps={eps!r}. Use the default eps=1e-4."
        )
    check_form(form, "transrate")
    features = as_features(features)
    labels, num_classes = class_labels(labels, len(features))
    centred = features - features.mean(axis=0)
    squared_norm = np.sum(centred**2)
    if squared_norm == 0.0:
        return 0.0
    if form == "keras_tl":
        centred = centred * math.sqrt(len(centred) / squared_norm)
    class_rates = [
        _coding_rate(centred[labels == index], eps) for index in range(num_classes)
    ]
    return float(_coding_rate(centred, eps) - np.mean(class_rates))


def _class_explained_spectrum(centred, labels, num_classes):
    """Eigen-directions of cov(F) and the share of each one the class means explain.

    Returns the nonzero eigenvalues `v_j` of the 1/N covariance of F and, for each,
    `f_j = u_j^T P u_j` in [0, 1], where `u_j` is the unit direction in sample space
    and P projects onto per-class averages. Then `tr(pinv(cov F) cov E[F|y]) =
    sum_j f_j` (H-score) and `q_j^T cov(E[F|y]) q_j = v_j f_j`; every term is
    non-negative, so the scores are too, even in floating point.
    """
    num_samples, num_features = centred.shape
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    if num_samples > num_features:
        eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred)
        if eigenvalues[-1] <= 0.0:
            return np.zeros(0), np.zeros(0)
        keep = eigenvalues > rank_tolerance(eigenvalues, centred.shape)
        projected = class_sums(centred, labels, num_classes) @ eigenvectors[:, keep]
        explained = np.sum(projected**2 / counts[:, None], axis=0) / eigenvalues[keep]
    else:
        eigenvalues, eigenvectors = np.linalg.eigh(centred @ centred.T)
        if eigenvalues[-1] <= 0.0:
            return np.zeros(0), np.zeros(0)
        keep = eigenvalues > rank_tolerance(eigenvalues, centred.shape)
        projected = class_sums(eigenvectors[:, keep], labels, num_classes)
        explained = np.sum(projected**2 / counts[:, None], axis=0)
    return eigenvalues[keep] / num_samples, explained


def _principal_coordinates(centred, num_components):
    """Coordinates of centred rows on their first `num_components` principal axes.

    Uses the eigendecomposition of the smaller Gram matrix. Axes beyond the rank
    of `centred` carry no variance: their coordinates are 0 (exactly when N <= D,
    where they are zero columns; to round-off otherwise).
    """
    num_samples, num_features = centred.shape
    if num_samples > num_features:
        _, eigenvectors = np.linalg.eigh(centred.T @ centred)
        return centred @ eigenvectors[:, ::-1][:, :num_components]
    eigenvalues, eigenvectors = np.linalg.eigh(centred @ centred.T)
    eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]
    kept = min(num_components, num_samples)
    scales = np.where(
        eigenvalues[:kept] > rank_tolerance(eigenvalues, centred.shape),
        np.sqrt(np.maximum(eigenvalues[:kept], 0.0)),
        0.0,
    )
    coordinates = np.zeros((num_samples, num_components))
    coordinates[:, :kept] = eigenvectors[:, :kept] * scales
    return coordinates


def _coding_rate(block, eps):
    """1/2 logdet(I + Z^T Z / (n eps)), through the smaller of the two Gram matrices."""
    num_rows, num_columns = block.shape
    gram = block @ block.T if num_rows < num_columns else block.T @ block
    shifted = np.eye(len(gram)) + gram / (num_rows * eps)
    return float(np.sum(np.log(np.diag(np.linalg.cholesky(shifted)))))
