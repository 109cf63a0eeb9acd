"""keras.applications backbones freeze by block: MobileNetV3Small at 32x32."""

import numpy as np
import pytest

from keras_tl.data.task import Task
from keras_tl.networks.network import Network
from keras_tl.networks.units import transfer_units, trunk_layers
from keras_tl.training.fit import FitSettings
from keras_tl.training.recipes import train_target

# Trains models end to end: the full suite (tox, CI) runs it; `-m "not slow"` skips it.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mobilenet():
    network = Network("keras_tl.networks.applications:application",
                      {"application": "MobileNetV3Small", "image_shape": [32, 32, 3]})
    return network.build((32, 32, 3), 3, seed=0)


def _tiny_task(num_per_class=4, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), num_per_class)
    x = rng.random((len(y), 32, 32, 3), dtype="float32")
    return Task(name="tiny", kind="classification", num_outputs=3, x_train=x,
                y_train=y, x_val=x[:3], y_val=y[:3], x_test=x[:3], y_test=y[:3])


def test_mobilenet_v3_units_are_its_blocks(mobilenet):
    units = transfer_units(trunk_layers(mobilenet))
    names = [name for name, _ in units]
    assert names[:5] == ["conv", "conv_bn", "expanded_conv", "expanded_conv_1",
                         "expanded_conv_2"]
    block = dict(units)["expanded_conv_1"]
    assert len(block) > 3 and all(n.startswith("expanded_conv_1_") for n in block)


def test_frozen_blocks_keep_their_weights_and_statistics_while_the_rest_trains(mobilenet):
    transferred = trunk_layers(mobilenet)
    frozen_blocks = transfer_units(transferred)[:4]
    frozen = [name for _, layers in frozen_blocks for name in layers]
    before = {layer.name: [w.copy() for w in layer.get_weights()]
              for layer in mobilenet.layers if layer.weights}
    settings = FitSettings(epochs=1, batch_size=6)
    trained, _ = train_target(mobilenet, _tiny_task(), "fine_tune", transferred, 4,
                              settings, seed=0)

    for name in frozen:  # BN moving statistics included
        for old, new in zip(before[name], trained.get_layer(name).get_weights()):
            np.testing.assert_array_equal(old, new)
    moved = [name for name in before if name not in frozen and any(
        not np.array_equal(old, new)
        for old, new in zip(before[name], trained.get_layer(name).get_weights()))]
    assert "head" in moved and any(name.startswith("expanded_conv_5") for name in moved)
