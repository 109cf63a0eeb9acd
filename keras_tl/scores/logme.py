"""LogME, the log maximum evidence of a Bayesian linear model on the features.

Part of `keras_tl.scores.transferability` (import it from there); where it differs
from the published code is in docs/scores-notes.md.
"""

import numpy as np

from keras_tl.errors import ConfigError, DataError
from keras_tl.scores._score_inputs import (
    as_features,
    class_labels,
    class_sums,
    rank_tolerance,
    regression_targets,
)

_LOGME_MAX_ITERATIONS = 11
_LOGME_TOLERANCE = 1e-3
_LOGME_EPSILON = 1e-5


def logme(features, labels, kind="classification"):
    """Log maximum evidence of a Bayesian linear model on the features.

    LogME (You et al., "LogME: Practical Assessment of Pre-trained Models for
    Transfer Learning", ICML 2021; fixed-point form from "Ranking and Tuning
    Pre-trained Models", JMLR 2022) fits, for every target column `y`, a linear
    model `y = F w + noise` with Gaussian prior `w ~ N(0, 1/alpha)` and noise
    `N(0, 1/beta)`, maximises the evidence over `alpha` and `beta` by the
    fixed-point iteration (at most 11 steps, each column stopping when its
    `alpha / beta` changes by at most 0.1%), and reports the maximum log evidence
    divided by N, averaged over the columns. The columns are the one-hot class
    indicators for classification and the target columns for regression.

    The log determinant counts every direction of the weight space, so the score
    depends only on the directions the features span: all-zero or collinear
    columns, or a wider embedding of the same features, leave it unchanged, also
    when N <= D. The published fixed-point code drops the zero directions and so
    grows with the width when the features are rank-deficient; see
    docs/scores-notes.md ("LogME: every direction counts").

    Higher is better. The value is a log-likelihood per sample and is unbounded,
    so compare it only across feature sets on the same target data.

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
    features = as_features(features)
    num_samples = len(features)
    if kind == "classification":
        labels, num_classes = class_labels(labels, num_samples)
        target_norms = np.bincount(labels, minlength=num_classes).astype(np.float64)

        def targets_transpose_times(matrix):
            return class_sums(matrix, labels, num_classes)

    elif kind == "regression":
        targets = regression_targets(labels, num_samples)
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


def _logme_spectrum(features, targets_transpose_times):
    """Returns sigma (k,) and the projections x = U^T y of every column (C, k).

    One decomposition serves every column: the eigendecomposition of `F^T F` when
    N > D, otherwise the thin SVD of F. Directions with
    `sigma <= max(sigma) * max(N, D) * machine_epsilon` are treated as zero (their
    `ln(alpha + beta sigma)` is `ln alpha` to working precision).
    """
    num_samples, num_features = features.shape
    if num_samples > num_features:
        eigenvalues, eigenvectors = np.linalg.eigh(features.T @ features)
        keep = eigenvalues > rank_tolerance(eigenvalues, features.shape)
        sigma = eigenvalues[keep]
        # U = F V / s, so U^T y = V^T (F^T y) / s without forming U (N x k).
        projections = (
            targets_transpose_times(features) @ eigenvectors[:, keep] / np.sqrt(sigma)
        )
    else:
        left, singular_values, _ = np.linalg.svd(features, full_matrices=False)
        sigma = singular_values**2
        keep = sigma > rank_tolerance(sigma, features.shape)
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
