"""Tests for keras_tl.transfer: shape-checked copies, reports, freezing through fit."""

import json

import keras
import numpy as np
import pytest

from keras_tl.data.registry import load_task
from keras_tl.errors import TransferError
from keras_tl.networks.network import Network
from keras_tl.networks.transfer import TransferReport, freeze, transfer_weights
from keras_tl.training.fit import FitSettings, compile_model, fit
from keras_tl.training.recipes import train_target

# Trains models end to end: the full suite (tox, CI) runs it; `-m "not slow"` skips it.
pytestmark = pytest.mark.slow

SETTINGS = FitSettings(epochs=2, batch_size=10, optimizer="adam", learning_rate=0.01)


@pytest.fixture(scope="module")
def target_task():
    return load_task("digits:parity").subsample(40, seed=0)


def _cnn(num_outputs=10, seed=0, filters=(16, 32)):
    return Network("small_cnn", {"filters": list(filters)}).build(
        (8, 8, 1), num_outputs, seed
    )


def _weights(model, name):
    return [np.array(w) for w in model.get_layer(name).get_weights()]


def _same(first, second):
    return len(first) == len(second) and all(
        np.array_equal(a, b) for a, b in zip(first, second)
    )


def _bn_network(input_shape, num_outputs, seed):
    """conv1 -> bn1 -> relu -> flatten -> fc1 -> head; bn1 is a transferred layer."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = keras.layers.Conv2D(
        8, 3, padding="same", data_format="channels_last", name="conv1"
    )(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.Flatten(data_format="channels_last", name="flatten")(x)
    x = keras.layers.Dense(16, activation="relu", name="fc1")(x)
    outputs = keras.layers.Dense(num_outputs, name="head")(x)
    return keras.Model(inputs, outputs)


def _bn_source():
    """A BN network whose moving statistics are far from their initial 0 / 1."""
    source = _bn_network((8, 8, 1), 10, seed=1)
    rng = np.random.default_rng(0)
    gamma, beta, _, _ = source.get_layer("bn1").get_weights()
    source.get_layer("bn1").set_weights(
        [
            gamma,
            beta,
            rng.normal(size=8).astype("float32"),
            rng.uniform(2, 3, size=8).astype("float32"),
        ]
    )
    return source


# transfer_weights


def test_transferred_weights_equal_the_sources_before_training():
    source, target = _cnn(seed=1), _cnn(seed=2)
    assert not _same(_weights(source, "conv1"), _weights(target, "conv1"))
    report = transfer_weights(source, target)
    assert isinstance(report, TransferReport)
    assert report.copied == ["conv1", "conv2", "fc1"]
    assert report.skipped == []
    for name in report.copied:
        assert _same(_weights(target, name), _weights(source, name))


def test_the_head_is_never_copied_by_default():
    source, target = _cnn(seed=1), _cnn(seed=2)
    head_before = _weights(target, "head")
    report = transfer_weights(source, target)
    assert "head" not in report.copied
    assert _same(_weights(target, "head"), head_before)


def test_transfer_can_be_limited_to_named_layers():
    source, target = _cnn(seed=1), _cnn(seed=2)
    conv2_before = _weights(target, "conv2")
    report = transfer_weights(source, target, layers=["conv1"])
    assert report.copied == ["conv1"]
    assert _same(_weights(target, "conv1"), _weights(source, "conv1"))
    assert _same(_weights(target, "conv2"), conv2_before)


CONV1_16_VS_32 = "conv1: shape (3, 3, 1, 16) in source vs (3, 3, 1, 32) in target"
CONV2_16_VS_32 = "conv2: shape (3, 3, 16, 32) in source vs (3, 3, 32, 32) in target"


def test_shape_mismatches_in_the_first_convolution_are_reported_with_shapes():
    source = _cnn(seed=1, filters=(16, 32))
    target = _cnn(seed=2, filters=(32, 32))
    conv1_before = _weights(target, "conv1")
    report = transfer_weights(source, target)
    assert report.copied == ["fc1"]
    assert report.skipped == [("conv1", CONV1_16_VS_32), ("conv2", CONV2_16_VS_32)]
    # A skipped layer keeps the target's own initial weights.
    assert _same(_weights(target, "conv1"), conv1_before)
    assert _same(_weights(target, "fc1"), _weights(source, "fc1"))


def test_a_wider_second_convolution_also_skips_fc1_whose_input_width_changes():
    source = _cnn(seed=1, filters=(16, 32))
    target = _cnn(seed=2, filters=(16, 64))
    report = transfer_weights(source, target)
    assert report.copied == ["conv1"]
    assert report.skipped == [
        ("conv2", "conv2: shape (3, 3, 16, 32) in source vs (3, 3, 16, 64) in target"),
        ("fc1", "fc1: shape (512, 64) in source vs (1024, 64) in target"),
    ]


def test_report_to_dict_is_plain_data():
    report = transfer_weights(_cnn(seed=1), _cnn(seed=2, filters=(32, 32)))
    assert report.to_dict() == {
        "copied": ["fc1"],
        "skipped": [
            {"layer": "conv1", "reason": CONV1_16_VS_32},
            {"layer": "conv2", "reason": CONV2_16_VS_32},
        ],
    }
    assert json.loads(json.dumps(report.to_dict())) == report.to_dict()


def _renamed_mlp(seed):
    """An MLP with the same shapes as `mlp` but other layer names."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(8, 8, 1))
    x = keras.layers.Flatten(name="flat")(inputs)
    x = keras.layers.Dense(64, activation="relu", name="alpha")(x)
    x = keras.layers.Dense(32, activation="relu", name="beta")(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="head")(x))


def test_match_order_pairs_trunk_layers_by_position():
    source = _renamed_mlp(seed=1)
    target = Network("mlp").build((8, 8, 1), 10, seed=2)
    report = transfer_weights(source, target, match="order")
    assert report.copied == ["fc1", "fc2"]
    assert _same(_weights(target, "fc1"), _weights(source, "alpha"))
    assert _same(_weights(target, "fc2"), _weights(source, "beta"))


def test_match_name_reports_layers_missing_from_the_source():
    source = _renamed_mlp(seed=1)
    target = Network("mlp").build((8, 8, 1), 10, seed=2)
    report = transfer_weights(source, target)
    assert report.copied == []
    assert report.skipped == [
        ("fc1", "fc1: not in the source model"),
        ("fc2", "fc2: not in the source model"),
    ]


def test_unknown_match_raises_transfer_error():
    with pytest.raises(TransferError, match="Unknown match 'position'"):
        transfer_weights(_cnn(seed=1), _cnn(seed=2), match="position")


def test_a_transfer_layer_in_neither_model_raises_transfer_error_naming_it():
    with pytest.raises(TransferError, match=r"\['conv9'\] exist in neither model"):
        transfer_weights(_cnn(seed=1), _cnn(seed=2), layers=["conv1", "conv9"])


def test_a_requested_layer_without_weights_is_reported_not_silently_dropped():
    report = transfer_weights(_cnn(seed=1), _cnn(seed=2), layers=["pool1", "conv1"])
    assert report.copied == ["conv1"]
    assert [name for name, _ in report.skipped] == ["pool1"]


# freeze


def test_freeze_by_depth_freezes_the_first_transferred_layers_only():
    model = _cnn()
    frozen = freeze(model, depth=2, transferred=["conv1", "conv2", "fc1"])
    assert frozen == ["conv1", "conv2"]
    trainable = {layer.name: layer.trainable for layer in model.layers if layer.weights}
    assert trainable == {"conv1": False, "conv2": False, "fc1": True, "head": True}


def test_freeze_depth_zero_makes_every_layer_trainable_again():
    model = _cnn()
    freeze(model, depth=3)
    assert freeze(model, depth=0) == []
    assert all(layer.trainable for layer in model.layers)


def test_freeze_by_layer_names():
    model = _cnn()
    frozen = freeze(model, layers=["conv2", "head"])
    assert frozen == ["conv2", "head"]
    trainable = {layer.name: layer.trainable for layer in model.layers if layer.weights}
    assert trainable == {"conv1": True, "conv2": False, "fc1": True, "head": False}


def test_freeze_depth_larger_than_the_transferred_layers_raises_transfer_error():
    model = _cnn(filters=(32, 32))
    report = transfer_weights(_cnn(seed=1), model)
    assert report.copied == ["fc1"]
    with pytest.raises(
        TransferError, match=r"depth must be an integer from 0 to 1.*Received: 2"
    ):
        freeze(model, depth=2, transferred=report.copied)


def test_freeze_depth_beyond_the_network_raises_transfer_error():
    with pytest.raises(TransferError, match="from 0 to 3"):
        freeze(_cnn(), depth=4)


@pytest.mark.parametrize("depth", [-1, 1.0, "2"])
def test_freeze_depth_must_be_a_non_negative_integer(depth):
    with pytest.raises(TransferError, match="depth must be an integer"):
        freeze(_cnn(), depth=depth)


def test_freeze_of_an_unknown_layer_raises_transfer_error():
    with pytest.raises(TransferError, match=r"\['conv7'\] are not in the model"):
        freeze(_cnn(), layers=["conv7"])


def test_freeze_needs_exactly_one_of_depth_and_layers():
    with pytest.raises(TransferError, match="exactly one of depth= or layers="):
        freeze(_cnn())
    with pytest.raises(TransferError, match="exactly one of depth= or layers="):
        freeze(_cnn(), depth=1, layers=["conv1"])


# Frozen weights stay bit-identical through fit


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_fine_tune_with_depth_two_keeps_frozen_weights_bit_identical(
    target_task, optimizer
):
    source, model = _cnn(seed=1), _cnn(num_outputs=1, seed=0)
    report = transfer_weights(source, model)
    before = {name: _weights(model, name) for name in ("conv1", "conv2", "fc1", "head")}
    settings = FitSettings(
        epochs=2, batch_size=10, optimizer=optimizer, learning_rate=0.01
    )
    model, epochs = train_target(
        model, target_task, "fine_tune", report.copied, 2, settings, seed=0
    )
    assert epochs == 2
    assert _same(_weights(model, "conv1"), before["conv1"])
    assert _same(_weights(model, "conv2"), before["conv2"])
    assert not _same(_weights(model, "fc1"), before["fc1"])
    assert not _same(_weights(model, "head"), before["head"])


def test_linear_probe_keeps_the_whole_transferred_trunk_bit_identical(target_task):
    source, model = _cnn(seed=1), _cnn(num_outputs=1, seed=0)
    report = transfer_weights(source, model)
    head_before = _weights(model, "head")
    model, _ = train_target(
        model, target_task, "linear_probe", report.copied, 0, SETTINGS, seed=0
    )
    for name in ("conv1", "conv2", "fc1"):
        assert _same(_weights(model, name), _weights(source, name)), name
    assert not _same(_weights(model, "head"), head_before)


def test_frozen_batch_normalization_keeps_its_moving_statistics_during_fit(target_task):
    source = _bn_source()
    model = _bn_network((8, 8, 1), 1, seed=0)
    report = transfer_weights(source, model)
    assert report.copied == ["conv1", "bn1", "fc1"]
    model, _ = train_target(
        model, target_task, "fine_tune", report.copied, 2, SETTINGS, seed=0
    )
    # gamma, beta, moving mean and moving variance: all exactly the source's.
    assert _same(_weights(model, "bn1"), _weights(source, "bn1"))
    assert _same(_weights(model, "conv1"), _weights(source, "conv1"))
    assert not _same(_weights(model, "fc1"), _weights(source, "fc1"))


def test_trainable_batch_normalization_updates_its_moving_statistics(target_task):
    # The control for the test above: unfrozen, the same fit moves the statistics.
    source = _bn_source()
    model = _bn_network((8, 8, 1), 1, seed=0)
    report = transfer_weights(source, model)
    model, _ = train_target(
        model, target_task, "fine_tune", report.copied, 0, SETTINGS, seed=0
    )
    _, _, mean_after, variance_after = _weights(model, "bn1")
    _, _, mean_source, variance_source = _weights(source, "bn1")
    assert not np.array_equal(mean_after, mean_source)
    assert not np.array_equal(variance_after, variance_source)


@pytest.mark.parametrize(
    "fit_before_freeze", [False, True], ids=["fresh", "after_a_fit"]
)
def test_freeze_after_compile_takes_effect_in_the_next_fit(
    target_task, fit_before_freeze
):
    # Keras 3 ignores a change of `trainable` after compile on some backends, and
    # says nothing; freeze() must recompile so that the next fit respects it.
    source, model = _cnn(seed=1), _cnn(num_outputs=1, seed=0)
    report = transfer_weights(source, model)
    compile_model(model, target_task.kind, "adam", 0.01)
    if fit_before_freeze:
        fit(model, target_task, SETTINGS, seed=0)
    freeze(model, depth=2, transferred=report.copied)
    before = {name: _weights(model, name) for name in ("conv1", "conv2", "fc1")}
    fit(model, target_task, SETTINGS, seed=1)
    assert _same(_weights(model, "conv1"), before["conv1"])
    assert _same(_weights(model, "conv2"), before["conv2"])
    assert not _same(_weights(model, "fc1"), before["fc1"])


def test_unfreeze_after_compile_takes_effect_in_the_next_fit(target_task):
    source, model = _cnn(seed=1), _cnn(num_outputs=1, seed=0)
    report = transfer_weights(source, model)
    freeze(model, depth=3, transferred=report.copied)
    compile_model(model, target_task.kind, "adam", 0.01)
    fit(model, target_task, SETTINGS, seed=0)
    assert _same(_weights(model, "conv1"), _weights(source, "conv1"))
    freeze(model, depth=0, transferred=report.copied)
    fit(model, target_task, SETTINGS, seed=1)
    assert not _same(_weights(model, "conv1"), _weights(source, "conv1"))
