"""Seeding builds and trainings (keras_tl.networks.seeding): Keras' own seeding,
except that a model made only of Keras' classes leaves TensorFlow's seed, and
its kernel caches, alone; the weights are the same either way."""

import keras
import numpy as np
import pytest

from keras_tl.data.registry import load_task
from keras_tl.networks.network import Network
from keras_tl.networks.seeding import made_of_keras, set_random_seed
from keras_tl.training import fit as fit_module
from keras_tl.training.fit import FitSettings, compile_model, fit


class _Custom(keras.layers.Layer):
    def call(self, inputs):
        return inputs


def _identity(x):
    return x


def _zeros(shape, dtype=None):
    return keras.ops.zeros(shape, dtype=dtype)


def _with(layer):
    inputs = keras.Input((4,))
    return keras.Model(inputs, layer(inputs))


def test_keras_layers_initializers_and_nested_keras_models_are_made_of_keras():
    assert made_of_keras(Network("small_cnn").build((8, 8, 1), 3, seed=0))
    assert made_of_keras(_with(keras.layers.Dense(3, kernel_regularizer="l2",
                                                  activation=keras.activations.gelu)))
    assert made_of_keras(_with(keras.Sequential([keras.layers.Dense(3)])))


@pytest.mark.parametrize("layer", [
    _Custom(),
    keras.layers.Lambda(_identity),
    keras.layers.Dense(3, activation=_identity),
    keras.layers.Dense(3, kernel_initializer=_zeros),
    keras.Sequential([_Custom()]),
], ids=["subclass", "lambda", "activation", "initializer", "nested"])
def test_code_of_the_users_is_not_made_of_keras(layer):
    assert not made_of_keras(_with(layer))


def test_both_seedings_draw_the_same_keras_python_and_numpy_numbers():
    draws = []
    for keras_only in (False, True):
        set_random_seed(7, keras_only=keras_only)
        draws.append((
            keras.ops.convert_to_numpy(keras.random.uniform((3,))),
            np.random.rand(2),
            __import__("random").random(),
        ))
    for first, second in zip(*draws):
        np.testing.assert_array_equal(first, second)


@pytest.mark.backends("tensorflow")
def test_a_keras_only_seeding_keeps_tensorflows_kernels():
    # TensorFlow's own stateful random op continues its stream unless Keras'
    # seeding (tf.random.set_seed) empties the kernel caches.
    import tensorflow as tf

    def draw():
        return tf.random.uniform((2,), seed=1).numpy()

    keras.utils.set_random_seed(3)
    first = draw()
    set_random_seed(3, keras_only=False)
    np.testing.assert_array_equal(draw(), first)  # Emptied: the stream restarts.
    set_random_seed(3, keras_only=True)
    assert not np.array_equal(draw(), first)  # Kept: the stream goes on.


def _trained_weights(monkeypatch, keras_only):
    monkeypatch.setattr(fit_module, "made_of_keras", lambda model: keras_only)
    task = load_task("digits:parity").subsample(30, seed=0)
    model = Network("small_cnn", {"dropout": 0.25}).build(task.input_shape, task.num_outputs, seed=4)
    compile_model(model, task.kind, "adam", 0.01)
    fit(model, task, FitSettings(epochs=3, batch_size=10, optimizer="adam",
                                 learning_rate=0.01), seed=5)
    return model.get_weights()


def test_a_training_seeded_without_tensorflow_ends_at_the_same_weights(monkeypatch):
    # Dropout draws from Keras' generators: seeded alike by both.
    kept = _trained_weights(monkeypatch, keras_only=True)
    emptied = _trained_weights(monkeypatch, keras_only=False)
    for first, second in zip(kept, emptied):
        np.testing.assert_array_equal(first, second)


def test_fit_and_build_seed_without_tensorflow_only_what_is_made_of_keras(monkeypatch):
    calls = []

    def recording(seed, keras_only=False):
        calls.append(keras_only)
        set_random_seed(seed, keras_only)

    monkeypatch.setattr(fit_module, "set_random_seed", recording)
    monkeypatch.setattr("keras_tl.networks.network.set_random_seed", recording)
    task = load_task("digits:parity").subsample(20, seed=0)
    settings = FitSettings(epochs=1, batch_size=10, optimizer="adam", learning_rate=0.01)

    network = Network("small_cnn")
    for seed in (0, 1):
        model = network.build(task.input_shape, task.num_outputs, seed=seed)
        compile_model(model, task.kind, "adam", 0.01)
        fit(model, task, settings, seed=seed)
    # The first build, before the network is known: as Keras seeds.
    assert calls == [False, True, True, True]

    def custom(input_shape, num_outputs):
        inputs = keras.Input(input_shape)
        hidden = keras.layers.Flatten()(_Custom()(inputs))
        return keras.Model(inputs, keras.layers.Dense(num_outputs, name="head")(hidden))

    calls.clear()
    network = Network(custom)
    for seed in (0, 1):
        model = network.build(task.input_shape, task.num_outputs, seed=seed)
        compile_model(model, task.kind, "adam", 0.01)
        fit(model, task, settings, seed=seed)
    assert calls == [False, False, False, False]
