"""Torch versions of common Keras layers, losses and Adam, without Keras' op layer.

On torch each `keras.ops` call converts and checks its arguments before the
torch kernel runs, and a training step of a small network is mostly such
calls. Each function here returns a torch equivalent of one Keras piece, or
None where that piece (its exact class and settings) is not covered; the
caller then uses Keras' own:

* `native_call(layer)`: `layer.call(x)` on the layer's own variables (so
  gradients reach them as through Keras) for `Dense`, `Conv1D`/`Conv2D` (valid
  padding, or same padding where it is symmetric), `MaxPooling2D` and
  `AveragePooling2D` (valid padding) and `Flatten`.
* `native_loss(model)`: `model.compute_loss` for keras-tl's three compiled
  losses on a single-output model without regularisation losses.
* `native_adam(optimizer)`: `optimizer.apply` for a plain `keras.optimizers.Adam`.

Each runs the torch operations Keras' torch backend (keras/src/backend/torch)
runs, in the same order and memory layout, so values and gradients are Keras'
bit for bit (`tests/test_training/test_torch_native.py` compares each with
Keras'), and a run's numbers do not change. Imported on the torch backend only.
"""

import keras


def _activation(layer):
    """The layer's activation as a torch function (None: identity)."""
    import torch

    if layer.activation is keras.activations.relu:
        return torch.relu
    if layer.activation in (None, keras.activations.linear):
        return None
    return layer.activation  # Keras' activation functions accept torch tensors.


def _plain_weights(layer):
    """Whether the layer's kernel is its stored float32 variable (no LoRA, no
    quantization)."""
    return (
        not getattr(layer, "lora_enabled", False)
        and getattr(layer, "quantization_mode", None) is None
        and layer.dtype_policy.name == "float32"
    )


def _dense(layer):
    import torch

    activation = _activation(layer)
    kernel, bias = layer._kernel, layer.bias

    def call(inputs):
        outputs = torch.matmul(inputs, kernel.value)
        if bias is not None:
            outputs = outputs + bias.value
        return outputs if activation is None else activation(outputs)

    return call


def _padding(layer):
    """Torch's symmetric padding for the layer, or None where Keras pads unevenly."""
    if layer.padding == "valid":
        return 0
    if layer.padding != "same" or any(stride != 1 for stride in layer.strides):
        return None
    spans = [(size - 1) * rate for size, rate in zip(layer.kernel_size, layer.dilation_rate)]
    return None if any(span % 2 for span in spans) else tuple(span // 2 for span in spans)


def _to_channels_first(rank):
    return (0, rank + 1, *range(1, rank + 1))


def _to_channels_last(rank):
    return (0, *range(2, rank + 2), 1)


# Memory layouts follow Keras' torch ops (keras/src/backend/torch/nn.py): layer
# outputs then have the same strides, and Keras' unseeded dropout, which draws
# its mask in memory order, draws the same mask after a native layer.


def _convolution(layer):
    import torch
    import torch.nn.functional as F

    rank = layer.rank
    padding = _padding(layer)
    if rank not in (1, 2) or padding is None:
        return None
    function = F.conv1d if rank == 1 else F.conv2d
    activation = _activation(layer)
    channels_last = layer.data_format == "channels_last"
    kernel, bias = layer._kernel, layer.bias
    # Keras' kernel is (*spatial, in / groups, out); torch's (out, in / groups, *spatial).
    kernel_order = (rank + 1, rank, *range(rank))
    bias_shape = (1,) * (rank + 1) + (-1,) if channels_last else (1, -1) + (1,) * rank

    def call(inputs):
        weights = kernel.value.permute(kernel_order)
        if channels_last:
            inputs = inputs.permute(_to_channels_first(rank)).contiguous()
            if rank == 2:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
                weights = weights.contiguous(memory_format=torch.channels_last)
        outputs = function(
            inputs, weights, stride=layer.strides, padding=padding,
            dilation=layer.dilation_rate, groups=layer.groups,
        )
        if channels_last:
            outputs = outputs.permute(_to_channels_last(rank))
        if bias is not None:
            outputs = outputs + bias.value.reshape(bias_shape)
        return outputs if activation is None else activation(outputs)

    return call


def _pooling(layer, function):
    if layer.padding != "valid":
        return None
    channels_last = layer.data_format == "channels_last"

    def call(inputs):
        if channels_last:
            inputs = inputs.permute(_to_channels_first(2)).contiguous()
        outputs = function(inputs, layer.pool_size, layer.strides)
        return outputs.permute(_to_channels_last(2)) if channels_last else outputs

    return call


def _max_pooling(layer):
    import torch.nn.functional as F

    return _pooling(layer, F.max_pool2d)


def _average_pooling(layer):
    import torch.nn.functional as F

    return _pooling(layer, F.avg_pool2d)


def _flatten(layer):
    channels_first = layer.data_format == "channels_first"

    def call(inputs):
        if channels_first and inputs.ndim > 2:
            inputs = inputs.permute(0, *range(2, inputs.ndim), 1)
        return inputs.reshape(inputs.shape[0], -1)

    return call


_BUILDERS = {
    keras.layers.Dense: _dense,
    keras.layers.Conv1D: _convolution,
    keras.layers.Conv2D: _convolution,
    keras.layers.MaxPooling2D: _max_pooling,
    keras.layers.AveragePooling2D: _average_pooling,
    keras.layers.Flatten: _flatten,
}


def native_call(layer):
    """A torch function computing `layer.call(inputs)` for one input tensor, or
    None where the layer (its exact class and settings) is not covered."""
    builder = _BUILDERS.get(type(layer))
    if builder is None or not _plain_weights(layer):
        return None
    return builder(layer)


# Losses: keras-tl's compiled losses (`keras_tl.training.fit.loss_for`), per
# sample as Keras' torch backend computes them, then Keras' default reduction
# ("sum_over_batch_size": the sum over the per-sample losses divided by their
# number), so values and gradients come out as Keras' do.


def _over_batch(values):
    import torch

    return torch.sum(values) / values.numel()


def _sparse_categorical_crossentropy(labels, logits):
    import torch.nn.functional as F

    if logits.ndim != 2 or labels.ndim != 1:
        return None
    return _over_batch(F.cross_entropy(logits, labels.long(), reduction="none"))


def _binary_crossentropy(labels, logits):
    import torch
    import torch.nn.functional as F

    if labels.shape != logits.shape or labels.dtype != logits.dtype:
        return None
    values = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    return _over_batch(torch.mean(values, dim=-1))


def _mean_squared_error(labels, predictions):
    import torch

    if labels.shape != predictions.shape or labels.dtype != predictions.dtype:
        return None
    return _over_batch(torch.mean(torch.square(labels - predictions), dim=-1))


def _loss_function(loss):
    """The torch function of one Keras loss object, or None."""
    if loss.reduction != "sum_over_batch_size":
        return None
    kind = type(loss)
    config = loss.get_config()
    if kind is keras.losses.SparseCategoricalCrossentropy:
        plain = config["from_logits"] and config["ignore_class"] is None
        return _sparse_categorical_crossentropy if plain and config.get("axis", -1) == -1 else None
    if kind is keras.losses.BinaryCrossentropy:
        plain = config["from_logits"] and not config["label_smoothing"]
        return _binary_crossentropy if plain and config.get("axis", -1) == -1 else None
    if kind is keras.losses.MeanSquaredError:
        return _mean_squared_error
    return None


def native_loss(model):
    """A function `(labels, predictions) -> loss` equal to `model.compute_loss`
    in training, or None. A function's None for a batch (labels of another
    shape or dtype) means: use Keras'."""
    if type(model).compute_loss is not keras.Model.compute_loss or model.losses:
        return None
    if not isinstance(model.loss, keras.losses.Loss) or len(model.outputs) != 1:
        return None
    return _loss_function(model.loss)


def native_adam(optimizer):
    """A function `(grads, variables)` doing `optimizer.apply(grads, variables)`
    for a built `keras.optimizers.Adam` with a constant learning rate and none of
    amsgrad, weight decay, clipping, EMA, gradient accumulation or loss scaling;
    else None. Follows Keras' torch Adam (`_parallel_update_step`)."""
    if not isinstance(optimizer, keras.optimizers.Adam) or not optimizer.built:
        return None
    plain = (
        not optimizer.amsgrad and optimizer.weight_decay is None
        and not (optimizer.clipnorm or optimizer.clipvalue or optimizer.global_clipnorm)
        and not optimizer.use_ema and not optimizer.gradient_accumulation_steps
        and optimizer.loss_scale_factor is None
        and isinstance(optimizer._learning_rate, keras.Variable)
    )
    if not plain:
        return None
    import torch

    beta_1, beta_2, epsilon = optimizer.beta_1, optimizer.beta_2, optimizer.epsilon

    def apply(grads, variables):
        if any(grad is None for grad in grads) or any(
            v.constraint is not None or getattr(v, "overwrite_with_gradient", False)
            for v in variables
        ):
            optimizer.apply(grads, variables)  # What Keras does for these, as it does it.
            return
        indices = [optimizer._get_variable_index(variable) for variable in variables]
        values = [variable.value for variable in variables]
        dtype = values[0].dtype
        learning_rate = optimizer._learning_rate.value.to(dtype)
        step = (optimizer.iterations.value + 1).to(dtype)
        beta_1_power = torch.pow(torch.tensor(beta_1, dtype=dtype), step)
        beta_2_power = torch.pow(torch.tensor(beta_2, dtype=dtype), step)
        alpha = learning_rate * torch.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        m_list = [optimizer._momentums[index].value for index in indices]
        v_list = [optimizer._velocities[index].value for index in indices]
        torch._foreach_mul_(m_list, beta_1)
        torch._foreach_add_(m_list, grads, alpha=1 - beta_1)
        torch._foreach_mul_(v_list, beta_2)
        torch._foreach_add_(v_list, torch._foreach_mul(grads, grads), alpha=1 - beta_2)
        torch._foreach_add_(
            values,
            torch._foreach_div(
                torch._foreach_mul(m_list, alpha),
                torch._foreach_add(torch._foreach_sqrt(v_list), epsilon),
            ),
            alpha=-1,
        )
        optimizer.iterations.value.add_(1)

    return apply
