"""Transferability scores: could a cheap number predict how well a source transfers?

Each score looks at what a source model produces on the *target* task's inputs and
says, without any fine-tuning, how well that output suits the target labels. Two
kinds of input exist:

* "features": the (N, D) activations of a layer of the source model (LogME,
  H-score, regularized H-score, GBC, TransRate);
* "predictions": the source model's own class probabilities or predicted classes on
  the target inputs (LEEP, NCE).

Every score is higher-is-better, is a pure function (NumPy arrays or backend
tensors in, a Python float out) and computes in float64. `SCORES` maps each name to
the input it needs and its function, so callers can loop over them.

GBC, TransRate and the regularized H-score also come in the normalisation of their
authors' published code, with `form="authors"` (the default `form="keras_tl"` is
this package's normalisation); each function's docstring says where the two differ
and which file of which repository the authors' form follows, and
`docs/scores-notes.md` collects those notes. A score that the data make
label-independent raises `DataError` instead of returning a number that would be
ranked: the H-score when the centred features span every direction of the samples
(it would be C - 1), the regularized H-score when the Ledoit-Wolf shrinkage is 1
(it would be 0).
"""

import dataclasses
import math
import numbers
from typing import Callable

import numpy as np
from scipy import sparse

from keras_tl.errors import ConfigError, DataError

__all__ = [
    "SCORES",
    "ScoreSpec",
    "gbc",
    "h_score",
    "leep",
    "logme",
    "nce",
    "regularized_h_score",
    "transrate",
]

_LOGME_MAX_ITERATIONS = 11
_LOGME_TOLERANCE = 1e-3
_LOGME_EPSILON = 1e-5
_PROBABILITY_TOLERANCE = 1e-3
_GBC_MIN_VARIANCE = 1e-4
_GBC_PCA_DIM = 64
_FORMS = ("keras_tl", "authors")
_EPS = np.finfo(np.float64).eps


# ---------------------------------------------------------------------------------
# Scores


def logme(features, labels, kind="classification"):
    """Log maximum evidence of a Bayesian linear model on the features.

    LogME (You et al., "LogME: Practical Assessment of Pre-trained Models for
    Transfer Learning", ICML 2021; fixed-point form from "Ranking and Tuning
    Pre-trained Models", JMLR 2022) fits, for every target column `y`, a linear
    model `y = F w + noise` with Gaussian prior `w ~ N(0, 1/alpha)` and noise
    `N(0, 1/beta)`, maximises the evidence over `alpha` and `beta` by the
    fixed-point iteration, and reports the maximum log evidence divided by N,
    averaged over the columns. The columns are the one-hot class indicators for
    classification and the target columns for regression.

    The log determinant counts every direction of the D-dimensional weight space:
    with `sigma_i` the k nonzero squared singular values of F,
    `ln|alpha I + beta F^T F| = sum_{i<=k} ln(alpha + beta sigma_i) + (D - k) ln alpha`,
    so the `D/2 ln alpha` term of the evidence and the `(D - k)` zero directions
    combine to `k/2 ln alpha`, and the evidence depends only on the k directions
    the features span. Appending all-zero or collinear columns, or embedding the
    features in a wider space (`F Q` with `Q Q^T = I`), leaves the score unchanged,
    including when N <= D.

    Where this differs from the published code: the fixed-point code of the JMLR
    paper (thuml/LogME, `LogME.py`, `LogME._fit_fixed_point`) keeps `D/2 ln alpha`
    but sums `ln(alpha + beta sigma_i)` over the k retained directions only (at
    most min(N, D), those with singular value above 1e-10 when N > D), so it drops
    the `(D - k) ln alpha` of the zero directions and its score grows with the
    width whenever k < D (N <= D, zero or collinear columns). When F has full
    column rank (k = D) the two agree. The ICML 2021 code in the same file
    (`LogME._fit_icml`) eigendecomposes the D x D matrix `F^T F` and keeps every
    direction, like this function, but stops at a 1% rather than a 0.1% change
    of `alpha / beta` and adds the 1e-5 stabiliser inside the evidence, so its
    values differ slightly.

    One decomposition serves every column: the eigendecomposition of the D x D
    matrix `F^T F` when N > D, otherwise the thin SVD of F (both give the squared
    singular values `sigma`; the cheaper one is used). Directions with
    `sigma <= max(sigma) * max(N, D) * machine_epsilon` are treated as zero (their
    `ln(alpha + beta sigma)` is `ln alpha` to working precision, so the threshold
    does not move the score). The fixed-point iteration runs on all columns at
    once (at most 11 steps, each column stopping when its `alpha / beta` changes
    by at most 0.1%).

    Higher is better. The value is a log-likelihood per sample and is unbounded
    (it grows without limit as the targets become an exact linear function of the
    features), so compare it only across feature sets on the same target data.

    Args:
        features: array-like or tensor of shape (N, D). Features of the target
            inputs from the source model (not its predictions).
        labels: array-like or tensor. For `kind="classification"`, integer class
            indices 0..C-1 of shape (N,); for `kind="regression"`, float targets
            of shape (N,) or (N, K).
        kind: str. `"classification"` (default) or `"regression"`.

    Returns:
        The LogME score, a Python float.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> labels = np.arange(200) % 4
    >>> features = rng.normal(size=(200, 16)) + np.eye(16)[labels] * 3
    >>> logme(features, labels) > logme(rng.normal(size=(200, 16)), labels)
    True
    """
    features = _features(features)
    num_samples = len(features)
    if kind == "classification":
        labels, num_classes = _class_labels(labels, num_samples)
        target_norms = np.bincount(labels, minlength=num_classes).astype(np.float64)

        def targets_transpose_times(matrix):
            return _class_sums(matrix, labels, num_classes)

    elif kind == "regression":
        targets = _regression_targets(labels, num_samples)
        target_norms = np.sum(targets**2, axis=0)

        def targets_transpose_times(matrix):
            return targets.T @ matrix

    else:
        raise ConfigError(
            "Unknown LogME kind. Expected one of ['classification', 'regression']. "
            f"Received: kind={kind!r}"
        )
    sigma, projections = _logme_spectrum(features, targets_transpose_times)
    squared_projections = projections**2
    # |y|^2 - |x|^2: the part of each column outside the span of the features.
    residual_norms = np.maximum(target_norms - squared_projections.sum(axis=1), 0.0)
    evidences = _logme_evidences(
        sigma, squared_projections, residual_norms, num_samples
    )
    return float(np.mean(evidences))


def leep(source_probabilities, labels):
    """Log expected empirical prediction of the source classifier.

    LEEP (Nguyen et al., "LEEP: A New Measure to Evaluate Transferability of
    Learned Representations", ICML 2020) builds the empirical conditional
    distribution of target labels given source classes, `P(y | z)`, from the
    source model's softmax outputs `theta` on the target inputs, and scores the
    average log-likelihood of the "dummy" classifier `sum_z P(y | z) theta_z`:
    `LEEP = 1/N sum_i ln sum_z P(y_i | z) theta_iz`.

    Higher is better; LEEP <= 0, and 0 means the source classes determine the
    target labels exactly.

    Args:
        source_probabilities: array-like or tensor of shape (N, Cs). The source
            model's class probabilities (softmax outputs, rows summing to 1) on
            the target inputs: predictions, not features.
        labels: array-like or tensor of shape (N,). Target class indices 0..C-1.

    Returns:
        The LEEP score, a Python float.

    Example:

    >>> probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]])
    >>> round(leep(probabilities, np.array([0, 0, 1, 1])), 4)
    -0.3426
    """
    theta = _probabilities(source_probabilities)
    labels, num_classes = _class_labels(labels, len(theta), "source_probabilities")
    joint = _class_sums(theta, labels, num_classes) / len(theta)
    marginal = joint.sum(axis=0)
    conditional = np.divide(
        joint, marginal, out=np.zeros_like(joint), where=marginal > 0
    )
    expected_likelihood = np.einsum("iz,iz->i", theta, conditional[labels])
    return float(np.mean(np.log(expected_likelihood)))


def nce(source_predictions, labels):
    """Negative conditional entropy of the target labels given the source labels.

    NCE (Tran et al., "Transferability and Hardness of Supervised Classification
    Tasks", ICCV 2019) takes the source model's predicted class `z_i` for each
    target input and measures how well it determines the target label:
    `NCE = sum_{y,z} P(y, z) ln P(y | z) = -H(Y | Z)`, with empirical
    probabilities.

    Higher is better; `-ln C <= NCE <= 0`, and 0 means every source class maps to
    a single target class.

    Args:
        source_predictions: array-like or tensor. Either the source model's
            predicted class indices, shape (N,), or its probabilities or logits,
            shape (N, Cs), of which the argmax is taken: predictions, not features.
        labels: array-like or tensor of shape (N,). Target class indices 0..C-1.

    Returns:
        The NCE score, a Python float.

    Example:

    >>> source = np.array([0, 0, 1, 1])
    >>> nce(source, np.array([0, 0, 1, 1]))
    0.0
    """
    source_labels = _source_labels(source_predictions)
    labels, num_classes = _class_labels(
        labels, len(source_labels), "source_predictions"
    )
    _, source_labels = np.unique(source_labels, return_inverse=True)
    num_source_classes = int(source_labels.max()) + 1
    counts = np.bincount(
        labels * num_source_classes + source_labels,
        minlength=num_classes * num_source_classes,
    ).reshape(num_classes, num_source_classes)
    joint = counts / len(labels)
    marginal = np.broadcast_to(joint.sum(axis=0), joint.shape)
    seen = joint > 0
    return float(np.sum(joint[seen] * np.log(joint[seen] / marginal[seen])))


def h_score(features, labels):
    """H-score: how much of the feature covariance the class means explain.

    H-score (Bao et al., "An Information-Theoretic Approach to Transferability
    in Task Transfer Learning", ICIP 2019) is
    `tr(pinv(cov(F)) cov(E[F | y]))`, the discriminability of the features for
    the target labels. Both covariances use the same normalisation, so it
    cancels. Eigenvalues of `cov(F)` below `max * max(N, D) * machine_epsilon`
    are treated as zero by the pseudo-inverse.

    Higher is better; `0 <= H-score <= min(C - 1, rank(F))`.

    Degenerate features are refused, not scored. The H-score equals
    `tr(P_F P_y)`, where `P_F` projects the centred samples onto the span of the
    centred features and `P_y` onto the C - 1 centred class indicators. When the
    centred features have rank N - 1 (any generic features with N <= D + 1) they
    span every centred direction of the samples, `P_F` is the identity there and
    every labelling, informative or random, scores exactly C - 1; this raises
    `DataError` instead. The condition is on the rank reaching N - 1, not on
    `rank < D`: a rank below D (all-zero dead units, duplicated or collinear
    columns) only makes `cov(F)` singular, and the pseudo-inverse then scores
    the span of the features, which stays informative, as do N <= D features of
    low rank. Just below the bound the score is still biased towards C - 1;
    prefer `regularized_h_score` when N is not much larger than D.

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
    features = _features(features)
    labels, num_classes = _class_labels(labels, len(features))
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
    scores `tr(cov_a(F)^-1 (1 - a) cov(E[F | y]))`. This stays informative when
    N <= D, where the plain H-score saturates: the shrinkage is positive there,
    so every direction is weighted by `(1 - a) v / ((1 - a) v + a mu) < 1`
    according to its variance `v`.

    It has its own degenerate case, refused with `DataError`: Ledoit-Wolf clips
    the shrinkage at 1 when the sample covariance cannot be told apart from
    isotropic noise at this sample size (nearly isotropic features, few samples
    per dimension); `cov_a` is then `mu I`, the factor `1 - a` is 0 and every
    labelling, informative or not, would score exactly 0.

    Two normalisations (`form`):

    * `"keras_tl"` (default): both covariances are the maximum-likelihood (1/N)
      estimates Ledoit-Wolf is defined on; then
      `0 <= regularized H-score <= H-score <= C - 1`.
    * `"authors"`: the published implementation, `regularized_h_score` in
      thuml/Transfer-Learning-Library `tllib/ranking/hscore.py`, which cites the
      paper (no repository of the authors' own was found to read): centre F,
      fit `sklearn.covariance.LedoitWolf`, take `np.cov` of the per-sample class
      means, which divides by N - 1, and score
      `tr(pinv(cov_a, rcond=1e-15) (1 - a) cov(E[F | y]))`. It is the default
      form times N / (N - 1) (the pseudo-inverse is the inverse whenever a > 0),
      so it can exceed C - 1 slightly.

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

    _check_form(form, "regularized_h_score")
    features = _features(features)
    labels, num_classes = _class_labels(labels, len(features))
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
    Separability", CVPR 2022) models each class's features as a Gaussian and sums
    the Bhattacharyya coefficients `BC = exp(-D_B)` over all ordered pairs of
    distinct classes: `GBC = -sum_{c != c'} BC(c, c')`. This uses the paper's
    recommended "spherical" Gaussians `N(mu_c, s_c I)`, where `s_c` is the mean
    over dimensions of the class's per-dimension (1/n_c) variances, each floored
    at 1e-4 as in the authors' code (so features on a scale far below 1e-2 should
    be standardised first).

    Like the paper, the features are first reduced to `pca_dim` (default 64)
    dimensions by PCA: the centred features are projected onto their first
    `pca_dim` principal axes. Without it the score of wide features collapses:
    `D_B` grows linearly with D, every `BC` underflows towards 0 and a ranking
    by GBC ranks round-off. When `D <= pca_dim` the features are scored as
    given; `pca_dim=None` disables the reduction. When the centred features have
    rank r < pca_dim < D (for example N <= pca_dim), the `pca_dim - r` axes
    beyond the rank carry no variance and their coordinates are 0, so the score
    is always computed in `min(pca_dim, D)` dimensions (scikit-learn's PCA,
    used by the authors, refuses `n_components > min(N, D)`). Axes with equal
    variance at the cut make the reduction, and so the score, depend on which
    of them is kept.

    Two forms of the spherical Bhattacharyya distance (`form`), with
    `s = (s_c + s_c') / 2` and d the dimension after the reduction:

    * `"keras_tl"` (default): the exact distance between d-dimensional spherical
      Gaussians, `D_B = |mu_c - mu_c'|^2 / (8 s) + d / 2 ln(s / sqrt(s_c s_c'))`.
    * `"authors"`: the authors' code (google-research/google-research,
      `stable_transfer/transferability/gbc.py`, with the 64-component PCA of
      `features_targets_utils.pca_reduction` configured in
      `config_transferability_source_selection.py`), which sums the
      log-determinant term over the scalar spherical variances and so counts it
      once: `D_B = |mu_c - mu_c'|^2 / (8 s) + 1/2 ln(s / sqrt(s_c s_c'))`. The
      two agree when the class variances are equal. Their PCA output is cast to
      float32; this function stays in float64.

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
    _check_form(form, "gbc")
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
    features = _features(features)
    labels, num_classes = _class_labels(labels, len(features))
    centred = features - features.mean(axis=0)
    if pca_dim is not None and centred.shape[1] > pca_dim:
        centred = _principal_coordinates(centred, int(pca_dim))
    num_features = centred.shape[1]
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    means = _class_sums(centred, labels, num_classes) / counts[:, None]
    deviations = centred - means[labels]
    variances = _class_sums(deviations**2, labels, num_classes) / counts[:, None]
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
    the authors' code (the paper writes `d / (n eps^2)`; the code folds that
    constant into `eps`). The features are centred; the class blocks are rows of
    the centred matrix and are not re-centred, as in the authors' code.

    Two normalisations (`form`):

    * `"keras_tl"` (default): after centring, the features are scaled so that
      the mean squared row norm is 1 (`|Z|_F^2 = N`), which makes the score
      invariant to the scale of the features (and `eps` a fixed fraction of
      their mean squared norm).
    * `"authors"`: the code printed in the paper's appendix (reproduced as
      `transrate` in thuml/Transfer-Learning-Library
      `tllib/ranking/transrate.py`): centred but not scaled, so the score
      depends on the feature scale through `Z^T Z / eps` (for example features
      scaled by 0.01 score as if eps were 1e4 times larger). The experiment
      pipeline of the authors' repository (Long-Kai/TransRate,
      `generate_transrate/transrate.py` and `extract_result_utils.py`)
      normalises differently again (unit-norm rows, eigenvalues divided by
      their sum, rates divided by the rank, classes weighted by n_c / N,
      eps chosen per experiment); that variant is not offered.

    Higher is better. The value is in nats and depends on `eps`; it is bounded
    above by `R(Z, eps)` and typically positive. Unlike the H-score it has no
    label-independent value when N <= D (the `eps` term keeps the rates finite),
    so it is not refused there; its value then carries a term
    `(N - 1 - N / C) / 2 ln(1 / eps)` that depends only on the sample counts,
    while the rest still depends on the features: compare feature sets only on
    the same target samples.

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
    _check_form(form, "transrate")
    features = _features(features)
    labels, num_classes = _class_labels(labels, len(features))
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


@dataclasses.dataclass(frozen=True)
class ScoreSpec:
    """What a transferability score needs and how to call it.

    Args:
        name: str. The score's name, a key of `SCORES`.
        needs: str. `"features"` (activations of a source layer on the target
            inputs) or `"predictions"` (the source model's class probabilities
            on the target inputs).
        function: callable. `function(inputs, labels) -> float`, higher is better.
        options: tuple of str. Keyword arguments `function` accepts beyond
            `(inputs, labels)`, each with a default (e.g. `"form"`, which selects
            the authors' normalisation where a score offers it). Default: none.

    Example:

    >>> spec = SCORES["leep"]
    >>> spec.needs
    'predictions'
    >>> SCORES["gbc"].options
    ('pca_dim', 'form')
    """

    name: str
    needs: str
    function: Callable
    options: tuple = ()


SCORES = {
    spec.name: spec
    for spec in (
        ScoreSpec("logme", "features", logme, ("kind",)),
        ScoreSpec("leep", "predictions", leep),
        ScoreSpec("nce", "predictions", nce),
        ScoreSpec("h_score", "features", h_score),
        ScoreSpec(
            "regularized_h_score", "features", regularized_h_score, ("form",)
        ),
        ScoreSpec("gbc", "features", gbc, ("pca_dim", "form")),
        ScoreSpec("transrate", "features", transrate, ("eps", "form")),
    )
}


# ---------------------------------------------------------------------------------
# Numerical helpers


def _check_form(form, score_name):
    if not isinstance(form, str) or form not in _FORMS:
        raise ConfigError(
            f"Unknown {score_name} form. Expected one of {list(_FORMS)}. "
            f"Received: form={form!r}. Use form='keras_tl' (the default) or "
            "form='authors' (the authors' published normalisation)."
        )


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
        eigenvalues[:kept] > _rank_tolerance(eigenvalues, centred.shape),
        np.sqrt(np.maximum(eigenvalues[:kept], 0.0)),
        0.0,
    )
    coordinates = np.zeros((num_samples, num_components))
    coordinates[:, :kept] = eigenvectors[:, :kept] * scales
    return coordinates


def _rank_tolerance(squared_singular_values, shape):
    """Squared singular values at or below this are numerically zero."""
    return np.max(squared_singular_values) * max(shape) * _EPS


def _logme_spectrum(features, targets_transpose_times):
    """Returns sigma (k,) and the projections x = U^T y of every column (C, k)."""
    num_samples, num_features = features.shape
    if num_samples > num_features:
        eigenvalues, eigenvectors = np.linalg.eigh(features.T @ features)
        keep = eigenvalues > _rank_tolerance(eigenvalues, features.shape)
        sigma = eigenvalues[keep]
        # U = F V / s, so U^T y = V^T (F^T y) / s without forming U (N x k).
        projections = (
            targets_transpose_times(features) @ eigenvectors[:, keep] / np.sqrt(sigma)
        )
    else:
        left, singular_values, _ = np.linalg.svd(features, full_matrices=False)
        sigma = singular_values**2
        keep = sigma > _rank_tolerance(sigma, features.shape)
        sigma = sigma[keep]
        projections = targets_transpose_times(left[:, keep])
    if sigma.size == 0:
        raise DataError(
            "features must not be all zero. Received: features whose every entry "
            "is 0. Check the layer the features were taken from."
        )
    return sigma, projections


def _logme_evidences(sigma, squared_projections, residual_norms, num_samples):
    """Runs the fixed-point iteration on all columns at once; returns evidences.

    Arrays are laid out (columns, k) so each column's sums run over a contiguous
    row, like the scalar algorithm's. A column leaves the active set at the
    iteration where the scalar algorithm would break. The evidence is the
    paper's `D/2 ln alpha - 1/2 ln|alpha I + beta F^T F| + ...` with the
    `(D - k) ln alpha` of the zero directions counted (k = len(sigma)).
    """
    num_columns = squared_projections.shape[0]
    alpha = np.ones(num_columns)
    beta = np.ones(num_columns)
    m2 = np.zeros(num_columns)
    res2 = np.zeros(num_columns)
    active = np.arange(num_columns)
    for _ in range(_LOGME_MAX_ITERATIONS):
        t = (alpha[active] / beta[active])[:, None]
        x2 = squared_projections[active]
        gamma = np.sum(sigma / (sigma + t), axis=1)
        m2[active] = np.sum(sigma * x2 / (t + sigma) ** 2, axis=1)
        res2[active] = (
            np.sum(x2 / (1.0 + sigma / t) ** 2, axis=1) + residual_norms[active]
        )
        alpha[active] = gamma / (m2[active] + _LOGME_EPSILON)
        beta[active] = (num_samples - gamma) / (res2[active] + _LOGME_EPSILON)
        t = t[:, 0]
        converged = np.abs(alpha[active] / beta[active] - t) / t <= _LOGME_TOLERANCE
        active = active[~converged]
        if active.size == 0:
            break
    # D/2 ln alpha - 1/2 [sum_{i<=k} ln(alpha + beta sigma_i) + (D - k) ln alpha]
    # = k/2 ln alpha - 1/2 sum_{i<=k} ln(alpha + beta sigma_i)
    # = -1/2 sum_{i<=k} ln(1 + sigma_i beta / alpha): the alpha terms cancel.
    log_determinant_ratios = np.sum(
        np.log1p(sigma * (beta / alpha)[:, None]), axis=1
    )
    evidences = (
        num_samples / 2.0 * np.log(beta)
        - 0.5 * log_determinant_ratios
        - beta / 2.0 * res2
        - alpha / 2.0 * m2
        - num_samples / 2.0 * np.log(2.0 * np.pi)
    )
    return evidences / num_samples


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
        keep = eigenvalues > _rank_tolerance(eigenvalues, centred.shape)
        class_sums = _class_sums(centred, labels, num_classes) @ eigenvectors[:, keep]
        explained = np.sum(class_sums**2 / counts[:, None], axis=0) / eigenvalues[keep]
    else:
        eigenvalues, eigenvectors = np.linalg.eigh(centred @ centred.T)
        if eigenvalues[-1] <= 0.0:
            return np.zeros(0), np.zeros(0)
        keep = eigenvalues > _rank_tolerance(eigenvalues, centred.shape)
        class_sums = _class_sums(eigenvectors[:, keep], labels, num_classes)
        explained = np.sum(class_sums**2 / counts[:, None], axis=0)
    return eigenvalues[keep] / num_samples, explained


def _coding_rate(block, eps):
    """1/2 logdet(I + Z^T Z / (n eps)), through the smaller of the two Gram matrices."""
    num_rows, num_columns = block.shape
    gram = block @ block.T if num_rows < num_columns else block.T @ block
    shifted = np.eye(len(gram)) + gram / (num_rows * eps)
    return float(np.sum(np.log(np.diag(np.linalg.cholesky(shifted)))))


def _class_sums(matrix, labels, num_classes):
    """Y^T M for the one-hot Y of `labels`: the (C, columns) per-class row sums."""
    indicator = sparse.csr_matrix(
        (np.ones(len(labels)), (labels, np.arange(len(labels)))),
        shape=(num_classes, len(labels)),
    )
    return np.asarray(indicator @ matrix)


# ---------------------------------------------------------------------------------
# Input conversion and validation


def _to_numpy(value):
    """NumPy view of an array-like or a CPU tensor (torch, tensorflow and jax
    tensors convert through `__array__`; no keras import, so scores stay pure)."""
    if hasattr(value, "detach"):  # A torch tensor that may require grad.
        value = value.detach().cpu()
    return np.asarray(value)


def _numeric(value, name):
    array = _to_numpy(value)
    if array.dtype == bool:
        array = array.astype(np.int64)
    if not (
        np.issubdtype(array.dtype, np.integer)
        or np.issubdtype(array.dtype, np.floating)
    ):
        raise DataError(
            f"{name} must be numeric. Received: dtype {array.dtype}. "
            f"Pass {name} as a float or integer array."
        )
    return array


def _features(value, name="features"):
    array = _numeric(value, name)
    if array.ndim != 2:
        raise DataError(
            f"{name} must be a 2-D array of shape (num_samples, num_features). "
            f"Received: shape {array.shape}. Flatten them first, e.g. "
            f"{name}.reshape(len({name}), -1)."
        )
    if array.shape[0] < 2 or array.shape[1] < 1:
        raise DataError(
            f"{name} must have at least 2 samples and 1 column. "
            f"Received: shape {array.shape}. Score on more samples."
        )
    # No copy when already float64: the scores only read their inputs.
    array = array.astype(np.float64, copy=False)
    # A finite sum proves every entry finite in one pass without allocating; only
    # when it is not (a NaN, an infinity, or an overflow) check element-wise.
    if not np.isfinite(np.sum(array)):
        finite = np.isfinite(array)
        if not finite.all():
            row, column = np.argwhere(~finite)[0]
            num_bad = finite.size - np.count_nonzero(finite)
            raise DataError(
                f"{name} must be finite. Received: {num_bad} NaN or infinite values "
                f"(first at row {row}, column {column}). "
                "Drop or impute those samples before scoring."
            )
    return array


def _check_length(num_labels, num_samples, inputs_name):
    if num_labels != num_samples:
        raise DataError(
            f"{inputs_name} and labels must have one row per sample. Received: "
            f"{num_samples} rows of {inputs_name} and {num_labels} labels. Pass the "
            f"labels of exactly the samples the {inputs_name} were computed on."
        )


def _integer_values(value, name, expected, fix):
    """1-D int64 array of `value`, which must hold whole numbers."""
    array = _to_numpy(value)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise DataError(
            f"{name} must be a 1-D array with one entry per sample. Received: shape "
            f"{array.shape}. {fix}"
        )
    if array.dtype == bool:
        return array.astype(np.int64)
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.int64)
    if np.issubdtype(array.dtype, np.floating):
        whole = np.isfinite(array) & (array == np.round(array))
        if whole.all():
            return array.astype(np.int64)
        example = float(array[~whole][0])
    else:
        example = array.reshape(-1)[0].item() if array.size else None
    raise DataError(
        f"{name} must be {expected}. Received: dtype {array.dtype} with values like "
        f"{example!r}. {fix}"
    )


def _class_labels(value, num_samples, inputs_name="features"):
    """Validated class indices (int64, shape (N,)) and the number of classes C."""
    fix = "Convert labels with np.unique(labels, return_inverse=True)."
    expected = "integers 0..C-1 for a classification score"
    labels = _integer_values(value, "labels", expected, fix)
    _check_length(len(labels), num_samples, inputs_name)
    present = np.unique(labels)
    if present[0] != 0 or present[-1] != len(present) - 1:
        shown = ", ".join(str(v) for v in present[:6]) + (
            ", ..." if len(present) > 6 else ""
        )
        raise DataError(
            "labels must be integers 0..C-1 for a classification score. Received: "
            f"class values [{shown}], which are not 0..{len(present) - 1}. {fix}"
        )
    if len(present) < 2:
        raise DataError(
            "labels must contain at least 2 classes for a classification score. "
            "Received: every label is 0. Score a task with at least two classes."
        )
    counts = np.bincount(labels)
    rare = np.flatnonzero(counts < 2)
    if rare.size:
        raise DataError(
            "each class needs at least 2 samples for a classification score. "
            f"Received: {rare.size} class(es) with 1 sample, the first is class "
            f"{rare[0]}. Drop or merge the rare classes, or score on more samples."
        )
    return labels, len(present)


def _regression_targets(value, num_samples):
    """Validated regression targets as a float64 (N, K) matrix."""
    targets = _numeric(value, "labels").astype(np.float64)
    if targets.ndim == 1:
        targets = targets[:, None]
    if targets.ndim != 2:
        raise DataError(
            "labels must have shape (N,) or (N, K) for a regression score. Received: "
            f"shape {targets.shape}. Reshape them to one row per sample."
        )
    _check_length(len(targets), num_samples, "features")
    if not np.isfinite(targets).all():
        raise DataError(
            "labels must be finite for a regression score. Received: "
            f"{np.size(targets) - np.count_nonzero(np.isfinite(targets))} NaN or "
            "infinite targets. Drop or impute those samples before scoring."
        )
    return targets


def _probabilities(value):
    """Validated (N, Cs) float64 matrix of probability rows."""
    theta = _features(value, "source_probabilities")
    negative = theta < 0
    if negative.any():
        row, column = np.argwhere(negative)[0]
        raise DataError(
            "source_probabilities must be non-negative probabilities. Received: "
            f"{float(theta[row, column])!r} at row {row}, column {column}. Apply a "
            "softmax to the source model's logits first, e.g. "
            "keras.ops.softmax(logits)."
        )
    row_sums = theta.sum(axis=1)
    off = np.abs(row_sums - 1.0) > _PROBABILITY_TOLERANCE
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise DataError(
            "source_probabilities rows must sum to 1 (within 1e-3). Received: row "
            f"{row} sums to {float(row_sums[row]):.6g}. Apply a softmax to the source "
            "model's logits first, e.g. keras.ops.softmax(logits)."
        )
    return theta


def _source_labels(value):
    """Source class indices from predicted classes (N,) or scores (N, Cs)."""
    array = _to_numpy(value)
    if array.ndim == 2 and array.shape[1] > 1:
        return np.argmax(_features(array, "source_predictions"), axis=1)
    fix = (
        "Pass the source model's predicted class indices (N,) or its "
        "probabilities (N, Cs)."
    )
    source_labels = _integer_values(
        array, "source_predictions", "integer class indices or a 2-D matrix", fix
    )
    if source_labels.size and source_labels.min() < 0:
        raise DataError(
            "source_predictions must be class indices >= 0. Received: "
            f"{int(source_labels.min())}. {fix}"
        )
    if len(source_labels) < 2:
        raise DataError(
            "source_predictions must have at least 2 samples. Received: "
            f"{len(source_labels)}. Score on more samples."
        )
    return source_labels
