"""Net2WiderNet and slice transfer into a wider target (keras_tl.networks.widen)."""

import keras
import numpy as np
import pytest

from keras_tl.errors import TransferError
from keras_tl.networks.network import Network, small_cnn
from keras_tl.networks.transfer import transfer_weights
from keras_tl.networks.widen import widen_weights


def _cnn(filters, units, outputs, seed, **options):
    return Network("small_cnn", {"filters": list(filters), "units": units, **options}).build(
        (8, 8, 1), outputs, seed=seed
    )


def _images(count=32, seed=0):
    return np.random.default_rng(seed).normal(size=(count, 8, 8, 1)).astype("float32")


def _trained_like(model, seed=1):
    """Random non-trivial weights (biases too), standing in for a trained source."""
    rng = np.random.default_rng(seed)
    weights = []
    for weight in model.get_weights():
        # Kernels scaled by fan-in keep activations near 1 (float32 round-off).
        scale = 1 / np.sqrt(np.prod(weight.shape[:-1])) if weight.ndim > 1 else 0.1
        weights.append(rng.normal(0, scale, size=weight.shape).astype(weight.dtype))
    model.set_weights(weights)
    return model


def _predict(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def test_net2wider_with_head_computes_the_source_function():
    # The paper's property: layer k widened, layer k+1 adjusted, same function.
    source = _trained_like(_cnn((16, 32), 256, 10, seed=0))
    target = _cnn((32, 64), 256, 10, seed=3)
    copied, skipped, details = widen_weights(source, target, include_head=True, seed=7)
    assert copied == ["conv1", "conv2", "fc1"]
    assert skipped == []
    assert details["conv1"]["added_units"] == 16
    assert details["conv2"]["added_units"] == 32
    x = _images()
    np.testing.assert_allclose(_predict(target, x), _predict(source, x), atol=1e-5, rtol=1e-5)


def test_net2wider_widens_every_layer_of_the_trunk_and_keeps_its_function():
    # fc1 widened too (256 -> 300): the trunk's output, with each copy of a unit
    # summed back into its source unit by the head's adjustment, is the source's.
    source = _trained_like(_cnn((16, 32), 64, 10, seed=0))
    target = _cnn((32, 64), 100, 10, seed=3)
    widen_weights(source, target, include_head=True, seed=1)
    x = _images()
    np.testing.assert_allclose(_predict(target, x), _predict(source, x), atol=1e-5, rtol=1e-5)
    # The wider fc1 holds the source's units first, then copies of them.
    trunk_s = keras.Model(source.inputs, source.get_layer("fc1").output)
    trunk_t = keras.Model(target.inputs, target.get_layer("fc1").output)
    np.testing.assert_allclose(
        _predict(trunk_t, x)[:, :64], _predict(trunk_s, x), atol=1e-5, rtol=1e-5
    )


def test_net2wider_source_task_accuracy_is_the_source_models():
    from keras_tl.data.registry import load_task
    from keras_tl.training.fit import evaluate

    task = load_task("digits")
    source = Network("small_cnn", {"filters": [16, 32], "units": 256}).build(
        task.input_shape, task.num_outputs, seed=0
    )
    source.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    source.fit(task.x_train, task.y_train, epochs=2, batch_size=64, verbose=0)
    target = Network("small_cnn", {"filters": [32, 64], "units": 256}).build(
        task.input_shape, task.num_outputs, seed=5
    )
    widen_weights(source, target, include_head=True, seed=0)
    assert evaluate(target, task, "test") == pytest.approx(evaluate(source, task, "test"),
                                                           abs=1e-6)


def test_net2wider_mlp_and_batch_norm():
    def builder(input_shape, num_outputs, width=8):
        inputs = keras.Input(input_shape)
        x = keras.layers.Dense(width, activation="relu", name="fc1")(inputs)
        x = keras.layers.BatchNormalization(name="bn1")(x)
        x = keras.layers.Dense(width * 2, activation="tanh", name="fc2")(x)
        x = keras.layers.Dropout(0.5, name="drop")(x)
        outputs = keras.layers.Dense(num_outputs, name="head")(x)
        return keras.Model(inputs, outputs)

    source = _trained_like(Network(builder, {"width": 8}).build((5,), 3, seed=0))
    bn = source.get_layer("bn1")
    weights = bn.get_weights()
    weights[3] = np.abs(weights[3]) + 0.5  # A positive moving variance.
    bn.set_weights(weights)
    target = Network(builder, {"width": 13}).build((5,), 3, seed=1)
    copied, skipped, _ = widen_weights(source, target, include_head=True, seed=2)
    assert copied == ["fc1", "bn1", "fc2"] and skipped == []
    x = np.random.default_rng(0).normal(size=(16, 5)).astype("float32")
    np.testing.assert_allclose(_predict(target, x), _predict(source, x), atol=1e-5, rtol=1e-5)


def test_net2wider_noise_changes_the_copies_only():
    source = _trained_like(_cnn((16, 32), 64, 10, seed=0))
    exact = _cnn((32, 64), 64, 10, seed=3)
    noisy = _cnn((32, 64), 64, 10, seed=3)
    widen_weights(source, exact, seed=4)
    widen_weights(source, noisy, seed=4, noise=0.01)
    kernel, noisy_kernel = exact.get_layer("conv1").get_weights()[0], noisy.get_layer(
        "conv1").get_weights()[0]
    np.testing.assert_array_equal(kernel[..., :16], noisy_kernel[..., :16])
    assert not np.allclose(kernel[..., 16:], noisy_kernel[..., 16:])


def test_transfer_weights_net2wider_report_skips_the_head():
    source = _trained_like(_cnn((16, 32), 256, 10, seed=0))
    target = _cnn((32, 64), 256, 1, seed=3)
    head = target.get_layer("head").get_weights()
    report = transfer_weights(source, target, mode="net2wider", seed=0)
    assert report.copied == ["conv1", "conv2", "fc1"]
    for before, after in zip(head, target.get_layer("head").get_weights()):
        np.testing.assert_array_equal(before, after)
    record = report.to_dict()
    assert record["mode"] == "net2wider" and record["noise"] == 0.0
    assert record["layers"]["conv2"]["target_shape"] == [3, 3, 32, 64]
    # Exact reports keep their old form.
    assert set(transfer_weights(source, _cnn((16, 32), 256, 1, 0)).to_dict()) == {
        "copied", "skipped"}


def test_slice_copies_the_overlapping_block():
    source = _trained_like(_cnn((16, 32), 64, 10, seed=0))
    target = _cnn((32, 64), 48, 1, seed=3)
    before = [w.copy() for w in target.get_weights()]
    report = transfer_weights(source, target, mode="slice")
    assert report.copied == ["conv1", "conv2", "fc1"]
    conv1_s, conv1_t = source.get_layer("conv1").get_weights(), target.get_layer(
        "conv1").get_weights()
    np.testing.assert_array_equal(conv1_t[0][..., :16], conv1_s[0][..., :16])
    np.testing.assert_array_equal(conv1_t[0][..., 16:], before[0][..., 16:])
    np.testing.assert_array_equal(conv1_t[1][:16], conv1_s[1])
    # fc1 (narrower: 48 of 64 units) after Flatten: per spatial position, the
    # first 32 channels of the source meet the first 32 of the target.
    fc_s = source.get_layer("fc1").get_weights()[0].reshape(16, 32, 64)
    fc_t = target.get_layer("fc1").get_weights()[0].reshape(16, 64, 48)
    np.testing.assert_array_equal(fc_t[:, :32, :], fc_s[:, :, :48])
    fc_before = before[4].reshape(16, 64, 48)
    np.testing.assert_array_equal(fc_t[:, 32:, :], fc_before[:, 32:, :])


def test_unmappable_layers_are_listed_with_reasons():
    source = _trained_like(_cnn((16, 32), 64, 10, seed=0))
    # conv2 narrower than the source: net2wider cannot map it, nor what follows.
    target = _cnn((32, 16), 64, 1, seed=3)
    report = transfer_weights(source, target, mode="net2wider")
    assert report.copied == ["conv1"]
    reasons = dict(report.skipped)
    assert "narrower in target (16 units vs 32 in source)" in reasons["conv2"]
    assert "not mapped" in reasons["fc1"] and "conv2" in reasons["fc1"]

    def other(input_shape, num_outputs):
        inputs = keras.Input(input_shape)
        x = keras.layers.Conv2D(32, 5, padding="same", activation="relu", name="conv1")(
            inputs)
        x = keras.layers.Flatten(name="flatten")(x)
        return keras.Model(inputs, keras.layers.Dense(num_outputs, name="head")(x))

    report = transfer_weights(source, Network(other).build((8, 8, 1), 1, 0), mode="slice")
    assert report.copied == []
    reasons = dict(report.skipped)
    assert "kernel_size" in reasons["conv1"]
    assert "not in the target" in reasons["conv2"] and "not in the target" in reasons["fc1"]


def test_a_branching_network_is_refused():
    def branches(input_shape, num_outputs):
        inputs = keras.Input(input_shape)
        left = keras.layers.Dense(4, name="fc1")(inputs)
        right = keras.layers.Dense(4, name="fc2")(inputs)
        merged = keras.layers.Concatenate(name="merge")([left, right])
        return keras.Model(inputs, keras.layers.Dense(num_outputs, name="head")(merged))

    source = Network(branches).build((3,), 2, seed=0)
    target = Network(branches).build((3,), 2, seed=1)
    with pytest.raises(TransferError, match=r"chain network.*layer 'fc2' does not"):
        transfer_weights(source, target, mode="slice")


def test_a_sequential_network_and_a_changed_pooling():
    def sequential(input_shape, num_outputs, width=4, pool=2):
        return keras.Sequential([
            keras.Input(input_shape),
            keras.layers.Conv2D(width, 3, padding="same", activation="relu", name="conv1"),
            keras.layers.MaxPooling2D(pool, name="pool1"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(num_outputs, name="head"),
        ])

    source = _trained_like(Network(sequential).build((8, 8, 1), 3, seed=0))
    target = Network(sequential, {"width": 6}).build((8, 8, 1), 3, seed=1)
    copied, skipped, _ = widen_weights(source, target, include_head=True)
    assert copied == ["conv1"] and skipped == []
    x = _images()
    np.testing.assert_allclose(_predict(target, x), _predict(source, x), atol=1e-5, rtol=1e-5)
    target = Network(sequential, {"width": 6, "pool": 4}).build((8, 8, 1), 3, seed=1)
    copied, skipped, _ = widen_weights(source, target, include_head=True)
    assert copied == ["conv1"]
    assert "from layer 'pool1' on, the target differs" in dict(skipped)["head"]


def test_a_deeper_target_is_not_supported():
    source = Network("mlp", {"units": [16]}).build((8, 8, 1), 10, seed=0)
    target = Network("mlp", {"units": [32, 16]}).build((8, 8, 1), 1, seed=0)
    with pytest.raises(TransferError, match=r"\['fc2'\].*net2deeper is not supported"):
        transfer_weights(source, target, mode="net2wider")


def test_builder_dropout_and_default_layers():
    default = small_cnn((8, 8, 1), 2)
    assert [layer.name for layer in default.layers] == [
        "inputs", "conv1", "pool1", "conv2", "flatten", "fc1", "head"]
    with_dropout = Network("small_cnn", {"dropout": 0.25}).build((8, 8, 1), 2, seed=0)
    names = [layer.name for layer in with_dropout.layers]
    assert names == ["inputs", "conv1", "pool1", "dropout1", "conv2", "dropout2",
                     "flatten", "fc1", "dropout3", "head"]
    again = Network("small_cnn", {}).build((8, 8, 1), 2, seed=0)
    for a, b in zip(again.get_weights(), with_dropout.get_weights()):
        np.testing.assert_array_equal(a, b)  # Dropout changes no initialisation.
    source = _trained_like(_cnn((16, 32), 64, 10, seed=0))
    target = _cnn((32, 64), 64, 10, seed=1, dropout=0.5)
    widen_weights(source, target, include_head=True)
    x = _images()
    np.testing.assert_allclose(_predict(target, x), _predict(source, x), atol=1e-5, rtol=1e-5)
    mlp = Network("mlp", {"units": [8, 4], "dropout": 0.1}).build((3,), 2, seed=0)
    assert [layer.name for layer in mlp.layers][2:] == [
        "fc1", "dropout1", "fc2", "dropout2", "head"]


@pytest.mark.parametrize("options, message", [
    ({"dropout": 1.0}, r"model\.dropout: expected a rate in \[0, 1\)"),
    ({"dropout": "0.1"}, r"model\.dropout: expected a rate"),
    ({"dropout": True}, r"model\.dropout: expected a rate"),
])
def test_dropout_option_is_checked(options, message):
    from keras_tl.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        Network("small_cnn", options)
    with pytest.raises(ConfigError, match=message):
        Network("mlp", options)
