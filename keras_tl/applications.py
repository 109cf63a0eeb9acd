"""`keras.applications` backbones as transferable trunks, and their blocks.

An application becomes a flat functional model: task inputs -> (channel tiling,
`keras.layers.Resizing`) -> the application's own `preprocess_input` -> the
backbone's layers (built on that tensor with `input_tensor=`, so every backbone
layer is a layer of the model, not one nested layer) -> a `head`. Task images are
floats in [0, 1]; the preprocessing layer scales them to [0, 255] first, which is
what every `preprocess_input` expects.

Deep backbones are transferred and frozen by *block*: `transfer_units` groups
consecutive layers whose names share a block prefix (`block3_*` in VGG/Xception/
EfficientNet, `conv4_block*` in ResNet/DenseNet, `expanded_conv_3_*` in
MobileNetV3, `block_5_*` in MobileNetV2, `conv_dw_4`/`conv_pw_4` in MobileNet,
`stack1_block0_*` in KerasHub's ResNet);
every other layer with weights is its own unit. `freeze_depths` count units.
"""

import importlib
import re

import keras

from keras_tl.errors import ConfigError

# (pattern, block name template) pairs, tried in order.
BLOCK_PATTERNS = (
    (re.compile(r"^(block\d+)[a-z]?_"), r"\1"),  # VGG, Xception, EfficientNet
    (re.compile(r"^(conv\d+)_block"), r"\1"),  # ResNet, DenseNet: conv4_block2_1_conv
    (re.compile(r"^(expanded_conv(?:_\d+)?)_"), r"\1"),  # MobileNetV3
    (re.compile(r"^(block_\d+)_"), r"\1"),  # MobileNetV2: block_5_expand
    (re.compile(r"^conv_(?:dw|pw)_(\d+)"), r"conv_\1"),  # MobileNet: conv_dw_4, conv_pw_4
    (re.compile(r"^(stack\d+_block\d+)_"), r"\1"),  # KerasHub ResNet: stack1_block0_1_conv
)


def block_of(layer_name):
    """The block a layer belongs to (its own name when it is in no block)."""
    for pattern, template in BLOCK_PATTERNS:
        match = pattern.match(layer_name)
        if match:
            return match.expand(template)
    return layer_name


def transfer_units(layer_names):
    """Groups layer names (in model order) into transfer units (blocks).

    Args:
        layer_names: list of str. Layers with weights, in model order.

    Returns:
        A list of `(unit_name, [layer names])`, in model order.

    Example:

    >>> transfer_units(["block1_conv1", "block1_conv2", "block2_conv1", "fc1"])
    [('block1', ['block1_conv1', 'block1_conv2']), ('block2', ['block2_conv1']), ('fc1', ['fc1'])]
    """
    units = []
    for name in layer_names:
        block = block_of(name)
        if units and units[-1][0] == block:
            units[-1][1].append(name)
        else:
            units.append((block, [name]))
    return units


def _application(name):
    function = getattr(keras.applications, name, None)
    if not callable(function) or not name[:1].isupper():
        available = sorted(
            n for n in dir(keras.applications)
            if n[:1].isupper() and callable(getattr(keras.applications, n))
        )
        raise ConfigError(
            f"model.application: unknown application {name!r}. Expected one of "
            f"{', '.join(available)}."
        )
    return function


@keras.saving.register_keras_serializable(package="keras_tl")
class ApplicationPreprocessing(keras.layers.Layer):
    """Scales [0, 1] images to [0, 255] and applies an application's `preprocess_input`.

    Args:
        application: str. A `keras.applications` model name, e.g. `"VGG16"`.
    """

    def __init__(self, application, **kwargs):
        super().__init__(**kwargs)
        self.application = application
        module = importlib.import_module(_application(application).__module__)
        self._preprocess = module.preprocess_input

    def call(self, inputs):
        return self._preprocess(inputs * 255.0, data_format="channels_last")

    def get_config(self):
        return {**super().get_config(), "application": self.application}


def application(input_shape, num_outputs, application, weights=None,
                image_shape=None, pooling="avg"):
    """Builds a `keras.applications` backbone with a task head.

    Args:
        input_shape: tuple. The task's sample shape `(height, width, channels)`.
        num_outputs: int. Width of the head.
        application: str. E.g. `"MobileNetV3Small"`, `"VGG16"`, `"ResNet50"`.
        weights: str or None. `"imagenet"` (downloaded on first use) or None
            (random initialisation).
        image_shape: sequence or None. The backbone's input size `[h, w, 3]`;
            task images are resized to it. Default: the task's size, 3 channels.
        pooling: str. `"avg"` or `"max"` pooling of the last feature map.

    Returns:
        A functional `keras.Model` whose backbone layers are its own layers.
    """
    from keras_tl.models import HEAD

    function = _application(application)
    height, width, channels = (tuple(input_shape) + (1,))[:3]
    image_shape = tuple(image_shape or (height, width, 3))
    inputs = keras.Input(shape=tuple(input_shape), name="inputs")
    x = inputs
    if channels == 1 and image_shape[-1] == 3:
        x = keras.layers.Concatenate(axis=-1, name="gray_to_rgb")([x, x, x])
    if (height, width) != image_shape[:2]:
        x = keras.layers.Resizing(
            image_shape[0], image_shape[1], data_format="channels_last", name="resize"
        )(x)
    x = ApplicationPreprocessing(application, name="preprocess")(x)
    try:
        backbone = function(
            include_top=False, weights=weights, input_tensor=x, pooling=pooling,
            input_shape=image_shape,
        )
    except ValueError as error:
        raise ConfigError(
            f"model: {application} cannot be built for inputs {image_shape} "
            f"({str(error).splitlines()[0]})"
        ) from None
    except Exception as error:  # Download failures surface here when offline.
        raise ConfigError(
            f"model: {application} weights={weights!r} could not be loaded "
            f"({type(error).__name__}: {str(error).splitlines()[0]}). ImageNet weights "
            f"are downloaded on first use into $KERAS_HOME/models; without network "
            f"use weights: null or place the file there."
        ) from None
    outputs = keras.layers.Dense(num_outputs, name=HEAD)(backbone.output)
    return keras.Model(inputs, outputs, name=application)
