"""KerasHub backbones (an optional extra: `pip install 'keras-tl[hub]'`).

`model: {keras_hub: PATH_OR_PRESET}` loads a backbone with
`keras_hub.models.Backbone.from_preset`: a local preset folder (one written by
`backbone.save_to_preset(folder)`) or a KerasHub preset name (downloaded on
first use). The model keras-tl trains is built on the backbone's own layer graph
(its layers are the model's layers, so they transfer and freeze one by one, by
block where the names say so, e.g. `stack1_block0_*`), then pooled and given a
`head`. Backbones with one image input are supported; text backbones, whose
inputs are token ids and masks, are not.

keras_hub is imported only when such a model is built: it pulls in TensorFlow
and tensorflow-text, so it is never a requirement of keras-tl itself.
"""

import keras

from keras_tl.errors import ConfigError

POOLING = {
    ("avg", 3): keras.layers.GlobalAveragePooling1D,
    ("max", 3): keras.layers.GlobalMaxPooling1D,
    ("avg", 4): keras.layers.GlobalAveragePooling2D,
    ("max", 4): keras.layers.GlobalMaxPooling2D,
}


def _keras_hub():
    try:
        import keras_hub
    except ImportError as error:
        raise ConfigError(
            f"model.keras_hub: KerasHub is an optional extra and is not installed "
            f"({error}). Install it with: pip install 'keras-tl[hub]'"
        ) from None
    return keras_hub


def load_backbone(preset, weights="preset"):
    """Loads a KerasHub backbone from a preset folder or name.

    Args:
        preset: str. A local preset folder or a KerasHub preset name.
        weights: str or None. `"preset"`: the preset's weights; None: its
            architecture with random weights.

    Returns:
        A `keras_hub.models.Backbone` (a functional `keras.Model`).
    """
    keras_hub = _keras_hub()
    try:
        return keras_hub.models.Backbone.from_preset(
            preset, load_weights=weights == "preset"
        )
    except Exception as error:
        message = " ".join(str(error).split())[:200]
        raise ConfigError(
            f"model.keras_hub: cannot load the preset {preset!r} ({type(error).__name__}: "
            f"{message}). Expected a folder written by backbone.save_to_preset(folder) "
            f"or a KerasHub preset name (downloaded on first use)."
        ) from None


def backbone(input_shape, num_outputs, keras_hub, weights=None, pooling="avg"):
    """Builds a KerasHub backbone with a task head.

    Args:
        input_shape: tuple. The task's sample shape.
        num_outputs: int. Width of the head.
        keras_hub: str. A local preset folder or a KerasHub preset name.
        weights: str or None. `"preset"` (the preset's weights) or None (random
            initialisation of the preset's architecture).
        pooling: str. `"avg"` or `"max"` pooling of the last feature map.

    Returns:
        A functional `keras.Model` whose backbone layers are its own layers.
    """
    from keras_tl.networks.units import HEAD

    model = load_backbone(keras_hub, weights)
    inputs = model.inputs
    if len(inputs) != 1:
        raise ConfigError(
            f"model.keras_hub: the backbone of {keras_hub!r} takes {len(inputs)} inputs "
            f"({[tensor.name for tensor in inputs]}). Expected a backbone with one image "
            f"input (e.g. a ResNet, EfficientNet or MobileNet preset)."
        )
    expected = tuple(inputs[0].shape[1:])
    fits = len(expected) == len(input_shape) and all(
        size is None or size == given for size, given in zip(expected, input_shape)
    )
    if not fits:
        raise ConfigError(
            f"model.keras_hub: the backbone of {keras_hub!r} takes inputs of shape "
            f"{expected}, but the task's samples have shape {tuple(input_shape)}. Use a "
            f"task with matching samples (e.g. images:DIR?size=HxW)."
        )
    features = model.outputs[0]
    rank = len(features.shape)
    if rank != 2:
        features = POOLING[(pooling, rank)](name=f"{pooling}_pool")(features)
    outputs = keras.layers.Dense(num_outputs, name=HEAD)(features)
    return keras.Model(inputs, outputs, name=model.name)
