"""Models -> arrays for the scores: features at a layer, source probabilities."""

import math

import keras
import numpy as np

from keras_tl.data import ondisk
from keras_tl.errors import ConfigError, DataError
from keras_tl.networks.units import HEAD, transfer_units
from keras_tl.training.fit import predict


def feature_layer(model, transferred, depth):
    """The layer whose outputs feed the scores for a trial frozen to `depth`.

    It is where the frozen part ends: the last layer of the `depth`-th transferred
    unit; with nothing or everything frozen, the input of the head (the whole
    trunk).
    """
    units = transfer_units(transferred)
    if 0 < depth < len(units):
        return units[depth - 1][1][-1]
    names = [layer.name for layer in model.layers]
    output_layer = model.get_layer(HEAD) if HEAD in names else model.layers[-1]
    head_input = output_layer.input
    for layer in reversed(model.layers):
        if layer is not output_layer and layer.output is head_input:
            return layer.name
    return model.layers[-2].name


def layer_features(model, layer_name, x):
    """Activations of `layer_name` on `x`, flattened per sample, as float64."""
    if layer_name not in [layer.name for layer in model.layers]:
        raise ConfigError(
            f"Unknown layer {layer_name!r}. Layers: "
            f"{[layer.name for layer in model.layers]}."
        )
    extractor = keras.Model(model.inputs[0], model.get_layer(layer_name).output)
    width = math.prod(extractor.outputs[0].shape[1:])
    if len(x) * width * 8 > ondisk.MAX_IN_MEMORY_BYTES:
        raise DataError(
            f"Scores at layer {layer_name!r} need {len(x)} x {width} float64 features "
            f"({len(x) * width * 8 / 2**30:.1f} GiB), more than the "
            f"{ondisk.MAX_IN_MEMORY_BYTES / 2**30:.1f} GiB keras-tl holds in memory. "
            f"Score a later layer (a deeper freeze depth, or --layer), fewer rows "
            f"(smaller train_sizes), or leave feature scores out (scores: [leep, nce])."
        )
    features = predict(extractor, x)
    return features.reshape(len(x), -1).astype("float64")


_PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid", "log_softmax")
_ROW_SUM_TOLERANCE = 1e-5


def output_activation(model):
    """The activation that produces `model`'s (first) output, when the graph says.

    Returns `"softmax"`, `"sigmoid"` or `"log_softmax"` when the output layer is a
    `Softmax` layer, an `Activation` layer with one of them, or a layer built with
    `activation=` one of them (e.g. `Dense(10, activation="softmax")`, the head of
    `keras.applications` models with the default `classifier_activation`); a
    nested functional or Sequential model is followed down to its own output
    layer. None otherwise: a linear head (logits), any other activation, or a
    subclassed model whose `call()` cannot be read.
    """
    layer = _output_layer(model)
    for _ in range(32):  # Nested models, innermost last; the bound only guards cycles.
        if not isinstance(layer, keras.Model):
            break
        layer = _output_layer(layer)
    if layer is None:
        return None
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    name = getattr(getattr(layer, "activation", None), "__name__", None)
    return name if name in _PROBABILITY_ACTIVATIONS else None


def _output_layer(model):
    """The layer that produces `model.outputs[0]`, or None where there is no graph."""
    if getattr(model, "inputs", None) is None:
        return None  # Subclassed: its call() is opaque.
    try:
        return model.outputs[0]._keras_history.operation
    except (AttributeError, IndexError, TypeError):
        layers = getattr(model, "layers", None)
        return layers[-1] if isinstance(model, keras.Sequential) and layers else None


def _looks_like_probabilities(values):
    """Every entry in [0, 1] and every row summing to 1 within 1e-5."""
    return bool(
        values.ndim == 2
        and values.shape[1] > 1
        and np.all(np.isfinite(values))
        and np.all(values >= 0.0)
        and np.all(values <= 1.0)
        and np.all(np.abs(values.sum(axis=1) - 1.0) <= _ROW_SUM_TOLERANCE)
    )


def _normalise_rows(values):
    """Rows of non-negative values rescaled to sum to 1 (an all-zero row: uniform)."""
    values = np.clip(values, 0.0, None)
    totals = values.sum(axis=1, keepdims=True)
    uniform = np.full_like(values, 1.0 / values.shape[1])
    return np.divide(values, totals, out=uniform, where=totals > 0)


def source_probabilities(model, source_kind, x):
    """Class probabilities of a classification or binary source model on `x`.

    The source may end in logits (how keras-tl trains its own sources) or already
    in probabilities (a pretrained model with a softmax or sigmoid head); the
    probabilities are never squashed twice. What the output is comes from the
    graph first (`output_activation`): a softmax output is used as it is
    (renormalised in float64), a log-softmax output is exponentiated, a sigmoid
    output is the probability of each class. A head the graph says nothing about
    (a linear layer, a `Lambda`, a subclassed model) is taken as probabilities
    when its values are in [0, 1] and every row sums to 1 within 1e-5, and as
    logits otherwise (softmax applied).

    A single output column (a binary source) is the positive class: its
    probability `p` (sigmoid head) or its logit (sigmoid applied), returned as
    the two classes `[1 - p, p]`. A multi-column sigmoid head (independent,
    multi-label probabilities) has its rows rescaled to sum to 1.

    Args:
        model: keras.Model. The source network with its own head.
        source_kind: str. The source task's kind, `"classification"` or
            `"binary"` (what the head means is read from its width and graph).
        x: array. Target inputs.

    Returns:
        A float64 array of shape (N, Cs) whose rows sum to 1.
    """
    outputs = predict(model, x)
    if isinstance(outputs, list):
        outputs = outputs[0]
    outputs = outputs.astype("float64").reshape(len(x), -1)
    activation = output_activation(model)
    if activation == "log_softmax":
        return _normalise_rows(np.exp(outputs))
    if outputs.shape[1] == 1:
        if activation == "sigmoid":
            positive = np.clip(outputs[:, 0], 0.0, 1.0)
        else:
            positive = 0.5 * (1.0 + np.tanh(0.5 * outputs[:, 0]))  # Sigmoid, no overflow.
        return np.stack([1.0 - positive, positive], axis=1)
    if activation in ("softmax", "sigmoid") or _looks_like_probabilities(outputs):
        return _normalise_rows(outputs)
    shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def takes_inputs_of(model, task):
    """Whether `model` can read `task`'s inputs (a source network built for
    inputs of another shape shares only the layers whose weights fit)."""
    shape = tuple(model.inputs[0].shape[1:])
    return len(shape) == len(task.input_shape) and all(
        size is None or size == expected for size, expected in zip(shape, task.input_shape)
    )
