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


def source_probabilities(model, source_kind, x):
    """Class probabilities of a classification or binary source model on `x`."""
    logits = predict(model, x).astype("float64")
    if source_kind == "binary":
        positive = 1.0 / (1.0 + np.exp(-logits.reshape(-1)))
        return np.stack([1.0 - positive, positive], axis=1)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def takes_inputs_of(model, task):
    """Whether `model` can read `task`'s inputs (a source network built for
    inputs of another shape shares only the layers whose weights fit)."""
    shape = tuple(model.inputs[0].shape[1:])
    return len(shape) == len(task.input_shape) and all(
        size is None or size == expected for size, expected in zip(shape, task.input_shape)
    )
