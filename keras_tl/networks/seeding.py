"""Seeding a build or a training: `keras.utils.set_random_seed`, without
emptying TensorFlow's caches where nothing reads TensorFlow's own seed.

`keras.utils.set_random_seed` seeds Python, NumPy, Keras' global seed generator
and, where TensorFlow is available, TensorFlow's global seed
(`tf.random.set_seed`), which also empties TensorFlow's kernel caches: every
compiled function is instantiated again at its next call, about 0.14 s for a
`small_cnn` training loop, once per trial and per source training (11 s of a
33 s default run on tensorflow). TensorFlow's seed is read only by
TensorFlow's own random operations (`tf.random.uniform`, ...); Keras' layers,
initializers, regularizers and constraints draw from `keras.random` with seeds
from Python's `random` instead. So a model made only of Keras' classes is
seeded without TensorFlow, and trains to the same weights; a model with code of
its own (a layer, an initializer, an activation, a `Lambda`) is seeded as Keras
does.
"""

import keras

from keras_tl.backend import keras_ignoring_tensorflow
from keras_tl.networks.units import all_layers


def set_random_seed(seed, keras_only=False):
    """`keras.utils.set_random_seed(seed)`, leaving TensorFlow's seed (and its
    kernel caches) alone when `keras_only`.

    Args:
        seed: int.
        keras_only: bool. What is built or trained next is made of Keras'
            classes only (`made_of_keras`).
    """
    if keras_only:
        with keras_ignoring_tensorflow():
            keras.utils.set_random_seed(seed)
    else:
        keras.utils.set_random_seed(seed)


def made_of_keras(model):
    """Whether `model`, its layers (those of nested models too) and everything
    their configs name (initializers, regularizers, constraints, activations,
    wrapped layers) are Keras' own, so that none of it can call TensorFlow's
    random operations. A `Lambda` layer, a subclass or a function of the user's
    makes it False."""
    for layer in (model, *all_layers(model)):
        if not _from_keras(type(layer)) or isinstance(layer, keras.layers.Lambda):
            return False
        if isinstance(layer, keras.Model):
            continue  # Its layers are checked one by one.
        try:
            config = layer.get_config()
        except NotImplementedError:
            return False
        if not _config_from_keras(config):
            return False
    return True


def _from_keras(kind):
    return kind.__module__.split(".")[0] == "keras"


def _config_from_keras(config):
    """Every serialised object in a layer config is from a Keras module."""
    if isinstance(config, dict):
        module = config.get("module")
        if isinstance(module, str) and "class_name" in config and (
            module.split(".")[0] != "keras"
        ):
            return False
        return all(_config_from_keras(value) for value in config.values())
    if isinstance(config, (list, tuple)):
        return all(_config_from_keras(value) for value in config)
    return True
