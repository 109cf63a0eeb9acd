"""Tests for keras_tl.training (recipes, early stopping, divergence) and metrics."""

import keras
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from keras_tl.data.registry import load_task
from keras_tl.errors import ConfigError
from keras_tl.networks.network import Network
from keras_tl.scores.task_metrics import compute_metrics, higher_is_better
from keras_tl.training.cache import ModelPool
from keras_tl.training.fit import FitSettings, TrialFailure, evaluate, make_optimizer
from keras_tl.training.recipes import train_target

# Trains models end to end: the full suite (tox, CI) runs it; `-m "not slow"` skips it.
pytestmark = pytest.mark.slow

SETTINGS = FitSettings(epochs=2, batch_size=10, optimizer="adam", learning_rate=0.01)
# With SGD, w <- w - lr * (grad + alpha * (w - w_source)): lr * alpha = 1 pins w to
# w_source - lr * grad at every step, the strongest stable L2-SP penalty.
L2SP_SETTINGS = FitSettings(
    epochs=3, batch_size=10, optimizer="sgd", learning_rate=0.05
)
STRONG = 20.0


@pytest.fixture(scope="module")
def target_task():
    return load_task("digits:parity").subsample(40, seed=0)


@pytest.fixture(scope="module")
def source_weights():
    """Weights of a 10-class small_cnn that differ from any target's initial weights."""
    source = Network("small_cnn").build((8, 8, 1), 10, seed=123)
    return {
        name: source.get_layer(name).get_weights() for name in ("conv1", "conv2", "fc1")
    }


def _transferred_target(source_weights, seed=0):
    """A parity target with conv1, conv2 and fc1 copied from the source."""
    model = Network("small_cnn").build((8, 8, 1), 1, seed=seed)
    for name, weights in source_weights.items():
        model.get_layer(name).set_weights(weights)
    return model, list(source_weights)


def _weights(model, name):
    return [np.array(w) for w in model.get_layer(name).get_weights()]


def _same(first, second):
    return all(np.array_equal(a, b) for a, b in zip(first, second))


def _squared_distance(model, reference):
    return sum(
        float(np.sum((a - b) ** 2))
        for name, weights in reference.items()
        for a, b in zip(_weights(model, name), weights)
    )


# Recipes

# Which layers each recipe leaves untouched when asked for freeze depth 1.
UNTOUCHED_AT_DEPTH_ONE = {
    "scratch": [],  # scratch ignores transfer and depth: everything trains
    "fine_tune": ["conv1"],
    "linear_probe": ["conv1", "conv2", "fc1"],  # always the whole trunk
    "lp_ft": ["conv1"],
    "l2sp": ["conv1"],
}


@pytest.mark.parametrize("recipe", list(UNTOUCHED_AT_DEPTH_ONE))
def test_each_recipe_trains_the_layers_it_should_and_returns_the_epochs_run(
    recipe, target_task, source_weights
):
    model, transferred = _transferred_target(source_weights)
    before = {name: _weights(model, name) for name in ("conv1", "conv2", "fc1", "head")}
    trained, epochs = train_target(
        model, target_task, recipe, transferred, 1, SETTINGS, seed=0
    )
    assert epochs == 2
    assert isinstance(trained, keras.Model)
    for name, weights in before.items():
        untouched = _same(_weights(trained, name), weights)
        assert untouched == (name in UNTOUCHED_AT_DEPTH_ONE[recipe]), name


def test_unknown_recipe_raises_config_error(target_task, source_weights):
    model, transferred = _transferred_target(source_weights)
    with pytest.raises(ConfigError, match="Unknown recipe 'finetune'.*fine_tune"):
        train_target(model, target_task, "finetune", transferred, 0, SETTINGS, seed=0)


def test_unknown_optimizer_raises_config_error():
    with pytest.raises(ConfigError, match="Unknown optimizer 'adagrad'"):
        make_optimizer("adagrad", 0.01)


@pytest.fixture(scope="module")
def l2sp_runs(target_task, source_weights):
    """The same l2sp fit without penalty, and with alpha = beta = STRONG (one float)."""
    runs = {}
    for label, options in (
        ("free", {"alpha": 0.0, "beta": 0.0}),
        ("strong", {"alpha": STRONG, "beta": STRONG}),
    ):
        model, transferred = _transferred_target(source_weights)
        head_before = _weights(model, "head")
        trained, _ = train_target(
            model,
            target_task,
            "l2sp",
            transferred,
            0,
            L2SP_SETTINGS,
            seed=0,
            options=options,
        )
        runs[label] = {
            "distance": _squared_distance(trained, source_weights),
            "head_before": head_before,
            "head_after": _weights(trained, "head"),
        }
        keras.backend.clear_session()
    return runs


def test_l2sp_with_a_strong_alpha_keeps_transferred_weights_near_the_source(l2sp_runs):
    free, strong = l2sp_runs["free"]["distance"], l2sp_runs["strong"]["distance"]
    assert free > 0
    assert strong < 0.2 * free


def test_l2sp_beta_pulls_the_head_towards_zero_even_when_alpha_equals_beta(l2sp_runs):
    # The head penalty is beta / 2 * |w_head|^2 (towards zero, not towards its
    # initial value), whatever alpha is.
    strong = l2sp_runs["strong"]
    norm_before = float(np.linalg.norm(strong["head_before"][0]))
    norm_after = float(np.linalg.norm(strong["head_after"][0]))
    assert norm_after < 0.5 * norm_before


def test_l2sp_beta_pulls_the_head_towards_zero(target_task, source_weights):
    model, transferred = _transferred_target(source_weights)
    head_before = _weights(model, "head")[0]
    trained, _ = train_target(
        model,
        target_task,
        "l2sp",
        transferred,
        0,
        L2SP_SETTINGS,
        seed=0,
        options={"alpha": 0.0, "beta": STRONG},
    )
    norm_before = float(np.linalg.norm(head_before))
    norm_after = float(np.linalg.norm(_weights(trained, "head")[0]))
    assert norm_after < 0.5 * norm_before


# Early stopping and divergence


def test_early_stopping_stops_early_and_restores_the_best_val_weights():
    # 20 samples, a high learning rate and many epochs: the val loss turns up early.
    task = load_task("digits:parity").subsample(20, seed=0)
    model = Network("small_cnn").build(task.input_shape, 1, seed=0)
    val_losses = []
    recorder = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: val_losses.append(logs["val_loss"])
    )
    settings = FitSettings(epochs=30, batch_size=10, learning_rate=0.01, patience=1,
                           callbacks=(recorder,))
    trained, epochs = train_target(model, task, "scratch", [], 0, settings, seed=0)
    assert epochs == len(val_losses) < 30
    assert min(val_losses) < val_losses[-1]
    # The returned model holds the weights of the best epoch, not of the last one.
    assert evaluate(trained, task, "val")["loss"] == pytest.approx(
        min(val_losses), rel=1e-4
    )


def test_a_diverging_fit_raises_trial_failure_naming_the_epoch(target_task):
    model = Network("small_cnn").build(target_task.input_shape, 1, seed=0)
    settings = FitSettings(epochs=3, batch_size=10, optimizer="sgd", learning_rate=1e6)
    with pytest.raises(TrialFailure, match=r"^non-finite loss at epoch [1-3]$"):
        train_target(model, target_task, "scratch", [], 0, settings, seed=0)


# Model pool


def test_a_pooled_model_trains_exactly_like_a_freshly_compiled_one(
    target_task, source_weights
):
    pool = ModelPool()
    results = []
    for _ in range(2):  # the first call compiles, the second reuses the compiled model
        model, transferred = _transferred_target(source_weights)
        trained, _ = train_target(
            model, target_task, "fine_tune", transferred, 1, SETTINGS, seed=0, pool=pool
        )
        results.append(trained.get_weights())
    pool.clear()
    for first, second in zip(*results):
        np.testing.assert_allclose(first, second, rtol=1e-5, atol=1e-6)


# compute_metrics


def test_classification_metrics_match_hand_computed_values():
    logits = np.array(
        [[2.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 1.0, 1.0], [0.0, 5.0, 0.0]]
    )
    labels = np.array([0, 1, 2, 1])
    metrics = compute_metrics("classification", logits, labels)
    expected_loss = np.mean(
        [
            -np.log(np.exp(2) / (np.exp(2) + np.exp(1) + 1)),
            -np.log(1 / (2 + np.exp(3))),
            np.log(3.0),
            -np.log(np.exp(5) / (np.exp(5) + 2)),
        ]
    )
    assert set(metrics) == {"accuracy", "loss"}
    # Predictions 0, 2, 0 (first of a tie), 1: two of four are right.
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert metrics["loss"] == pytest.approx(expected_loss, rel=1e-12)


def test_classification_loss_matches_the_keras_training_loss():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(50, 5)).astype("float32")
    labels = rng.integers(0, 5, size=50)
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(
        labels, logits
    )
    metrics = compute_metrics("classification", logits, labels)
    assert metrics["loss"] == pytest.approx(
        float(keras.ops.convert_to_numpy(keras_loss)), rel=1e-5
    )


def test_classification_loss_is_finite_for_extreme_logits():
    metrics = compute_metrics(
        "classification", np.array([[1000.0, -1000.0]]), np.array([1])
    )
    assert metrics["loss"] == pytest.approx(2000.0)


def test_binary_metrics_match_hand_computed_values():
    logits = np.array([[2.0], [-1.0], [0.5], [-3.0]])
    labels = np.array([1, 0, 0, 1])
    metrics = compute_metrics("binary", logits, labels)
    expected_loss = np.mean(
        [
            np.log1p(np.exp(-2.0)),
            np.log1p(np.exp(-1.0)),
            np.log1p(np.exp(0.5)),
            np.log1p(np.exp(3.0)),
        ]
    )
    assert set(metrics) == {"accuracy", "auc", "loss"}
    # Predictions (logit > 0): 1, 0, 1, 0.
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert metrics["loss"] == pytest.approx(expected_loss, rel=1e-12)
    # Positives score 2 and -3, negatives -1 and 0.5: 2 of 4 pairs ranked right.
    assert metrics["auc"] == pytest.approx(0.5)


def test_binary_cross_entropy_from_logits_is_stable_for_extreme_logits():
    metrics = compute_metrics(
        "binary", np.array([1000.0, -1000.0, 1000.0]), np.array([1, 0, 0])
    )
    assert metrics["loss"] == pytest.approx(1000.0 / 3)
    assert np.isfinite(metrics["loss"])


def test_binary_loss_matches_the_keras_training_loss():
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=2.0, size=(40, 1)).astype("float32")
    labels = rng.integers(0, 2, size=40)
    keras_loss = keras.losses.BinaryCrossentropy(from_logits=True)(
        labels.reshape(-1, 1).astype("float32"), logits
    )
    metrics = compute_metrics("binary", logits, labels)
    assert metrics["loss"] == pytest.approx(
        float(keras.ops.convert_to_numpy(keras_loss)), rel=1e-5
    )


@pytest.mark.parametrize("seed", range(3))
def test_binary_auc_matches_scikit_learn_with_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=60)
    scores = np.round(rng.normal(size=60) + labels, 1)  # rounding makes ties
    assert len(np.unique(scores)) < len(scores)
    metrics = compute_metrics("binary", scores[:, np.newaxis], labels)
    assert metrics["auc"] == pytest.approx(roc_auc_score(labels, scores), rel=1e-12)


def test_binary_auc_is_undefined_when_only_one_class_is_present():
    metrics = compute_metrics("binary", np.array([0.1, 0.4, -2.0]), np.array([1, 1, 1]))
    assert metrics["auc"] is None
    assert metrics["accuracy"] == pytest.approx(2 / 3)


def test_regression_metrics_match_hand_computed_values():
    outputs = np.array([[1.0, 0.0], [2.0, 4.0]])
    targets = np.array([[0.5, 1.0], [2.0, 1.0]])
    metrics = compute_metrics("regression", outputs, targets)
    assert metrics["mae"] == pytest.approx((0.5 + 1.0 + 0.0 + 3.0) / 4)
    assert metrics["mse"] == pytest.approx((0.25 + 1.0 + 0.0 + 9.0) / 4)
    assert metrics["loss"] == metrics["mse"]


def test_metric_directions_are_declared():
    assert higher_is_better("accuracy") and higher_is_better("auc")
    assert not higher_is_better("loss")
    assert not higher_is_better("mae") and not higher_is_better("mse")
    with pytest.raises(ConfigError, match="Unknown metric 'f1'"):
        higher_is_better("f1")
