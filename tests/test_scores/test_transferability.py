"""Transferability scores: hand-computed values, properties, backend tensors, errors."""

import math
import re

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.covariance import LedoitWolf, ledoit_wolf_shrinkage
from sklearn.decomposition import PCA

from keras_tl.errors import ConfigError, DataError
from keras_tl.scores import transferability
from keras_tl.scores.transferability import (
    SCORES,
    gbc,
    h_score,
    leep,
    logme,
    nce,
    regularized_h_score,
    transrate,
)

PROPERTY_SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)


# ---------------------------------------------------------------------------------
# Helpers written independently of the module under test


def paper_logme(features, targets, return_iterations=False):
    """LogME from the explicit D x D matrices of the paper, one column at a time.

    You et al. (ICML 2021), with the fixed-point updates of the JMLR paper:
    A = alpha I + beta F^T F, m = beta A^-1 F^T y, gamma = beta tr(A^-1 F^T F),
    alpha = gamma / (|m|^2 + 1e-5), beta = (N - gamma) / (|y - F m|^2 + 1e-5),
    and the evidence D/2 ln alpha + N/2 ln beta - 1/2 ln|A| - beta/2 |y - F m|^2
    - alpha/2 |m|^2 - N/2 ln 2 pi at the final alpha, beta. No SVD and no rank
    threshold: ln|A| comes from slogdet of the whole D x D matrix, so every
    direction of the weight space counts, zero directions included.
    """
    num_samples, num_features = features.shape
    gram = features.T @ features
    identity = np.eye(num_features)
    evidences, iterations = [], []
    for y in targets.T:
        alpha, beta = 1.0, 1.0
        for iteration in range(1, 12):  # noqa: B007 (read after the loop)
            previous_ratio = alpha / beta
            matrix_a = alpha * identity + beta * gram
            m = beta * np.linalg.solve(matrix_a, features.T @ y)
            gamma = beta * np.trace(np.linalg.solve(matrix_a, gram))
            m2 = m @ m
            res2 = np.sum((y - features @ m) ** 2)
            alpha = gamma / (m2 + 1e-5)
            beta = (num_samples - gamma) / (res2 + 1e-5)
            if abs(alpha / beta - previous_ratio) / previous_ratio <= 1e-3:
                break
        sign, log_det = np.linalg.slogdet(alpha * identity + beta * gram)
        assert sign > 0
        evidence = (
            num_features / 2.0 * math.log(alpha)
            + num_samples / 2.0 * math.log(beta)
            - 0.5 * log_det
            - beta / 2.0 * res2
            - alpha / 2.0 * m2
            - num_samples / 2.0 * math.log(2.0 * math.pi)
        )
        evidences.append(evidence / num_samples)
        iterations.append(iteration)
    if return_iterations:
        return float(np.mean(evidences)), iterations
    return float(np.mean(evidences))


def wider(features, width, rng):
    """F Q with Q (D x width) of orthonormal rows: the same data in more columns."""
    basis, _ = np.linalg.qr(rng.normal(size=(width, features.shape[1])))
    return features @ basis.T


def spherical_gbc(features, labels, log_term_weight=None):
    """GBC with spherical class Gaussians, class pair by class pair (Pandy et al.).

    The Bhattacharyya distance between N(mu_1, s_1 I) and N(mu_2, s_2 I) in d
    dimensions is |mu_1 - mu_2|^2 / (8 s) + d/2 ln(s / sqrt(s_1 s_2)) with
    s = (s_1 + s_2) / 2; `log_term_weight` replaces d/2 when given.
    """
    num_samples, dim = features.shape
    weight = dim / 2.0 if log_term_weight is None else log_term_weight
    stats = {}
    for c in np.unique(labels):
        rows = features[labels == c]
        mean = rows.mean(axis=0)
        per_dim = ((rows - mean) ** 2).mean(axis=0)
        stats[c] = (mean, np.mean(np.maximum(per_dim, 1e-4)))
    total = 0.0
    for c1 in stats:
        for c2 in stats:
            if c1 == c2:
                continue
            (mu1, s1), (mu2, s2) = stats[c1], stats[c2]
            s = (s1 + s2) / 2
            distance = np.sum((mu1 - mu2) ** 2) / (8 * s) + weight * math.log(
                s / math.sqrt(s1 * s2)
            )
            total += math.exp(-distance)
    return -total


def one_hot(labels, num_classes):
    return np.eye(num_classes)[labels]


def balanced_labels(rng, num_samples, num_classes):
    """Shuffled labels 0..C-1 with every class at least twice (num_samples >= 2C)."""
    return rng.permutation(np.arange(num_samples) % num_classes)


def separable_features(rng, labels, num_features, spread=2.0):
    return rng.normal(size=(len(labels), num_features)) + spread * one_hot(
        labels % num_features, num_features
    )


def softmax_rows(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def score_inputs(name, rng, labels, num_features=6):
    """Features or probabilities, whichever `SCORES[name]` needs, for `labels`."""
    if SCORES[name].needs == "predictions":
        return softmax_rows(rng.normal(size=(len(labels), 4)) + one_hot(labels % 4, 4))
    return separable_features(rng, labels, num_features)


# ---------------------------------------------------------------------------------
# Hand-computed values

# Four samples, two target classes, two source classes, written out by hand.
THETA = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]])
TARGETS = np.array([0, 0, 1, 1])


def test_leep_matches_a_four_sample_example_worked_by_hand():
    # Joint P(y, z) = column sums of theta per target class / 4.
    # y=0: (0.9 + 0.8, 0.1 + 0.2) / 4 = (1.7, 0.3) / 4
    # y=1: (0.3 + 0.1, 0.7 + 0.9) / 4 = (0.4, 1.6) / 4
    # P(z=0) = 2.1 / 4, P(z=1) = 1.9 / 4, so P(y | z):
    p_y0_z0, p_y1_z0 = 1.7 / 2.1, 0.4 / 2.1
    p_y0_z1, p_y1_z1 = 0.3 / 1.9, 1.6 / 1.9
    expected_predictions = [
        0.9 * p_y0_z0 + 0.1 * p_y0_z1,
        0.8 * p_y0_z0 + 0.2 * p_y0_z1,
        0.3 * p_y1_z0 + 0.7 * p_y1_z1,
        0.1 * p_y1_z0 + 0.9 * p_y1_z1,
    ]
    expected = sum(math.log(p) for p in expected_predictions) / 4

    assert leep(THETA, TARGETS) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(-0.342615, abs=1e-6)


def test_leep_is_zero_when_source_classes_determine_the_labels():
    theta = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])

    assert leep(theta, TARGETS) == pytest.approx(0.0, abs=1e-12)


def test_nce_matches_a_four_sample_example_worked_by_hand():
    source = np.array([0, 0, 1, 1])
    target = np.array([0, 1, 0, 1])
    # z=0 holds y in {0, 1}: H(Y | z=0) = ln 2; the same for z=1.  NCE = -ln 2.
    assert nce(source, target) == pytest.approx(-math.log(2.0), rel=1e-12)

    source = np.array([0, 0, 1, 2])
    target = np.array([0, 1, 1, 0])
    # z=0 holds y in {0, 1}: ln 2, with P(z=0) = 1/2; z=1 and z=2 hold one label
    # each: 0.  NCE = -(1/2 ln 2).
    assert nce(source, target) == pytest.approx(-0.5 * math.log(2.0), rel=1e-12)


def test_nce_takes_the_argmax_of_a_probability_matrix():
    source = np.array([0, 0, 1, 2])
    probabilities = np.eye(3)[source] * 0.7 + 0.1

    assert nce(probabilities, np.array([0, 1, 1, 0])) == nce(source, [0, 1, 1, 0])
    assert nce(THETA, TARGETS) == pytest.approx(0.0, abs=1e-15)


def test_h_score_of_one_feature_is_the_explained_variance_ratio():
    # Class means 1 and 5 around 3: between-class variance 4; total variance 5.
    features = np.array([[0.0], [2.0], [4.0], [6.0]])

    assert h_score(features, TARGETS) == pytest.approx(4.0 / 5.0, rel=1e-12)


def test_h_score_matches_explicit_covariances_in_two_dimensions():
    features = np.array(
        [[0.0, 1.0], [1.0, 3.0], [2.0, 0.0], [4.0, 1.0], [1.0, 5.0], [2.0, 4.0]]
    )
    labels = np.array([0, 0, 1, 1, 2, 2])
    mean = [sum(row[j] for row in features) / 6 for j in range(2)]
    class_mean = {
        c: [
            sum(features[i][j] for i in range(6) if labels[i] == c) / 2
            for j in range(2)
        ]
        for c in range(3)
    }
    cov_f = [[0.0, 0.0], [0.0, 0.0]]
    cov_g = [[0.0, 0.0], [0.0, 0.0]]
    for i in range(6):
        for a in range(2):
            for b in range(2):
                cov_f[a][b] += (
                    (features[i][a] - mean[a]) * (features[i][b] - mean[b]) / 6
                )
                g = class_mean[labels[i]]
                cov_g[a][b] += (g[a] - mean[a]) * (g[b] - mean[b]) / 6
    det = cov_f[0][0] * cov_f[1][1] - cov_f[0][1] * cov_f[1][0]
    inverse = [
        [cov_f[1][1] / det, -cov_f[0][1] / det],
        [-cov_f[1][0] / det, cov_f[0][0] / det],
    ]
    expected = sum(inverse[a][b] * cov_g[b][a] for a in range(2) for b in range(2))

    assert h_score(features, labels) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("num_samples, num_features", [(12, 20), (12, 12), (12, 11)])
def test_h_score_refuses_features_that_span_every_sample_direction(
    num_samples, num_features
):
    # Centred rank N - 1 (N <= D + 1): any labels, even random ones, would score
    # C - 1, so the score is refused rather than ranked.
    rng = np.random.default_rng(0)
    labels = balanced_labels(rng, num_samples, 3)
    features = separable_features(rng, labels, num_features)

    with pytest.raises(
        DataError,
        match=rf"h_score is degenerate .* score C - 1 = 2\. Received: {num_samples} "
        rf"samples with {num_features} features \(centred rank 11\)\. Expected: "
        r"more samples than feature dimensions .* Score on more target samples",
    ):
        h_score(features, labels)
    # Shrinkage keeps the regularized score informative on the same data.
    assert 0.0 < regularized_h_score(features, labels) < 2.0


def test_h_score_scores_rank_deficient_features_below_the_sample_rank():
    rng = np.random.default_rng(1)
    labels = balanced_labels(rng, 12, 3)
    # N <= D but rank 3 < N - 1: the span of the features is informative.
    low_rank = rng.normal(size=(12, 3)) @ rng.normal(size=(3, 20))
    # N > D + 1 with dead (all-zero) and duplicated units: cov(F) is singular and
    # the pseudo-inverse scores the span, the same as without those columns.
    base = separable_features(rng, balanced_labels(rng, 40, 3), 5)
    base_labels = balanced_labels(rng, 40, 3)
    padded = np.concatenate([base, np.zeros((40, 3)), base[:, :2] * 2.0], axis=1)

    assert 0.0 <= h_score(low_rank, labels) < 2.0
    assert h_score(padded, base_labels) == pytest.approx(
        h_score(base, base_labels), rel=1e-9
    )


def test_regularized_h_score_equals_h_score_for_one_feature():
    # With one feature the Ledoit-Wolf target mu * I equals the covariance itself.
    features = np.array([[0.0], [2.0], [4.0], [6.0]])

    assert regularized_h_score(features, TARGETS) == pytest.approx(0.8, rel=1e-12)


def test_regularized_h_score_refuses_features_shrunk_all_the_way_to_isotropic():
    # Nearly isotropic features with few samples per dimension: Ledoit-Wolf clips
    # the shrinkage at 1, cov_a = mu I, and any labels would score (1 - 1) ... = 0.
    rng = np.random.default_rng(10)
    labels = rng.permutation(np.arange(40) % 4)
    features = rng.normal(size=(40, 32)) + 0.5 * one_hot(labels, 32)
    centred = features - features.mean(axis=0)
    assert ledoit_wolf_shrinkage(centred, assume_centered=True) == 1.0

    for form in ("keras_tl", "authors"):
        with pytest.raises(
            DataError,
            match=r"regularized_h_score is degenerate .* the Ledoit-Wolf shrinkage "
            r"is 1 .* any labels would score 0\. Received: 40 samples with 32 "
            r"features\. Expected: .*shrinkage below 1.* Score on more target",
        ):
            regularized_h_score(features, labels, form=form)


@pytest.mark.parametrize("num_samples, num_features", [(60, 8), (16, 30)])
def test_regularized_h_score_matches_sklearn_ledoit_wolf(num_samples, num_features):
    rng = np.random.default_rng(1)
    labels = balanced_labels(rng, num_samples, 4)
    features = separable_features(rng, labels, num_features)
    estimator = LedoitWolf().fit(features)
    class_means = np.stack([features[labels == c].mean(axis=0) for c in range(4)])
    between = np.cov(class_means[labels], rowvar=False, bias=True)
    shrinkage = estimator.shrinkage_
    expected = np.trace(
        np.linalg.inv(estimator.covariance_) @ ((1 - shrinkage) * between)
    )

    score = regularized_h_score(features, labels)

    assert score == pytest.approx(expected, rel=1e-9)
    assert 0.0 < score < 3.0
    if num_samples > num_features + 1:
        assert score < h_score(features, labels)


def test_gbc_of_two_one_dimensional_classes_matches_the_closed_form():
    # Class 0: {0, 2}: mean 1, variance 1.  Class 1: {4, 8}: mean 6, variance 4.
    features = np.array([[0.0], [2.0], [4.0], [8.0]])
    pair_variance = (1.0 + 4.0) / 2.0
    distance = (6.0 - 1.0) ** 2 / (8 * pair_variance) + 0.5 * math.log(
        pair_variance / math.sqrt(1.0 * 4.0)
    )

    assert gbc(features, TARGETS) == pytest.approx(-2 * math.exp(-distance), rel=1e-12)


def test_gbc_uses_the_mean_of_floored_per_dimension_variances():
    # Second feature is constant within classes: its variance is floored at 1e-4.
    features = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 3.0], [6.0, 3.0]])
    spherical = (1.0 + 1e-4) / 2
    distance = (16.0 + 4.0) / (8 * spherical)  # equal variances: no log term

    assert gbc(features, TARGETS) == pytest.approx(-2 * math.exp(-distance), rel=1e-12)


def explicit_pca(features, num_components):
    """scikit-learn's exact PCA; zero columns for components beyond min(N, D)."""
    kept = min(num_components, *features.shape)
    projected = PCA(n_components=kept, svd_solver="full").fit_transform(features)
    return np.concatenate(
        [projected, np.zeros((len(features), num_components - kept))], axis=1
    )


@pytest.mark.parametrize("num_samples, num_features", [(300, 100), (50, 200)])
def test_gbc_reduces_wide_features_to_64_principal_components(
    num_samples, num_features
):
    # Pandy et al. reduce features to 64 dimensions with PCA before scoring.
    rng = np.random.default_rng(11)
    labels = balanced_labels(rng, num_samples, 4)
    scales = np.linspace(0.5, 3.0, num_features)  # distinct variances: a clear cut
    features = rng.normal(size=(num_samples, num_features)) * scales
    features += 2.0 * one_hot(labels, 4) @ rng.normal(size=(4, num_features))

    expected = spherical_gbc(explicit_pca(features, 64), labels)

    assert gbc(features, labels) == pytest.approx(expected, rel=1e-9)
    assert gbc(features, labels, pca_dim=64) == gbc(features, labels)
    assert gbc(features, labels, pca_dim=10) == pytest.approx(
        spherical_gbc(explicit_pca(features, 10), labels), rel=1e-9
    )
    assert gbc(features, labels, pca_dim=None) == pytest.approx(
        spherical_gbc(features, labels), rel=1e-9
    )


def test_gbc_scores_features_no_wider_than_pca_dim_as_given():
    rng = np.random.default_rng(12)
    labels = balanced_labels(rng, 80, 4)
    features = separable_features(rng, labels, 16) * 3.0 + 5.0

    expected = spherical_gbc(features, labels)

    assert gbc(features, labels) == pytest.approx(expected, rel=1e-12)
    assert gbc(features, labels, pca_dim=16) == pytest.approx(expected, rel=1e-12)
    assert gbc(features, labels, pca_dim=None) == pytest.approx(expected, rel=1e-12)


def test_gbc_of_wide_features_no_longer_underflows():
    # 1024-dimensional features, classes with different variances: the d/2 log
    # term makes every coefficient exp(-D_B) underflow towards 0 without the PCA.
    rng = np.random.default_rng(1)
    labels = balanced_labels(rng, 200, 4)
    scales = np.array([1.0, 1.5, 2.0, 2.5])[labels][:, None]
    features = rng.normal(size=(200, 1024)) * scales

    unreduced = gbc(features, labels, pca_dim=None)
    reduced = gbc(features, labels)

    assert -1e-6 < unreduced < 0.0
    assert reduced < -1e-2
    assert reduced == pytest.approx(
        spherical_gbc(explicit_pca(features, 64), labels), rel=1e-9
    )


def test_transrate_matches_the_closed_form_for_orthogonal_classes():
    # Class 0 on the x axis, class 1 on the y axis; centred, mean squared norm 1.
    features = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    eps = 1e-4
    # R(Z) = 1/2 logdet(I + diag(2, 2) / (4 eps)); R(Z_c) = 1/2 ln(1 + 2 / (2 eps)).
    expected = math.log(1 + 1 / (2 * eps)) - 0.5 * math.log(1 + 1 / eps)

    assert transrate(features, TARGETS, eps=eps) == pytest.approx(expected, rel=1e-12)
    assert transrate(7.0 * features + 3.0, TARGETS, eps=eps) == pytest.approx(
        expected, rel=1e-12
    )


def test_logme_matches_the_explicit_matrix_evidence_on_a_tiny_input():
    features = np.array(
        [[1.0, 0.5], [0.8, -0.2], [0.1, 1.2], [-0.3, 0.9], [1.1, 0.1], [0.2, 1.0]]
    )
    labels = np.array([0, 0, 1, 1, 0, 1])

    assert logme(features, labels) == pytest.approx(
        paper_logme(features, one_hot(labels, 2)), rel=1e-9
    )


# ---------------------------------------------------------------------------------
# Vectorised LogME against the explicit-matrix evidence, column by column


@pytest.mark.parametrize(
    "num_samples, num_features, base_rank, tolerance",
    # The explicit 120 x 120 matrices of the low-rank case have a condition number
    # near 1e7 at the optimum: the oracle itself moves by ~3e-9 relative when the
    # features are perturbed by 1e-15 (the SVD-based score by ~1e-11).
    [(300, 40, None, 1e-9), (60, 120, 12, 1e-8)],
)
def test_vectorised_logme_equals_the_explicit_matrix_evidence_per_class(
    num_samples, num_features, base_rank, tolerance
):
    rng = np.random.default_rng(2)
    labels = balanced_labels(rng, num_samples, 7)
    # Classes from inseparable to well separated, so columns stop at different
    # iterations; a low-rank base keeps N < D from fitting every column exactly.
    if base_rank is None:
        features = rng.normal(size=(num_samples, num_features))
    else:
        features = rng.normal(size=(num_samples, base_rank)) @ rng.normal(
            size=(base_rank, num_features)
        )
    features[:, :7] += np.linspace(0.0, 3.0, 7)[labels][:, None] * one_hot(labels, 7)

    expected, iterations = paper_logme(
        features, one_hot(labels, 7), return_iterations=True
    )

    assert len(set(iterations)) >= 3  # the per-column stopping is exercised
    assert logme(features, labels) == pytest.approx(expected, rel=tolerance, abs=0)


@pytest.mark.parametrize("num_samples, num_features", [(200, 30), (25, 60)])
def test_vectorised_logme_equals_the_explicit_matrix_evidence_for_regression(
    num_samples, num_features
):
    rng = np.random.default_rng(3)
    features = rng.normal(size=(num_samples, num_features))
    targets = features[:, :3] @ rng.normal(size=(3, 3)) + rng.normal(
        size=(num_samples, 3)
    )

    assert logme(features, targets, kind="regression") == pytest.approx(
        paper_logme(features, targets), rel=1e-9, abs=0
    )
    assert logme(features, targets[:, 0], kind="regression") == pytest.approx(
        paper_logme(features, targets[:, :1]), rel=1e-9, abs=0
    )


def rank_deficient_case(name, rng, labels):
    num_samples = len(labels)
    base = separable_features(rng, labels, 6)
    if name == "more dims than samples":
        return rng.normal(size=(num_samples, 90)) + one_hot(labels, 90)
    if name == "zero columns":
        return np.concatenate([base, np.zeros((num_samples, 5))], axis=1)
    if name == "collinear columns":
        return np.concatenate([base, base[:, :3] @ rng.normal(size=(3, 4))], axis=1)
    if name == "low rank, N <= D":
        return rng.normal(size=(num_samples, 5)) @ rng.normal(size=(5, 150))
    return base  # full rank


@pytest.mark.parametrize(
    "case",
    [
        "full rank",
        "more dims than samples",
        "zero columns",
        "collinear columns",
        "low rank, N <= D",
    ],
)
def test_logme_matches_the_explicit_matrix_evidence_with_every_direction(case):
    rng = np.random.default_rng(4)
    labels = balanced_labels(rng, 60, 3)
    features = rank_deficient_case(case, rng, labels)

    assert logme(features, labels) == pytest.approx(
        paper_logme(features, one_hot(labels, 3)), rel=1e-9
    )


def test_logme_of_the_same_data_in_more_columns_is_unchanged():
    # Issue 16: with the zero directions dropped from ln|A|, Z = X Q scored
    # 0.13 at D = 40, 2.70 at D = 100 and 84.2 at D = 2000 for X scoring -0.73.
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.arange(60) % 3)
    features = rng.normal(size=(60, 20)) + 1.5 * np.eye(20)[labels]
    expected = logme(features, labels)

    for width in (40, 100, 2000):
        assert logme(wider(features, width, rng), labels) == pytest.approx(
            expected, rel=1e-9
        ), width
    for zeros in (10, 100):
        padded = np.concatenate([features, np.zeros((60, zeros))], axis=1)
        assert logme(padded, labels) == pytest.approx(expected, rel=1e-12), zeros
    assert expected == pytest.approx(-0.72678, abs=1e-5)


# ---------------------------------------------------------------------------------
# Properties


@PROPERTY_SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    num_classes=st.integers(2, 4),
    num_source_classes=st.integers(1, 6),
    extra=st.integers(0, 20),
    temperature=st.floats(0.1, 10.0),
)
def test_leep_and_nce_are_at_most_zero(
    seed, num_classes, num_source_classes, extra, temperature
):
    rng = np.random.default_rng(seed)
    labels = balanced_labels(rng, 2 * num_classes + extra, num_classes)
    theta = softmax_rows(
        rng.normal(size=(len(labels), num_source_classes)) * temperature
    )

    assert leep(theta, labels) <= 0.0
    assert nce(theta, labels) <= 0.0


@PROPERTY_SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    num_classes=st.integers(2, 4),
    num_features=st.integers(1, 12),
    extra=st.integers(0, 30),
    scale=st.floats(1e-3, 1e3),
)
def test_h_scores_are_non_negative_and_bounded_by_num_classes_minus_one(
    seed, num_classes, num_features, extra, scale
):
    rng = np.random.default_rng(seed)
    labels = balanced_labels(rng, 2 * num_classes + extra, num_classes)
    # Unequal variances per dimension, so Ledoit-Wolf usually shrinks below 1.
    features = rng.normal(size=(len(labels), num_features)) * scale
    features *= np.geomspace(0.1, 10.0, num_features)
    centred = features - features.mean(axis=0)

    if ledoit_wolf_shrinkage(centred, assume_centered=True) >= 1.0:
        with pytest.raises(DataError, match=r"regularized_h_score is degenerate"):
            regularized_h_score(features, labels)
        regularized = None
    else:
        regularized = regularized_h_score(features, labels)
        assert 0.0 <= regularized <= num_classes - 1 + 1e-9
    if len(labels) <= num_features + 1:  # centred rank N - 1: refused
        with pytest.raises(DataError, match=r"h_score is degenerate"):
            h_score(features, labels)
        return
    score = h_score(features, labels)

    assert 0.0 <= score <= num_classes - 1 + 1e-9
    if regularized is not None:
        assert regularized <= score + 1e-9


@PROPERTY_SETTINGS
@given(seed=st.integers(0, 2**32 - 1), num_classes=st.integers(2, 5))
def test_scores_are_invariant_to_relabelling_the_classes(seed, num_classes):
    rng = np.random.default_rng(seed)
    labels = balanced_labels(rng, 6 * num_classes, num_classes)
    relabelled = rng.permutation(num_classes)[labels]
    for name, spec in SCORES.items():
        inputs = score_inputs(name, rng, labels)
        try:
            expected = spec.function(inputs, labels)
        except DataError:  # a degenerate case is refused under any labelling
            with pytest.raises(DataError):
                spec.function(inputs, relabelled)
            continue

        assert spec.function(inputs, relabelled) == pytest.approx(
            expected, rel=1e-9, abs=1e-12
        ), name


@PROPERTY_SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    num_samples=st.integers(6, 60),
    num_features=st.integers(1, 40),
)
def test_logme_is_invariant_to_rotating_the_features(seed, num_samples, num_features):
    rng = np.random.default_rng(seed)
    labels = balanced_labels(rng, num_samples, 3)
    features = separable_features(rng, labels, num_features)
    rotation, _ = np.linalg.qr(rng.normal(size=(num_features, num_features)))

    assert logme(features @ rotation, labels) == pytest.approx(
        logme(features, labels), rel=1e-6
    )


@PROPERTY_SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    num_samples=st.integers(6, 40),
    num_features=st.integers(1, 30),
    extra_width=st.integers(1, 90),
    num_zero_columns=st.integers(1, 50),
    regression=st.booleans(),
)
def test_logme_depends_only_on_the_span_of_the_features(
    seed, num_samples, num_features, extra_width, num_zero_columns, regression
):
    # The same data in more columns (F Q with orthonormal rows, often D' > N) or
    # with all-zero columns appended must score the same: ln|alpha I + beta F^T F|
    # counts the added zero directions, which the D/2 ln alpha term cancels.
    rng = np.random.default_rng(seed)
    labels = balanced_labels(rng, num_samples, 3)
    features = separable_features(rng, labels, num_features)
    if regression:
        labels = features[:, :1] + rng.normal(size=(num_samples, 2))
    kind = "regression" if regression else "classification"
    expected = logme(features, labels, kind=kind)
    widened = wider(features, num_features + extra_width, rng)
    padded = np.concatenate([features, np.zeros((num_samples, num_zero_columns))], 1)

    assert logme(widened, labels, kind=kind) == pytest.approx(
        expected, rel=1e-8, abs=1e-8
    )
    assert logme(padded, labels, kind=kind) == pytest.approx(
        expected, rel=1e-8, abs=1e-8
    )


@PROPERTY_SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    num_features=st.integers(1, 8),
    extra=st.integers(0, 60),
)
def test_logme_increases_when_the_target_becomes_linear_in_the_features(
    seed, num_features, extra
):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(3 * num_features + 10 + extra, num_features))
    linear = features @ rng.normal(size=num_features)
    noise = rng.normal(size=len(features))
    standardise = lambda y: (y - y.mean()) / y.std()  # noqa: E731
    linear, noise = standardise(linear), standardise(noise)

    scores = [
        logme(features, weight * linear + (1 - weight) * noise, kind="regression")
        for weight in (0.0, 0.5, 1.0)
    ]

    assert scores[0] < scores[1] < scores[2]


def test_scores_rank_separable_features_above_noise():
    rng = np.random.default_rng(5)
    labels = balanced_labels(rng, 120, 4)
    # Unequal variances per dimension, as in real features (isotropic noise is
    # refused by regularized_h_score: its Ledoit-Wolf shrinkage is 1).
    scales = np.linspace(0.5, 3.0, 8)
    for name in ("logme", "h_score", "regularized_h_score", "gbc", "transrate"):
        function = SCORES[name].function
        informative = function(
            separable_features(rng, labels, 8, spread=3.0) * scales, labels
        )
        noise = function(rng.normal(size=(120, 8)) * scales, labels)
        assert informative > noise, name


# ---------------------------------------------------------------------------------
# Backend tensors and the registry


def test_scores_accept_backend_tensors():
    rng = np.random.default_rng(6)
    labels = balanced_labels(rng, 40, 3)
    for name, spec in SCORES.items():
        # float32 values, so the backend's default float32 tensor holds the same
        # numbers as the NumPy array.
        inputs = score_inputs(name, rng, labels).astype(np.float32)
        if spec.needs == "predictions":
            inputs = inputs / inputs.sum(axis=1, keepdims=True, dtype=np.float32)

        from_tensors = spec.function(
            keras.ops.convert_to_tensor(inputs), keras.ops.convert_to_tensor(labels)
        )

        assert isinstance(from_tensors, float), name
        assert from_tensors == pytest.approx(
            spec.function(inputs, labels), rel=1e-12, abs=1e-15
        ), name


def test_logme_accepts_a_regression_tensor():
    rng = np.random.default_rng(7)
    features = rng.normal(size=(30, 4)).astype(np.float32)
    targets = (features @ np.ones(4, np.float32)).astype(np.float32)

    from_tensors = logme(
        keras.ops.convert_to_tensor(features),
        keras.ops.convert_to_tensor(targets),
        kind="regression",
    )

    assert from_tensors == pytest.approx(logme(features, targets, kind="regression"))


def test_registry_names_every_score_and_the_input_it_needs():
    needs = {name: spec.needs for name, spec in SCORES.items()}

    assert needs == {
        "logme": "features",
        "leep": "predictions",
        "nce": "predictions",
        "h_score": "features",
        "regularized_h_score": "features",
        "gbc": "features",
        "transrate": "features",
    }
    assert all(SCORES[name].name == name for name in SCORES)
    assert {name: spec.options for name, spec in SCORES.items()} == {
        "logme": ("kind",),
        "leep": (),
        "nce": (),
        "h_score": (),
        "regularized_h_score": ("form",),
        "gbc": ("pca_dim", "form"),
        "transrate": ("eps", "form"),
    }
    assert set(transferability.__all__) >= set(SCORES) | {"SCORES", "ScoreSpec"}


# ---------------------------------------------------------------------------------
# Validation


def valid_case(name):
    rng = np.random.default_rng(8)
    labels = balanced_labels(rng, 12, 3)
    return score_inputs(name, rng, labels), labels


def with_nan(array):
    array = array.copy()
    array[2, 1] = np.nan
    return array


def with_inf(array):
    array = array.copy()
    array[0, 0] = np.inf
    return array


LABEL_ERRORS = {
    "fractional labels": (
        lambda labels: labels + 0.5,
        r"labels must be integers 0\.\.C-1 .*Received: dtype float64 with values like",
    ),
    "string labels": (
        lambda labels: np.array(["a", "b", "c"])[labels],
        r"labels must be integers 0\.\.C-1 .*Received: dtype <U1",
    ),
    "gap in classes": (
        lambda labels: np.where(labels == 2, 5, labels),
        r"labels must be integers 0\.\.C-1 .*Received: class values \[0, 1, 5\]",
    ),
    "negative labels": (
        lambda labels: labels - 1,
        r"labels must be integers 0\.\.C-1 .*Received: class values \[-1, 0, 1\]",
    ),
    "class with one sample": (
        lambda labels: np.concatenate([labels[:-1], [3]]),
        r"each class needs at least 2 samples .*"
        r"Received: 1 class\(es\) with 1 sample, the first is class 3\.",
    ),
    "single class": (
        lambda labels: np.zeros_like(labels),
        r"at least 2 classes .*Received: every label is 0",
    ),
    "length mismatch": (
        lambda labels: labels[:-2],
        r"and labels must have one row per sample\. "
        r"Received: 12 rows of .* and 10 labels",
    ),
    "2-D labels": (
        lambda labels: np.stack([labels, labels], axis=1),
        r"labels must be a 1-D array .*Received: shape \(12, 2\)",
    ),
}


@pytest.mark.parametrize("case", sorted(LABEL_ERRORS))
def test_invalid_labels_raise_data_error_in_every_score(case):
    corrupt, message = LABEL_ERRORS[case]
    for name, spec in SCORES.items():
        inputs, labels = valid_case(name)

        with pytest.raises(DataError, match=message):
            spec.function(inputs, corrupt(labels))


FEATURE_SCORES = [name for name, spec in SCORES.items() if spec.needs == "features"]
INPUT_ERRORS = {
    "NaN": (
        with_nan,
        r"must be finite\. "
        r"Received: 1 NaN or infinite values \(first at row 2, column 1\)",
    ),
    "infinity": (with_inf, r"must be finite\. Received: 1 NaN or infinite"),
    "1-D": (
        lambda array: array[:, 0],
        r"must be a 2-D array .*Received: shape \(12,\)",
    ),
    "3-D": (
        lambda array: array[:, :, None],
        r"must be a 2-D array .*Received: shape \(12, \d+, 1\)",
    ),
}


@pytest.mark.parametrize("case", sorted(INPUT_ERRORS))
def test_malformed_features_and_probabilities_raise_data_error(case):
    corrupt, message = INPUT_ERRORS[case]
    for name in FEATURE_SCORES + ["leep"]:
        inputs, labels = valid_case(name)

        with pytest.raises(DataError, match=message):
            SCORES[name].function(corrupt(inputs), labels)


def test_nce_rejects_non_finite_probabilities_and_fractional_predictions():
    inputs, labels = valid_case("nce")

    with pytest.raises(DataError, match=r"source_predictions must be finite"):
        nce(with_nan(inputs), labels)
    with pytest.raises(DataError, match=r"source_predictions must be integer class"):
        nce(np.full(len(labels), 0.5), labels)
    with pytest.raises(
        DataError, match=r"source_predictions must be class indices >= 0"
    ):
        nce(-np.ones(len(labels), dtype=int), labels)


def test_leep_rejects_rows_that_are_not_probabilities():
    inputs, labels = valid_case("leep")

    with pytest.raises(
        DataError,
        match=r"rows must sum to 1 \(within 1e-3\)\. Received: row 0 sums to 2",
    ):
        leep(inputs * 2.0, labels)
    with pytest.raises(
        DataError, match=r"must be non-negative probabilities\. Received: -0\.5"
    ):
        leep(np.where(np.arange(inputs.shape[1]) == 0, -0.5, inputs), labels)
    # Within the 1e-3 tolerance: accepted.
    assert leep(inputs * (1 + 5e-4), labels) <= 0.0


def test_logme_regression_targets_are_validated():
    rng = np.random.default_rng(9)
    features = rng.normal(size=(10, 3))

    with pytest.raises(
        DataError, match=r"labels must be finite for a regression score"
    ):
        logme(features, np.full(10, np.nan), kind="regression")
    with pytest.raises(DataError, match=r"Received: 10 rows of features and 9 labels"):
        logme(features, np.zeros(9), kind="regression")
    with pytest.raises(
        ConfigError, match=r"Unknown LogME kind.*Received: kind='ranking'"
    ):
        logme(features, np.zeros(10), kind="ranking")


@pytest.mark.parametrize("name", ["regularized_h_score", "gbc", "transrate"])
def test_unknown_form_is_a_config_error(name):
    inputs, labels = valid_case(name)

    with pytest.raises(
        ConfigError,
        match=rf"Unknown {name} form\. Expected one of \['keras_tl', 'authors'\]\. "
        r"Received: form='paper'\.",
    ):
        SCORES[name].function(inputs, labels, form="paper")


@pytest.mark.parametrize("pca_dim", [0, -3, 2.5, True, "64"])
def test_gbc_rejects_a_pca_dim_that_is_not_a_positive_integer(pca_dim):
    inputs, labels = valid_case("gbc")

    with pytest.raises(
        ConfigError,
        match=r"GBC pca_dim must be a positive integer or None\. "
        rf"Received: pca_dim={re.escape(repr(pca_dim))}\.",
    ):
        gbc(inputs, labels, pca_dim=pca_dim)


def test_all_zero_features_and_bad_eps_are_rejected():
    labels = np.array([0, 0, 1, 1])

    with pytest.raises(DataError, match=r"features must not be all zero"):
        logme(np.zeros((4, 3)), labels)
    with pytest.raises(ConfigError, match=r"eps must be a positive number"):
        transrate(np.eye(4), labels, eps=0.0)


def test_integer_valued_float_labels_are_accepted():
    features = np.array([[0.0], [2.0], [4.0], [6.0]])

    assert h_score(features, np.array([0.0, 0.0, 1.0, 1.0])) == h_score(
        features, TARGETS
    )
