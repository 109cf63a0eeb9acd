"""Fused models: one shared trunk, one head per task, exact joint training."""

import dataclasses

import keras
import numpy as np
import pytest

from keras_tl.data.registry import load_task
from keras_tl.data.task import Task
from keras_tl.errors import ConfigError
from keras_tl.networks.network import Network
from keras_tl.scores.task_metrics import compute_metrics
from keras_tl.training.fit import FitSettings, TrialFailure
from keras_tl.training.fusion import (
    FusedDataset,
    build_fused,
    evaluate_fused,
    fit_fused,
    output_key,
)

# Trains models end to end: the full suite (tox, CI) runs it; `-m "not slow"` skips it.
pytestmark = pytest.mark.slow

SMALL_CNN = Network("small_cnn", {"filters": [8, 16], "units": 32})
TRUNK = ["conv1", "conv2", "fc1"]


@pytest.fixture(scope="module")
def digit_tasks():
    return [
        load_task("digits:0-4").subsample(150, seed=0),
        load_task("digits:5-9").subsample(60, seed=0),
    ]


def synthetic_task(name, kind, num_rows, num_outputs, seed, num_features=3):
    """A task of random features; labels fit its kind."""
    rng = np.random.default_rng(seed)

    def labels(count):
        if kind == "classification":
            return rng.integers(0, num_outputs, count).astype("int64")
        if kind == "binary":
            return rng.integers(0, 2, count).astype("int64")
        return rng.normal(size=(count, num_outputs)).astype("float32")

    def features(count):
        return rng.normal(size=(count, num_features)).astype("float32")

    return Task(
        name=name,
        kind=kind,
        num_outputs=num_outputs,
        x_train=features(num_rows),
        y_train=labels(num_rows),
        x_val=features(4),
        y_val=labels(4),
        x_test=features(4),
        y_test=labels(4),
    )


def weights_of(model, name):
    return [keras.ops.convert_to_numpy(w) for w in model.get_layer(name).weights]


def test_output_keys_are_sanitised_task_names():
    assert output_key("digits:0-4") == "digits_0_4"
    assert output_key("npz:data/my set.npz") == "npz_data_my_set_npz"


def test_fused_model_has_one_trunk_and_a_head_per_task():
    tasks = [load_task("digits:0-4"), load_task("digits:parity")]
    model, head_names, report = build_fused(SMALL_CNN, tasks, seed=0)

    assert report is None
    assert head_names == {
        "digits:0-4": "head_digits_0_4",
        "digits:parity": "head_digits_parity",
    }
    names = [layer.name for layer in model.layers]
    for name in TRUNK:
        assert names.count(name) == 1
    assert "head" not in names
    # Every weight is one variable: the heads share the trunk's layer objects.
    assert len({id(weight) for weight in model.weights}) == len(model.weights)
    trunk_weights = sum(len(model.get_layer(name).weights) for name in TRUNK)
    assert len(model.weights) == trunk_weights + 2 * len(tasks)
    assert model.get_layer("head_digits_0_4").units == 5
    assert model.get_layer("head_digits_parity").units == 1

    outputs = model(tasks[0].x_test[:7], training=False)
    assert sorted(outputs) == ["digits_0_4", "digits_parity"]
    assert tuple(outputs["digits_0_4"].shape) == (7, 5)
    assert tuple(outputs["digits_parity"].shape) == (7, 1)


def test_tasks_with_different_input_shapes_are_refused():
    tasks = [load_task("digits:0-4"), synthetic_task("table", "binary", 8, 1, 0)]
    with pytest.raises(ConfigError, match=r"\(8, 8, 1\).*\(3,\)"):
        build_fused(SMALL_CNN, tasks, seed=0)


def test_repeated_tasks_and_bad_loss_weights_are_refused(digit_tasks):
    with pytest.raises(ConfigError, match="more than once"):
        build_fused(SMALL_CNN, [digit_tasks[0], digit_tasks[0]], seed=0)
    model, head_names, _ = build_fused(SMALL_CNN, digit_tasks, seed=0)
    settings = FitSettings(epochs=1, batch_size=32)
    with pytest.raises(ConfigError, match="one weight per task"):
        fit_fused(
            model, digit_tasks, head_names, settings, seed=0, loss_weights=[1.0]
        )
    with pytest.raises(ConfigError, match="not all 0"):
        fit_fused(
            model, digit_tasks, head_names, settings, seed=0, loss_weights=[0, -1]
        )


def test_source_trunk_is_copied_and_heads_are_not(digit_tasks):
    source = SMALL_CNN.build(digit_tasks[0].input_shape, num_outputs=5, seed=1)
    model, head_names, report = build_fused(
        SMALL_CNN, digit_tasks, seed=0, source=source
    )
    assert report.copied == TRUNK
    assert report.skipped == []
    for name in TRUNK:
        for fused, original in zip(weights_of(model, name), weights_of(source, name)):
            np.testing.assert_array_equal(fused, original)
    source_head = weights_of(source, "head")[0]
    assert not np.allclose(weights_of(model, head_names["digits:0-4"])[0], source_head)

    unrelated, _, _ = build_fused(SMALL_CNN, digit_tasks, seed=0)
    assert not np.allclose(
        weights_of(unrelated, "conv1")[0], weights_of(source, "conv1")[0]
    )


def _softmax(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def test_one_sgd_step_follows_the_weighted_sum_of_per_task_mean_losses():
    """By hand: loss = sum_t w_t * mean over t's own rows, for tasks of unequal size."""
    tasks = [
        synthetic_task("colours", "classification", 6, 3, seed=1),
        synthetic_task("flag", "binary", 3, 1, seed=2),
        synthetic_task("sizes", "regression", 4, 2, seed=3),
    ]
    loss_weights = [0.3, 2.0, 0.7]
    learning_rate = 0.5
    network = Network("mlp", {"units": [4]})
    model, head_names, _ = build_fused(network, tasks, seed=5)
    before = {layer.name: weights_of(model, layer.name) for layer in model.layers}

    settings = FitSettings(
        epochs=1, batch_size=8, optimizer="sgd", learning_rate=learning_rate
    )
    epochs = fit_fused(
        model, tasks, head_names, settings, seed=0, loss_weights=loss_weights
    )
    assert epochs == 1

    kernel, bias = (w.astype("float64") for w in before["fc1"])
    gradient_kernel, gradient_bias = np.zeros_like(kernel), np.zeros_like(bias)
    expected_heads = {}
    for task, weight in zip(tasks, loss_weights):
        x = task.x_train.astype("float64")
        pre = x @ kernel + bias
        hidden = np.maximum(pre, 0)
        head_kernel, head_bias = (
            w.astype("float64") for w in before[head_names[task.name]]
        )
        outputs = hidden @ head_kernel + head_bias
        count = len(x)
        if task.kind == "classification":
            onehot = np.eye(task.num_outputs)[task.y_train]
            d_outputs = (_softmax(outputs) - onehot) / count
        elif task.kind == "binary":
            labels = task.y_train.reshape(-1, 1)
            d_outputs = (1 / (1 + np.exp(-outputs)) - labels) / count
        else:
            d_outputs = 2 * (outputs - task.y_train) / (count * task.num_outputs)
        d_outputs *= weight
        expected_heads[head_names[task.name]] = (
            head_kernel - learning_rate * hidden.T @ d_outputs,
            head_bias - learning_rate * d_outputs.sum(axis=0),
        )
        d_pre = (d_outputs @ head_kernel.T) * (pre > 0)
        gradient_kernel += x.T @ d_pre
        gradient_bias += d_pre.sum(axis=0)

    after_kernel, after_bias = weights_of(model, "fc1")
    expected_kernel = kernel - learning_rate * gradient_kernel
    np.testing.assert_allclose(after_kernel, expected_kernel, atol=1e-5)
    expected_bias = bias - learning_rate * gradient_bias
    np.testing.assert_allclose(after_bias, expected_bias, atol=1e-5)
    for name, (head_kernel, head_bias) in expected_heads.items():
        after_head_kernel, after_head_bias = weights_of(model, name)
        np.testing.assert_allclose(after_head_kernel, head_kernel, atol=1e-5)
        np.testing.assert_allclose(after_head_bias, head_bias, atol=1e-5)


def test_an_epoch_covers_the_largest_task_and_cycles_the_smaller():
    tasks = [
        synthetic_task("small", "classification", 10, 2, seed=1),
        synthetic_task("big", "classification", 40, 2, seed=2),
    ]
    dataset = FusedDataset(tasks, ["small", "big"], batch_size=8, epochs=2, seed=0)
    assert dataset.steps_per_epoch == 5
    assert len(dataset) == 10
    for epoch in range(2):
        steps = [dataset.rows(i) for i in range(epoch * 5, epoch * 5 + 5)]
        big = np.concatenate([step["big"] for step in steps])
        np.testing.assert_array_equal(np.sort(big), np.arange(40))
        small = np.concatenate([step["small"] for step in steps])
        assert len(small) == 40
        np.testing.assert_array_equal(np.bincount(small, minlength=10), [4] * 10)

    x, targets, sample_weights = dataset[0]
    assert x.shape == (16, 3)
    # Each task's rows carry weight B / n_t, the other task's rows weight 0.
    np.testing.assert_array_equal(sample_weights["small"], [2.0] * 8 + [0.0] * 8)
    np.testing.assert_array_equal(sample_weights["big"], [0.0] * 8 + [2.0] * 8)
    big_rows = dataset.rows(0)["big"]
    np.testing.assert_array_equal(targets["big"][8:], tasks[1].y_train[big_rows])

    model, head_names, _ = build_fused(Network("mlp", {"units": [4]}), tasks, seed=0)
    settings = FitSettings(epochs=2, batch_size=8)
    assert fit_fused(model, tasks, head_names, settings, seed=0) == 2


def test_joint_training_beats_chance_on_each_task_with_its_own_head(digit_tasks):
    model, head_names, _ = build_fused(SMALL_CNN, digit_tasks, seed=0)
    settings = FitSettings(epochs=3, batch_size=32, learning_rate=3e-3)
    assert fit_fused(model, digit_tasks, head_names, settings, seed=0) == 3

    results = evaluate_fused(model, digit_tasks, head_names, "test")
    assert sorted(results) == ["digits:0-4", "digits:5-9"]
    for task in digit_tasks:
        assert results[task.name]["accuracy"] > 0.4  # chance is 0.2
        outputs = model(task.x_test, training=False)[output_key(task.name)]
        outputs = keras.ops.convert_to_numpy(outputs)
        expected = compute_metrics(task.kind, outputs, task.y_test)
        assert results[task.name] == pytest.approx(expected, rel=1e-5)


def test_each_head_is_scored_with_its_own_task_kind():
    tasks = [
        synthetic_task("labels", "classification", 12, 3, seed=1),
        synthetic_task("values", "regression", 7, 2, seed=2),
    ]
    model, head_names, _ = build_fused(Network("mlp", {"units": [4]}), tasks, seed=0)
    results = evaluate_fused(model, tasks, head_names, "val")
    assert sorted(results["labels"]) == ["accuracy", "loss"]
    assert sorted(results["values"]) == ["loss", "mae", "mse"]


def test_same_seed_gives_identical_metrics(digit_tasks):
    def run():
        model, head_names, _ = build_fused(SMALL_CNN, digit_tasks, seed=3)
        settings = FitSettings(epochs=2, batch_size=32, patience=1)
        fit_fused(model, digit_tasks, head_names, settings, seed=3, loss_weights=[1, 2])
        return evaluate_fused(model, digit_tasks, head_names, "test")

    assert run() == run()


def test_a_non_finite_loss_is_a_trial_failure():
    task = synthetic_task("huge", "regression", 8, 1, seed=1)
    task = dataclasses.replace(task, y_train=np.full((8, 1), 1e30, dtype="float32"))
    model, head_names, _ = build_fused(Network("mlp", {"units": [4]}), [task], seed=0)
    settings = FitSettings(epochs=2, batch_size=8)
    with pytest.raises(TrialFailure, match="non-finite loss at epoch 1"):
        fit_fused(model, [task], head_names, settings, seed=0)
