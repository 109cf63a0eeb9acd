"""The torch versions of Keras layers, losses and Adam (keras_tl.training.loops.torch_native)
compute what Keras computes.

Oracle: Keras itself on the same tensors and variables: `layer.call`,
`Model.compute_loss`, `Optimizer.apply` on a twin optimizer.
"""

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    keras.config.backend() != "torch", reason="torch_native is the torch loop's"
)


def _native():
    from keras_tl.training.loops import torch_native

    return torch_native


def _tensor(shape, seed=0):
    return keras.ops.convert_to_tensor(
        np.random.default_rng(seed).normal(size=shape).astype("float32")
    )


def _numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


COVERED = [
    ("dense", lambda: keras.layers.Dense(7, activation="relu"), (4, 5)),
    ("dense_no_bias_tanh", lambda: keras.layers.Dense(3, use_bias=False, activation="tanh"),
     (4, 5)),
    ("dense_on_sequences", lambda: keras.layers.Dense(3), (2, 6, 5)),
    ("conv2d_same", lambda: keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
     (2, 8, 8, 3)),
    ("conv2d_valid_strided", lambda: keras.layers.Conv2D(4, (3, 2), strides=(2, 1)),
     (2, 9, 9, 3)),
    ("conv2d_valid_dilated", lambda: keras.layers.Conv2D(4, (3, 2), dilation_rate=(1, 2)),
     (2, 9, 9, 3)),
    ("conv2d_same_dilated", lambda: keras.layers.Conv2D(4, 3, padding="same", dilation_rate=2),
     (2, 9, 9, 3)),
    ("conv2d_groups", lambda: keras.layers.Conv2D(4, 3, groups=2), (2, 6, 6, 4)),
    ("conv2d_channels_first",
     lambda: keras.layers.Conv2D(4, 3, padding="same", data_format="channels_first"),
     (2, 3, 8, 8)),
    ("conv1d", lambda: keras.layers.Conv1D(4, 5, padding="same", activation="sigmoid"),
     (2, 10, 3)),
    ("max_pool", lambda: keras.layers.MaxPooling2D(2), (2, 7, 7, 3)),
    ("max_pool_strided", lambda: keras.layers.MaxPooling2D(3, strides=2), (2, 9, 9, 3)),
    ("average_pool", lambda: keras.layers.AveragePooling2D(2), (2, 8, 8, 3)),
    ("flatten", lambda: keras.layers.Flatten(), (2, 4, 4, 3)),
    ("flatten_channels_first", lambda: keras.layers.Flatten(data_format="channels_first"),
     (2, 3, 4, 4)),
]


@pytest.mark.parametrize("make, shape", [case[1:] for case in COVERED],
                         ids=[case[0] for case in COVERED])
def test_a_native_layer_gives_the_layers_outputs_values_and_memory_layout(make, shape):
    keras.utils.set_random_seed(0)
    layer = make()
    inputs = _tensor(shape)
    layer.build(shape)
    native = _native().native_call(layer)
    assert native is not None
    expected, received = layer.call(inputs), native(inputs)
    # Keras' torch operations in Keras' order: bit for bit.
    np.testing.assert_array_equal(_numpy(received), _numpy(expected))
    # The same strides: Keras' unseeded dropout draws its mask in memory order.
    assert received.stride() == expected.stride()


def test_native_layers_pass_gradients_to_the_layers_variables():
    import torch

    keras.utils.set_random_seed(0)
    layer = keras.layers.Conv2D(4, 3, padding="same", activation="relu")
    inputs = _tensor((2, 6, 6, 3))
    layer.build(inputs.shape)
    gradients = []
    for forward in (layer.call, _native().native_call(layer)):
        for variable in layer.trainable_variables:
            variable.value.grad = None
        torch.sum(forward(inputs) ** 2).backward()
        gradients.append([_numpy(variable.value.grad) for variable in layer.trainable_variables])
    for received, expected in zip(*gradients):
        np.testing.assert_array_equal(received, expected)


NOT_COVERED = [
    ("conv2d_same_strided", lambda: keras.layers.Conv2D(4, 3, strides=2, padding="same"),
     (2, 8, 8, 3)),
    ("conv2d_same_even_kernel", lambda: keras.layers.Conv2D(4, 2, padding="same"), (2, 8, 8, 3)),
    ("conv1d_causal", lambda: keras.layers.Conv1D(4, 3, padding="causal"), (2, 10, 3)),
    ("conv3d", lambda: keras.layers.Conv3D(2, 2), (1, 4, 4, 4, 1)),
    ("max_pool_same", lambda: keras.layers.MaxPooling2D(2, padding="same"), (2, 7, 7, 3)),
    ("dropout", lambda: keras.layers.Dropout(0.5), (2, 4)),
    ("batch_norm", lambda: keras.layers.BatchNormalization(), (2, 4)),
    ("dense_subclass", lambda: type("MyDense", (keras.layers.Dense,), {})(3), (2, 4)),
    ("dense_bfloat16", lambda: keras.layers.Dense(3, dtype="mixed_bfloat16"), (2, 4)),
]


@pytest.mark.parametrize("make, shape", [case[1:] for case in NOT_COVERED],
                         ids=[case[0] for case in NOT_COVERED])
def test_layers_or_settings_the_native_code_does_not_follow_run_keras_call(make, shape):
    layer = make()
    layer.build(shape)
    assert _native().native_call(layer) is None


def test_a_lora_dense_layer_runs_keras_call():
    layer = keras.layers.Dense(3)
    layer.build((2, 4))
    layer.enable_lora(2)
    assert _native().native_call(layer) is None


def _compiled(loss, outputs=5):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(outputs)(inputs))
    model.compile(optimizer="adam", loss=loss)
    return model


LOSSES = [
    ("sparse_categorical", keras.losses.SparseCategoricalCrossentropy(from_logits=True), 5,
     lambda rng: rng.integers(0, 5, size=8)),
    ("binary", keras.losses.BinaryCrossentropy(from_logits=True), 1,
     lambda rng: rng.integers(0, 2, size=(8, 1)).astype("float32")),
    ("mean_squared_error", keras.losses.MeanSquaredError(), 3,
     lambda rng: rng.normal(size=(8, 3)).astype("float32")),
]


@pytest.mark.parametrize("loss, outputs, labels", [case[1:] for case in LOSSES],
                         ids=[case[0] for case in LOSSES])
def test_the_native_loss_equals_compute_loss(loss, outputs, labels):
    model = _compiled(loss, outputs)
    x = _tensor((8, 4))
    y = keras.ops.convert_to_tensor(labels(np.random.default_rng(1)))
    predictions = model(x, training=True)
    native = _native().native_loss(model)
    assert native is not None
    expected = model.compute_loss(x=x, y=y, y_pred=predictions, training=True)
    received = native(y, predictions)
    # Keras' operations, in Keras' order: the same value and gradient, bit for bit.
    assert _numpy(received) == _numpy(expected)
    weights = model.trainable_variables
    gradients = []
    for loss in (expected, received):
        for variable in weights:
            variable.value.grad = None
        loss.backward(retain_graph=True)
        gradients.append([_numpy(variable.value.grad) for variable in weights])
    for a, b in zip(*gradients):
        np.testing.assert_array_equal(a, b)


def test_losses_the_native_code_does_not_follow_use_compute_loss():
    native_loss = _native().native_loss
    assert native_loss(_compiled(keras.losses.SparseCategoricalCrossentropy())) is None
    assert native_loss(_compiled(
        keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1), 1)) is None
    assert native_loss(_compiled(keras.losses.MeanAbsoluteError(), 3)) is None
    regularised = _compiled(keras.losses.MeanSquaredError(), 3)
    regularised.layers[-1].kernel.regularizer = keras.regularizers.L2(0.1)
    assert native_loss(regularised) is None
    # Labels of another shape than the loss expects: None, so Keras' loss runs.
    binary = _native().native_loss(_compiled(keras.losses.BinaryCrossentropy(from_logits=True), 1))
    assert binary(keras.ops.ones((8,)), keras.ops.ones((8, 1))) is None


def _adam_twins(**options):
    """Two built Adam optimizers on two copies of the same variables."""
    copies = []
    for _ in range(2):
        variables = [keras.Variable(np.random.default_rng(i).normal(size=shape).astype("float32"))
                     for i, shape in enumerate([(3, 4), (4,)])]
        optimizer = keras.optimizers.Adam(learning_rate=0.01, **options)
        optimizer.build(variables)
        copies.append((optimizer, variables))
    return copies


def test_the_native_adam_update_equals_keras_apply_over_several_steps():
    (keras_adam, keras_variables), (native_adam, native_variables) = _adam_twins()
    apply = _native().native_adam(native_adam)
    assert apply is not None
    rng = np.random.default_rng(5)
    import torch

    with torch.no_grad():
        for _ in range(4):
            grads = [rng.normal(size=v.shape).astype("float32") for v in keras_variables]
            keras_adam.apply([keras.ops.convert_to_tensor(g) for g in grads], keras_variables)
            apply([keras.ops.convert_to_tensor(g) for g in grads], native_variables)
    assert int(native_adam.iterations.value) == int(keras_adam.iterations.value) == 4
    # Keras' operations in Keras' order: bit for bit.
    for received, expected in zip(native_variables, keras_variables):
        np.testing.assert_array_equal(_numpy(received.value), _numpy(expected.value))
    for received, expected in zip(native_adam.variables, keras_adam.variables):
        np.testing.assert_array_equal(_numpy(received.value), _numpy(expected.value))


@pytest.mark.parametrize("options", [
    {"amsgrad": True}, {"clipnorm": 1.0}, {"weight_decay": 0.1}, {"use_ema": True},
    {"gradient_accumulation_steps": 2}, {"loss_scale_factor": 2.0},
    {"learning_rate": keras.optimizers.schedules.ExponentialDecay(0.01, 10, 0.9)},
], ids=["amsgrad", "clipnorm", "weight_decay", "ema", "accumulation", "loss_scale", "schedule"])
def test_adam_settings_the_native_update_does_not_follow_use_keras_apply(options):
    variables = [keras.Variable(np.zeros((2,), "float32"))]
    optimizer = keras.optimizers.Adam(**{"learning_rate": 0.01, **options})
    optimizer.build(variables)
    assert _native().native_adam(optimizer) is None
    sgd = keras.optimizers.SGD(0.01)
    sgd.build(variables)
    assert _native().native_adam(sgd) is None
