"""The authors' forms of GBC, TransRate and the regularized H-score (`form="authors"`).

Each oracle below follows, step by step, the code the authors published (the
repository and file are named in each docstring), written here with loops and
their exact normalisation; none of it calls the module under test.
"""

import math

import numpy as np
import pytest
from sklearn.covariance import LedoitWolf
from sklearn.decomposition import PCA

from keras_tl.scores.transferability import gbc, regularized_h_score, transrate


def balanced_labels(rng, num_samples, num_classes):
    return rng.permutation(np.arange(num_samples) % num_classes)


def class_features(rng, labels, num_features, spread=2.0, scales=None):
    """Gaussian features with a class mean and, optionally, a class scale."""
    num_classes = int(labels.max()) + 1
    means = spread * rng.normal(size=(num_classes, num_features))
    noise = rng.normal(size=(len(labels), num_features))
    if scales is not None:
        noise = noise * np.asarray(scales)[labels][:, None]
    return means[labels] + noise


# ---------------------------------------------------------------------------------
# Oracles that follow the authors' code


def authors_transrate(features, labels, eps=1e-4):
    """TransRate as printed in Huang et al. (ICML 2022), appendix.

    Reproduced as `transrate` in thuml/Transfer-Learning-Library,
    tllib/ranking/transrate.py: centre; R(Z) = 1/2 logdet(I_d + Z^T Z / (n eps));
    subtract the sum of the class rates divided by the number of classes.
    """

    def coding_rate(block):
        n, d = block.shape
        sign, log_det = np.linalg.slogdet(np.eye(d) + block.T @ block / (n * eps))
        assert sign > 0
        return 0.5 * log_det

    z = features - np.mean(features, axis=0, keepdims=True)
    rate_all = coding_rate(z)
    rate_classes = 0.0
    num_classes = int(labels.max() + 1)
    for c in range(num_classes):
        rate_classes += coding_rate(z[labels == c])
    return rate_all - rate_classes / num_classes


def authors_gbc(features, labels, pca_components=64):
    """GBC of google-research/google-research, stable_transfer/transferability.

    `gbc.get_gbc_score(..., gaussian_type="spherical")` on features reduced by
    `features_targets_utils.pca_reduction` (scikit-learn PCA, svd_solver="full",
    64 components in config_transferability_source_selection.py), kept in
    float64 here (their reduction casts to float32).
    """
    if features.shape[1] > pca_components:
        features = PCA(n_components=pca_components, svd_solver="full").fit_transform(
            features
        )
    stats = {}
    for label in np.unique(labels):
        rows = features[labels == label]
        mean = rows.mean(axis=0)
        variance = np.maximum(rows.var(axis=0), 1e-4)  # tf.math.reduce_variance
        stats[int(label)] = (mean, variance)

    def bhattacharyya_distance(c1, c2):
        mu1, sigma1 = stats[c1]
        mu2, sigma2 = stats[c2]
        sigma1, sigma2 = np.mean(sigma1), np.mean(sigma2)  # spherical
        avg_sigma = (sigma1 + sigma2) / 2
        first_part = np.sum((mu1 - mu2) ** 2 / avg_sigma) / 8
        second_part = np.sum(np.log(avg_sigma))
        second_part -= 0.5 * np.sum(np.log(sigma1))
        second_part -= 0.5 * np.sum(np.log(sigma2))
        return first_part + 0.5 * second_part

    per_class = []
    for c1 in stats:
        coefficients = [
            math.exp(-bhattacharyya_distance(c1, c2)) for c2 in stats if c1 != c2
        ]
        per_class.append(sum(coefficients))
    return -sum(per_class)


def authors_regularized_h_score(features, labels):
    """Shrinkage H-score, `regularized_h_score` of thuml/Transfer-Learning-Library.

    tllib/ranking/hscore.py (citing Ibrahim et al., "Newer is not always
    better"): centre, Ledoit-Wolf covariance and shrinkage from scikit-learn,
    np.cov (N - 1) of the per-sample class means,
    tr(pinv(cov_alpha, rcond=1e-15) (1 - alpha) cov_g).
    """
    f = features.astype("float64")
    f = f - np.mean(f, axis=0, keepdims=True)
    estimator = LedoitWolf(assume_centered=False).fit(f)
    alpha = estimator.shrinkage_
    covariance_alpha = estimator.covariance_
    g = np.zeros_like(f)
    for c in range(int(labels.max() + 1)):
        g[labels == c] = np.mean(f[labels == c, :], axis=0)
    covariance_g = np.atleast_2d(np.cov(g, rowvar=False))
    return np.trace(
        np.linalg.pinv(covariance_alpha, rcond=1e-15) @ ((1 - alpha) * covariance_g)
    )


# ---------------------------------------------------------------------------------
# The authors' forms against the oracles


@pytest.mark.parametrize(
    "num_samples, num_features, scale", [(120, 10, 1.0), (60, 40, 0.01), (30, 80, 30.0)]
)
def test_transrate_authors_form_follows_the_papers_code(
    num_samples, num_features, scale
):
    rng = np.random.default_rng(20)
    labels = balanced_labels(rng, num_samples, 3)
    features = class_features(rng, labels, num_features) * scale + 4.0

    expected = authors_transrate(features, labels)

    assert transrate(features, labels, form="authors") == pytest.approx(
        expected, rel=1e-9
    )
    assert transrate(features, labels, eps=1e-2, form="authors") == pytest.approx(
        authors_transrate(features, labels, eps=1e-2), rel=1e-9
    )


def test_transrate_forms_differ_by_the_feature_scale_only():
    # keras_tl scales centred features to a mean squared row norm of 1; the
    # authors' code does not, so their value moves with the scale of the features.
    rng = np.random.default_rng(21)
    labels = balanced_labels(rng, 90, 3)
    features = class_features(rng, labels, 12)
    centred = features - features.mean(axis=0)
    unit = features * math.sqrt(len(features) / np.sum(centred**2))

    ours = transrate(features, labels)

    for scale in (0.01, 1.0, 100.0):
        assert transrate(scale * features, labels) == pytest.approx(ours, rel=1e-9)
    assert transrate(unit, labels, form="authors") == pytest.approx(ours, rel=1e-9)
    assert transrate(0.01 * features, labels, form="authors") < ours
    assert transrate(100.0 * features, labels, form="authors") > ours


@pytest.mark.parametrize(
    "num_samples, num_features, scales",
    [
        (120, 10, None),
        (120, 10, [1.0, 2.0, 3.0]),
        (300, 100, [1.0, 1.5, 2.0]),
        (200, 256, [0.5, 1.0, 1.5]),
    ],
)
def test_gbc_authors_form_follows_the_google_research_code(
    num_samples, num_features, scales
):
    rng = np.random.default_rng(22)
    labels = balanced_labels(rng, num_samples, 3)
    features = class_features(rng, labels, num_features, spread=0.4, scales=scales)

    assert gbc(features, labels, form="authors") == pytest.approx(
        authors_gbc(features, labels), rel=1e-9
    )


def test_gbc_forms_differ_only_in_the_log_determinant_weight():
    # Class 0: (0, 0), (2, 2): mean (1, 1), variances (1, 1), s = 1.
    # Class 1: (4, 0), (8, 4): mean (6, 2), variances (4, 4), s = 4.
    features = np.array([[0.0, 0.0], [2.0, 2.0], [4.0, 0.0], [8.0, 4.0]])
    labels = np.array([0, 0, 1, 1])
    s = (1.0 + 4.0) / 2
    mean_term = (25.0 + 1.0) / (8 * s)
    log_term = math.log(s / math.sqrt(1.0 * 4.0))

    assert gbc(features, labels) == pytest.approx(
        -2 * math.exp(-(mean_term + 2 / 2 * log_term)), rel=1e-12
    )
    assert gbc(features, labels, form="authors") == pytest.approx(
        -2 * math.exp(-(mean_term + 1 / 2 * log_term)), rel=1e-12
    )
    # Equal class variances: the log term vanishes and the forms agree.
    equal = np.array([[0.0, 0.0], [2.0, 2.0], [4.0, 0.0], [6.0, 2.0]])
    assert gbc(equal, labels, form="authors") == pytest.approx(
        gbc(equal, labels), rel=1e-12
    )


@pytest.mark.parametrize(
    "num_samples, num_features", [(120, 10), (60, 40), (30, 80), (40, 1)]
)
def test_regularized_h_score_authors_form_follows_the_tllib_code(
    num_samples, num_features
):
    rng = np.random.default_rng(23)
    labels = balanced_labels(rng, num_samples, 4)
    features = class_features(rng, labels, num_features, spread=1.0)

    expected = authors_regularized_h_score(features, labels)
    score = regularized_h_score(features, labels, form="authors")

    assert score == pytest.approx(expected, rel=1e-9)
    # The only difference from the default form: cov(E[F | y]) over N - 1.
    assert score == pytest.approx(
        regularized_h_score(features, labels) * num_samples / (num_samples - 1),
        rel=1e-12,
    )
