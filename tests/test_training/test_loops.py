"""The backend training loops (keras_tl.training.loops) train exactly like
`train_on_batch` (the `StepLoop`), and the Keras internals they use still exist.

Oracle: the same model, seed, data and row order trained by `StepLoop`, one
`Model.train_on_batch` per batch, Keras' own documented path.
"""

import keras
import numpy as np
import pytest

from keras_tl.data.registry import load_task
from keras_tl.networks.network import Network
from keras_tl.networks.transfer import freeze
from keras_tl.training import loops
from keras_tl.training.fit import compile_model
from keras_tl.training.recipes import L2SP

BACKEND = keras.config.backend()
FAST_LOOP = {
    "jax": "JaxEpochLoop", "tensorflow": "TensorFlowEpochLoop", "torch": "TorchStepLoop",
}[BACKEND]


@pytest.fixture(scope="module")
def data():
    task = load_task("digits:0-4")
    return task.x_train[:50], task.y_train[:50]  # 50 rows: batches of 16, 16, 16, 2.


def _small_cnn(dropout=0.0):
    keras.utils.set_random_seed(3)
    return Network("small_cnn", {"dropout": dropout}).build((8, 8, 1), 5, seed=3)


def _batch_norm_net():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 1))
    # No conv bias: its gradient through BatchNormalization is zero up to
    # rounding, which Adam would scale up into noise of the size of its step.
    hidden = keras.layers.Conv2D(4, 3, use_bias=False, name="conv")(inputs)
    hidden = keras.layers.BatchNormalization(name="bn")(hidden)
    hidden = keras.layers.Flatten()(keras.layers.ReLU()(hidden))
    return keras.Model(inputs, keras.layers.Dense(5, name="head")(hidden))


def _residual_net():
    """A graph that is not a chain, with a nested functional block."""
    keras.utils.set_random_seed(3)
    block_in = keras.Input((8, 8, 4))
    block = keras.Model(block_in, keras.layers.Conv2D(4, 3, padding="same")(block_in),
                        name="block")
    inputs = keras.Input((8, 8, 1))
    hidden = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    hidden = keras.layers.Add()([hidden, block(hidden)])
    hidden = keras.layers.Dropout(0.2)(keras.layers.Flatten()(hidden))
    return keras.Model(inputs, keras.layers.Dense(5, name="head")(hidden))


def _train(make_loop, build, data, batch_size=16, epochs=3, prepare=None):
    x, y = data
    model = build()
    if prepare:
        prepare(model)
    compile_model(model, "classification", "adam", 0.01)
    loop = make_loop(model)
    callbacks = keras.callbacks.CallbackList([], model=model)
    callbacks.on_train_begin()
    orders = np.random.default_rng(0)
    losses = [loss for _ in range(epochs)
              for loss in loop.run_epochs(x, y, [orders.permutation(len(y))], batch_size,
                                          callbacks)]
    return model, losses, loop


def _assert_same_training(build, data, prepare=None, batch_size=16):
    fast, fast_losses, loop = _train(loops.training_loop, build, data, batch_size,
                                     prepare=prepare)
    steps, step_losses, _ = _train(loops.StepLoop, build, data, batch_size, prepare=prepare)
    assert type(loop).__name__ == FAST_LOOP
    np.testing.assert_allclose(fast_losses, step_losses, rtol=1e-5, atol=1e-6)
    for received, expected in zip(fast.get_weights(), steps.get_weights()):
        np.testing.assert_allclose(received, expected, rtol=1e-4, atol=1e-5)
    return fast, steps


def test_the_backend_loop_trains_like_train_on_batch_with_a_smaller_last_batch(data):
    fast, _ = _assert_same_training(_small_cnn, data)
    initial = _small_cnn()
    # It trained (the weights moved), so the equality above is not trivial.
    assert not np.allclose(fast.get_layer("conv1").get_weights()[0],
                           initial.get_layer("conv1").get_weights()[0])


def test_the_backend_loop_with_dropout_draws_the_same_masks_when_batches_are_whole(data):
    # 48 rows in batches of 16: no padded batch, so even JAX draws the same masks.
    x, y = data
    _assert_same_training(lambda: _small_cnn(dropout=0.5), (x[:48], y[:48]))


def test_the_backend_loop_leaves_frozen_weights_untouched(data):
    def freeze_two(model):
        freeze(model, transferred=["conv1", "conv2", "fc1"], depth=2)

    before = {name: _small_cnn().get_layer(name).get_weights() for name in ("conv1", "conv2")}
    fast, _ = _assert_same_training(_small_cnn, data, prepare=freeze_two)
    for name, weights in before.items():
        for received, expected in zip(fast.get_layer(name).get_weights(), weights):
            np.testing.assert_array_equal(received, expected)
    assert not np.allclose(fast.get_layer("fc1").get_weights()[0],
                           _small_cnn().get_layer("fc1").get_weights()[0])


def test_the_backend_loop_adds_regularisation_losses_like_train_on_batch(data):
    def pull_to_zero(model):
        for variable in model.get_layer("fc1").trainable_weights:
            variable.regularizer = L2SP(5.0, np.zeros(variable.shape, "float32"))

    fast, _ = _assert_same_training(_small_cnn, data, prepare=pull_to_zero)
    plain, _, _ = _train(loops.StepLoop, _small_cnn, data)
    # The penalty acted: fc1 ended nearer zero than without it.
    assert (np.abs(fast.get_layer("fc1").get_weights()[0]).sum()
            < np.abs(plain.get_layer("fc1").get_weights()[0]).sum())


def test_the_backend_loop_trains_batch_normalization_like_train_on_batch(data):
    fast, _ = _assert_same_training(_batch_norm_net, data)
    if BACKEND == "jax":
        assert loops.training_loop(fast).pad is False  # Padding would shift the statistics.


def test_the_backend_loop_trains_a_residual_graph_with_a_nested_model(data):
    x, y = data
    _assert_same_training(_residual_net, (x[:48], y[:48]))


def test_a_new_compile_or_freeze_gets_a_new_loop():
    model = _small_cnn()
    compile_model(model, "classification", "adam", 0.01)
    first = loops.training_loop(model)
    assert loops.training_loop(model) is first
    freeze(model, transferred=["conv1", "conv2", "fc1"], depth=1)
    second = loops.training_loop(model)
    assert second is not first
    compile_model(model, "classification", "adam", 0.01)
    assert loops.training_loop(model) is not second


def test_augmentation_trains_through_train_on_batch():
    model = _small_cnn()
    compile_model(model, "classification", "adam", 0.01)
    assert type(loops.training_loop(model, augment=lambda x: x)) is loops.StepLoop


def test_the_keras_internal_the_loops_need_still_builds_the_optimizer(data):
    # Fails loudly if a Keras upgrade removes or renames `Trainer._symbolic_build`.
    x, y = data
    model = _small_cnn()
    compile_model(model, "classification", "adam", 0.01)
    loops.build_for_training(model, x[:16], y[:16])
    assert model.optimizer.built and len(model.optimizer.variables) > 0


@pytest.mark.skipif(BACKEND != "torch", reason="the direct forward is the torch loop's")
@pytest.mark.parametrize("build", [_small_cnn, _batch_norm_net, _residual_net],
                         ids=["chain", "batch_norm", "residual_nested"])
def test_the_torch_direct_forward_gives_the_model_outputs(build, data):
    # Fails loudly if a Keras upgrade changes `Function._run_through_graph`.
    from keras_tl.training.loops.torch_steps import DirectForward

    model = build()
    x = keras.ops.convert_to_tensor(data[0][:8])
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(DirectForward(model)(x, False)),
        keras.ops.convert_to_numpy(model(x, training=False)), rtol=1e-5, atol=1e-6,
    )


@pytest.mark.skipif(BACKEND != "torch", reason="the direct forward is the torch loop's")
def test_torch_models_the_direct_forward_cannot_run_train_through_train_on_batch(data):
    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 1))
    hidden = keras.layers.Dense(4, activity_regularizer="l2")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(5)(hidden))
    compile_model(model, "classification", "adam", 0.01)
    assert type(loops.training_loop(model)) is loops.StepLoop

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(5)

        def call(self, x):
            return self.dense(keras.ops.reshape(x, (-1, 64)))

    subclassed = Subclassed()
    subclassed(data[0][:2])
    compile_model(subclassed, "classification", "adam", 0.01)
    assert type(loops.training_loop(subclassed)) is loops.StepLoop


def _masked_sequence_net():
    """Token inputs with padding (0) masked out of the average: Keras passes the
    mask between layers inside `Layer.__call__`."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((6,), dtype="int32")
    hidden = keras.layers.Embedding(10, 4, mask_zero=True)(inputs)
    hidden = keras.layers.GlobalAveragePooling1D()(hidden)
    return keras.Model(inputs, keras.layers.Dense(5, name="head")(hidden))


def test_the_backend_loop_trains_a_masked_sequence_model_like_train_on_batch():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 10, size=(48, 6)).astype("int32")
    tokens[:, 4:] = 0  # Padding.
    labels = rng.integers(0, 5, size=48)
    _assert_same_training(_masked_sequence_net, (tokens, labels))


def test_epochs_in_one_call_train_exactly_as_one_call_per_epoch(data):
    x, y = data
    rng = np.random.default_rng(1)
    orders = [rng.permutation(len(y)) for _ in range(4)]
    trained = []
    for grouping in ([4], [1, 1, 1, 1], [1, 3]):
        model = _small_cnn(dropout=0.3)
        compile_model(model, "classification", "adam", 0.01)
        loop = loops.training_loop(model)
        callbacks = keras.callbacks.CallbackList([], model=model)
        callbacks.on_train_begin()
        losses, done = [], 0
        for count in grouping:
            losses += loop.run_epochs(x, y, orders[done:done + count], 16, callbacks)
            done += count
        trained.append((losses, model.get_weights()))
    (losses, weights), others = trained[0], trained[1:]
    assert len(losses) == 4
    for other_losses, other_weights in others:
        np.testing.assert_allclose(other_losses, losses, rtol=1e-6)
        for received, expected in zip(other_weights, weights):
            np.testing.assert_array_equal(received, expected)


def test_epoch_batches_cut_each_epoch_and_calls_keep_batches_whole():
    orders = [np.arange(5), np.arange(5, 10)]
    batches = list(loops.epoch_batches(orders, 2))
    assert [(epoch, rows.tolist()) for epoch, rows in batches] == [
        (0, [0, 1]), (0, [2, 3]), (0, [4]), (1, [5, 6]), (1, [7, 8]), (1, [9])]
    x = np.zeros((10, 4), dtype="float32")  # 16 bytes a row.
    # 64 bytes a call: 4 rows, never a batch cut in two.
    sizes = [[len(rows) for _, rows in call] for call in loops.calls(x, batches, 64)]
    assert sizes == [[2, 2], [1, 2], [2, 1]]
    assert [len(call) for call in loops.calls(x, batches)] == [6]


def test_epoch_means_weigh_each_step_by_its_rows():
    batches = [(0, [0, 1, 2]), (0, [3]), (1, [4, 5])]
    # Epoch 0: (3 * 1.0 + 1 * 5.0) / 4 = 2.0; epoch 1: 0.5.
    assert loops.epoch_means(2, [1.0, 5.0, 0.5], batches) == [2.0, 0.5]
    # A stopped call: only the epochs that ran.
    assert loops.epoch_means(2, [1.0], batches[:1]) == [1.0]


def test_epoch_groups_run_one_epoch_a_call_while_epochs_are_watched():
    groups = loops.EpochGroups(5, per_epoch=True, seconds=1e9)
    counts = []
    while groups.remaining:
        counts.append(groups.next())
        groups.done(counts[-1])
    assert counts == [1, 1, 1, 1, 1]


def test_epoch_groups_start_with_one_epoch_then_fill_the_time_they_aim_at():
    groups = loops.EpochGroups(50, per_epoch=False, seconds=1e9)
    assert groups.next() == 1
    groups.done(1)
    assert groups.next() == 49  # Never more than remain.
    groups = loops.EpochGroups(50, per_epoch=False, seconds=0.0)
    groups.next()
    groups.done(1)
    assert groups.next() == 1  # At least one.


class _EpochLog(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(("begin", epoch))

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("end", epoch, round(logs["loss"], 6)))


def test_fit_with_epochs_grouped_trains_and_reports_epochs_as_one_per_call(monkeypatch):
    from keras_tl.training import fit as fit_module

    task = load_task("digits:parity").subsample(40, seed=0)
    runs = []
    for per_epoch in (False, True):
        if per_epoch:
            class PerEpoch(loops.EpochGroups):
                def __init__(self, epochs, per_epoch, seconds=1.0):
                    super().__init__(epochs, True, seconds)

            monkeypatch.setattr(fit_module, "EpochGroups", PerEpoch)
        model = _small_cnn()
        compile_model(model, "classification", "adam", 0.01)
        log = _EpochLog()
        settings = fit_module.FitSettings(epochs=6, batch_size=16, callbacks=(log,))
        assert fit_module.fit(model, task, settings, seed=4) == 6
        runs.append((log.events, model.get_weights()))
    (grouped_events, grouped), (events, weights) = runs
    assert grouped_events == events
    assert [event[:2] for event in events] == [
        (kind, epoch) for epoch in range(6) for kind in ("begin", "end")]
    for received, expected in zip(grouped, weights):
        np.testing.assert_array_equal(received, expected)


@pytest.mark.skipif(BACKEND != "torch", reason="the direct forward is the torch loop's")
def test_a_torch_layer_adding_a_loss_in_call_trains_through_train_on_batch(data):
    class Penalised(keras.layers.Layer):
        def call(self, inputs):
            self.add_loss(0.1 * keras.ops.mean(keras.ops.square(inputs)))
            return inputs

    def build():
        keras.utils.set_random_seed(3)
        inputs = keras.Input((8, 8, 1))
        hidden = Penalised()(keras.layers.Flatten()(inputs))
        return keras.Model(inputs, keras.layers.Dense(5, name="head")(hidden))

    model = build()
    compile_model(model, "classification", "adam", 0.01)
    loop = loops.training_loop(model)
    callbacks = keras.callbacks.CallbackList([], model=model)
    callbacks.on_train_begin()
    x, y = data
    loop.run_epochs(x, y, [np.arange(len(y))], 16, callbacks)
    # Direct calls would not clear the layer's losses between steps.
    assert type(loop.fallback) is loops.StepLoop


def test_a_regularizer_set_after_the_first_epoch_is_in_the_loss(data):
    x, y = data
    runs = []
    for make_loop in (loops.training_loop, loops.StepLoop):
        model = _small_cnn()
        compile_model(model, "classification", "adam", 0.01)
        loop = make_loop(model)
        callbacks = keras.callbacks.CallbackList([], model=model)
        callbacks.on_train_begin()
        order = np.arange(len(y))
        losses = loop.run_epochs(x, y, [order], 16, callbacks)
        for variable in model.get_layer("fc1").trainable_weights:
            variable.regularizer = L2SP(5.0, np.zeros(variable.shape, "float32"))
        losses += loop.run_epochs(x, y, [order], 16, callbacks)
        runs.append((losses, model.get_weights()))
    (fast_losses, fast), (step_losses, steps) = runs
    np.testing.assert_allclose(fast_losses, step_losses, rtol=1e-5, atol=1e-6)
    for received, expected in zip(fast, steps):
        np.testing.assert_allclose(received, expected, rtol=1e-4, atol=1e-5)
