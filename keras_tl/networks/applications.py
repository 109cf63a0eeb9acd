"""`keras.applications` networks as trunks: `model: {application: NAME}`."""

import importlib

import keras

from keras_tl.errors import ConfigError


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
    from keras_tl.networks.units import HEAD

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
