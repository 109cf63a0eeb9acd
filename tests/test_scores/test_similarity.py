"""Tests for keras_tl.scores.similarity: linear CKA and layer-by-layer similarity."""

import keras
import numpy as np
import pytest

from keras_tl.errors import ConfigError, DataError
from keras_tl.measure.similarity import layer_similarity
from keras_tl.scores.similarity import linear_cka


def _activations(num_samples=60, num_features=10, seed=0):
    return np.random.default_rng(seed).normal(size=(num_samples, num_features))


def _rotation(size, seed=1):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(size, size)))
    return q


def _unbiased_hsic(k, l):
    """Song et al. (2012), written out term by term with explicit loops."""
    n = k.shape[0]
    k_tilde, l_tilde = k.copy(), l.copy()
    for i in range(n):
        k_tilde[i, i] = 0.0
        l_tilde[i, i] = 0.0
    trace = sum(k_tilde[i, j] * l_tilde[j, i] for i in range(n) for j in range(n))
    sum_k = sum(k_tilde[i, j] for i in range(n) for j in range(n))
    sum_l = sum(l_tilde[i, j] for i in range(n) for j in range(n))
    row_sums_k = [sum(k_tilde[i, j] for j in range(n)) for i in range(n)]
    column_sums_l = [sum(l_tilde[i, j] for i in range(n)) for j in range(n)]
    cross = sum(row_sums_k[j] * column_sums_l[j] for j in range(n))  # 1' K~ L~ 1
    return (
        trace + sum_k * sum_l / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * cross
    ) / (n * (n - 3))


# linear_cka


def test_cka_of_identical_activations_is_one():
    x = _activations()
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(x, x, debiased=True) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("num_samples, num_features", [(60, 10), (8, 20)])
def test_cka_is_invariant_to_rotation_and_isotropic_scaling(num_samples, num_features):
    # (8, 20) takes the Gram-matrix path, (60, 10) the feature-space path.
    x = _activations(num_samples, num_features)
    rotated = x @ _rotation(num_features)
    assert linear_cka(x, rotated) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(x, 7.5 * x) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(x, 0.01 * rotated + 3.0) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(x, rotated, debiased=True) == pytest.approx(1.0, abs=1e-9)


def test_cka_of_independent_activations_is_small():
    x, y = _activations(200, 10, seed=0), _activations(200, 10, seed=5)
    assert 0.0 <= linear_cka(x, y) < 0.5
    assert abs(linear_cka(x, y, debiased=True)) < 0.1


def test_cka_is_symmetric_and_compares_different_widths():
    x = _activations(50, 6)
    y = np.tanh(x @ np.random.default_rng(3).normal(size=(6, 15)))
    assert linear_cka(x, y) == pytest.approx(linear_cka(y, x), abs=1e-12)
    assert linear_cka(x, y, debiased=True) == pytest.approx(
        linear_cka(y, x, debiased=True), abs=1e-12
    )
    assert 0.0 < linear_cka(x, y) < 1.0


def test_cka_matches_the_feature_space_formula_on_both_paths():
    # Feature space, Gram space, and each mix of the two.
    cases = ((40, (5, 7)), (6, (9, 30)), (12, (3, 30)), (12, (30, 3)))
    for num_samples, widths in cases:
        x = _activations(num_samples, widths[0], seed=7)
        y = _activations(num_samples, widths[1], seed=8) + x[:, :1]
        xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)
        expected = np.linalg.norm(yc.T @ xc) ** 2 / (
            np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)
        )
        assert linear_cka(x, y) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize(
    "num_samples, widths", [(12, (3, 5)), (7, (10, 12)), (8, (3, 12)), (8, (12, 3))]
)
def test_debiased_cka_matches_the_unbiased_hsic_estimator(num_samples, widths):
    x = _activations(num_samples, widths[0], seed=11) + 2.0  # not centred
    y = _activations(num_samples, widths[1], seed=12) + x[:, :1]
    k, l = x @ x.T, y @ y.T
    expected = _unbiased_hsic(k, l) / np.sqrt(
        _unbiased_hsic(k, k) * _unbiased_hsic(l, l)
    )
    assert linear_cka(x, y, debiased=True) == pytest.approx(expected, rel=1e-9)
    assert linear_cka(x, y, debiased=True) != pytest.approx(linear_cka(x, y))


def test_cka_flattens_activations_per_sample():
    x = np.random.default_rng(0).normal(size=(20, 3, 4, 2))
    assert linear_cka(x, x.reshape(20, -1)) == pytest.approx(1.0, abs=1e-9)


def test_cka_of_a_constant_representation_is_none():
    x = _activations(10, 3)
    assert linear_cka(x, np.ones((10, 4))) is None


def test_cka_rejects_different_numbers_of_inputs():
    with pytest.raises(DataError, match="10 rows in x and 9 in y"):
        linear_cka(_activations(10, 3), _activations(9, 3))


def test_debiased_cka_needs_four_inputs():
    with pytest.raises(DataError, match="at least 4"):
        linear_cka(_activations(3, 2), _activations(3, 2), debiased=True)


# layer_similarity


def _tiny_model(name):
    inputs = keras.Input((6,), name="features")
    hidden = keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
    embedding = keras.layers.Dense(8, activation="tanh", name="embedding")(hidden)
    outputs = keras.layers.Dense(3, name="head")(embedding)
    return keras.Model(inputs, outputs, name=name)


@pytest.fixture
def models_and_inputs():
    keras.utils.set_random_seed(0)
    model_a = _tiny_model("a")
    model_b = keras.models.clone_model(model_a)
    model_b.set_weights(model_a.get_weights())
    inputs = np.random.default_rng(0).normal(size=(48, 6)).astype("float32")
    return model_a, model_b, inputs


def test_layer_similarity_of_a_clone_with_the_same_weights_has_unit_diagonal(
    models_and_inputs,
):
    model_a, model_b, inputs = models_and_inputs
    layers = ["hidden", "embedding", "head"]
    result = layer_similarity(model_a, model_b, inputs, layers, batch_size=16)
    assert result["layers_a"] == layers
    assert result["layers_b"] == layers
    matrix = np.array(result["matrix"])
    assert matrix.shape == (3, 3)
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-6)
    assert np.all(matrix > 0.0) and np.all(matrix <= 1.0 + 1e-9)
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-6)
    assert all(type(value) is float for row in result["matrix"] for value in row)


def test_layer_similarity_agrees_with_linear_cka_on_the_layer_outputs(
    models_and_inputs,
):
    model_a, _, inputs = models_and_inputs
    keras.utils.set_random_seed(1)
    other = _tiny_model("other")
    result = layer_similarity(
        model_a, other, inputs, ["embedding"], layers_b=["hidden", "head"],
        debiased=True,
    )
    extract_a = keras.Model(model_a.inputs, model_a.get_layer("embedding").output)
    extract_b = keras.Model(other.inputs, other.get_layer("head").output)
    expected = linear_cka(
        extract_a.predict(inputs, verbose=0),
        extract_b.predict(inputs, verbose=0),
        debiased=True,
    )
    assert result["layers_b"] == ["hidden", "head"]
    assert len(result["matrix"]) == 1 and len(result["matrix"][0]) == 2
    assert result["matrix"][0][1] == pytest.approx(expected, abs=1e-6)


def test_layer_similarity_names_unknown_layers_and_lists_available_ones(
    models_and_inputs,
):
    model_a, model_b, inputs = models_and_inputs
    with pytest.raises(DataError, match=r"no layer named \['conv'\].*'embedding'"):
        layer_similarity(model_a, model_b, inputs, ["hidden", "conv"])
    with pytest.raises(ConfigError, match="layers_b"):
        layer_similarity(model_a, model_b, inputs, ["hidden"], layers_b=[])
