"""KerasHub backbones from a preset folder: model: {keras_hub: PATH}.

keras-hub is an optional extra (it pulls in TensorFlow and tensorflow-text), so
the tox environments do not install it: the preset tests are skipped there, with
the reason, and run wherever keras_hub imports.
"""

import sys

import keras
import numpy as np
import pytest

import keras_tl
from keras_tl.networks.network import Network

# Trains models end to end: the full suite (tox, CI) runs it; `-m "not slow"` skips it.
pytestmark = pytest.mark.slow


def test_a_missing_keras_hub_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras_hub", None)  # import keras_hub fails
    network = Network("keras_tl.networks.hub:backbone", {"keras_hub": "some_preset"})
    with pytest.raises(keras_tl.ConfigError) as error:
        network.build((32, 32, 3), 10, seed=0)
    message = str(error.value)
    assert "pip install 'keras-tl[hub]'" in message and "\n" not in message


@pytest.fixture
def preset(tmp_path):
    """A small randomly initialised KerasHub ResNet backbone saved as a preset."""
    keras_hub = pytest.importorskip(
        "keras_hub",
        reason="keras-hub is not installed for this backend (optional extra "
               "keras-tl[hub]; it pulls in TensorFlow and tensorflow-text)",
    )
    keras.utils.set_random_seed(1234)  # not keras-tl's build seed: weights differ
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 64], stackwise_num_blocks=[1, 1],
        stackwise_num_strides=[1, 2], block_type="basic_block",
        use_pre_activation=False, image_shape=(None, None, 3),
    )
    folder = tmp_path / "preset"
    backbone.save_to_preset(str(folder))
    return str(folder), backbone


def _tiny_images(path, num_classes=3, per_class=6, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_classes), per_class)
    images = rng.random((len(labels), 16, 16, 3), dtype="float32")
    np.savez(path, x_train=images, y_train=labels, x_test=images[::2],
             y_test=labels[::2])
    return f"npz:{path}"


def test_a_preset_loads_back_with_its_weights_or_random_ones(preset):
    folder, saved = preset
    with_weights = Network("keras_tl.networks.hub:backbone",
                           {"keras_hub": folder, "weights": "preset"}).build((16, 16, 3), 3, 0)
    layer = "stack1_block0_1_conv"
    np.testing.assert_array_equal(with_weights.get_layer(layer).get_weights()[0],
                                  saved.get_layer(layer).get_weights()[0])
    random = Network("keras_tl.networks.hub:backbone", {"keras_hub": folder}).build((16, 16, 3), 3, 0)
    assert not np.array_equal(random.get_layer(layer).get_weights()[0],
                              saved.get_layer(layer).get_weights()[0])
    assert with_weights.layers[-1].name == "head"


def test_a_preset_is_a_pretrained_source_in_an_experiment(preset, tmp_path):
    folder, _ = preset
    experiment = {
        "name": "hub",
        "model": {"keras_hub": folder},
        "source": {"name": "my_preset", "model": {"keras_hub": folder, "weights": "preset"},
                   "pretrained": True},
        "target": {"task": _tiny_images(tmp_path / "tiny.npz"), "train_sizes": [1.0],
                   "epochs": 1, "batch_size": 8},
        "arms": ["scratch", "fine_tune"],
        "freeze_depths": [1],
        "scores": ["logme"],
        "seeds": 1,
    }
    results = keras_tl.evaluate(experiment, out=str(tmp_path / "run"))

    assert [(t["arm"], t["status"]) for t in results.trials] == [
        ("scratch", "ok"), ("fine_tune", "ok")
    ]
    copied = results.trials[1]["transfer"]["copied"]
    assert "stack1_block0_1_conv" in copied and "head" not in copied
    assert results.trials[1]["source_metrics"] is None
