"""Networks defined once: built-in builders, `module:function` builders, `.keras` files.

`Network` builds a fresh model for any input shape and head width with a seed.
"""

import importlib
import os
import zipfile

import keras

from keras_tl.errors import ConfigError
from keras_tl.networks.units import HEAD, is_graph_model


def small_cnn(input_shape, num_outputs, filters=(16, 32), units=64):
    """A two-convolution network for small images (the digits tasks).

    Layers: `conv1`, `pool1`, `conv2`, `flatten`, `fc1`, `head`. The data format is
    fixed to channels-last so weight layouts never depend on a `keras.json`.

    Args:
        input_shape: tuple. `(height, width, channels)`.
        num_outputs: int. Width of the head.
        filters: pair of int. Filters of `conv1` and `conv2`.
        units: int. Width of `fc1`.

    Returns:
        A functional `keras.Model`.
    """
    inputs = keras.Input(shape=tuple(input_shape), name="inputs")
    x = keras.layers.Conv2D(
        filters[0], 3, padding="same", activation="relu",
        data_format="channels_last", name="conv1",
    )(inputs)
    x = keras.layers.MaxPooling2D(2, data_format="channels_last", name="pool1")(x)
    x = keras.layers.Conv2D(
        filters[1], 3, padding="same", activation="relu",
        data_format="channels_last", name="conv2",
    )(x)
    x = keras.layers.Flatten(data_format="channels_last", name="flatten")(x)
    x = keras.layers.Dense(units, activation="relu", name="fc1")(x)
    outputs = keras.layers.Dense(num_outputs, name=HEAD)(x)
    return keras.Model(inputs, outputs, name="small_cnn")


def mlp(input_shape, num_outputs, units=(64, 32)):
    """A multi-layer perceptron over flattened inputs.

    Layers: `flatten`, `fc1`, `fc2`, ..., `head`.

    Args:
        input_shape: tuple. Shape of one sample.
        num_outputs: int. Width of the head.
        units: sequence of int. Widths of the hidden layers.

    Returns:
        A functional `keras.Model`.
    """
    inputs = keras.Input(shape=tuple(input_shape), name="inputs")
    x = keras.layers.Flatten(name="flatten")(inputs)
    for index, width in enumerate(units, start=1):
        x = keras.layers.Dense(width, activation="relu", name=f"fc{index}")(x)
    outputs = keras.layers.Dense(num_outputs, name=HEAD)(x)
    return keras.Model(inputs, outputs, name="mlp")


BUILDERS = {"small_cnn": small_cnn, "mlp": mlp}


class Network:
    """A network definition that builds fresh models for any task.

    Args:
        definition: a built-in builder name (`"small_cnn"`, `"mlp"`), a
            `"package.module:function"` builder or a function taking
            `(input_shape, num_outputs, **options)`, a path to a `.keras` file, or
            a functional or Sequential `keras.Model`. Models from files or Python
            keep their architecture; their last layer is replaced by a new `head`
            and every build starts from fresh random weights. A builder may return
            a subclassed `keras.Model` (one with a `call()`), with its output layer
            named `head`: its transfer units follow `model.layers` order (the
            order the layers were assigned in `__init__`), and the frozen-prefix
            feature cache, feature scores and CKA are off for it (no layer graph).
        options: dict. Keyword arguments for a builder (e.g. `filters=[32, 32]`).
        unsafe_load: bool. Load a `.keras` file that holds code (a `Lambda`
            layer); only for files you trust. Default False: safe loading.

    Example:

    >>> network = keras_tl.Network("small_cnn", {"filters": [16, 32]})
    >>> model = network.build((8, 8, 1), num_outputs=10, seed=0)
    """

    def __init__(self, definition, options=None, unsafe_load=False):
        self.definition = definition
        self.options = dict(options or {})
        self.unsafe_load = unsafe_load
        self._builder = self._resolve(definition)

    @classmethod
    def from_config(cls, model_config, unsafe_load=False):
        """The network of an experiment's `model:` mapping (builder, file,
        application or keras_hub, with their options)."""
        definition = model_config.get("builder") or model_config.get("file")
        options = {k: v for k, v in model_config.items() if k not in ("builder", "file")}
        if "application" in model_config:
            definition = "keras_tl.networks.applications:application"
        if "keras_hub" in model_config:
            definition = "keras_tl.networks.hub:backbone"
        return cls(definition, options, unsafe_load)

    def with_options(self, **options):
        """The same definition with some builder options replaced."""
        return Network(self.definition, {**self.options, **options}, self.unsafe_load)

    def _resolve(self, definition):
        if isinstance(definition, keras.Model):
            return self._from_model(definition)
        if callable(definition):
            return definition
        if not isinstance(definition, str):
            raise ConfigError(
                f"model: expected a builder name, 'module:function', a .keras path or "
                f"a keras.Model. Received: {definition!r}."
            )
        if definition in BUILDERS:
            return BUILDERS[definition]
        if definition.endswith(".keras"):
            if self.options:
                raise ConfigError(
                    f"model: options {sorted(self.options)} apply to builders only, "
                    f"not to the file {definition!r}. Remove them."
                )
            return self._from_model(load_model_file(definition, self.unsafe_load))
        if ":" in definition:
            module_name, _, function_name = definition.partition(":")
            try:
                module = importlib.import_module(module_name)
                return getattr(module, function_name)
            except (ImportError, AttributeError) as error:
                raise ConfigError(
                    f"model: cannot import builder {definition!r} ({error}). Expected "
                    f"'package.module:function' importable from this environment."
                ) from None
        raise ConfigError(
            f"model: unknown builder {definition!r}. Expected one of "
            f"{', '.join(BUILDERS)}, 'package.module:function' or a path ending in "
            f".keras."
        )

    def _from_model(self, model):
        if not is_graph_model(model):
            raise ConfigError(
                f"model: {model.name!r} is a subclassed keras.Model instance, which "
                f"cannot be cloned with a new head. Pass a function "
                f"(input_shape, num_outputs) -> model instead, whose output layer is "
                f"named {HEAD!r}."
            )
        if len(model.inputs) != 1 or len(model.layers) < 2:
            raise ConfigError(
                f"model: {model.name!r} must have one input and at least one layer "
                f"before its output layer to serve as a transferable trunk."
            )
        input_shape = tuple(model.inputs[0].shape[1:])

        def build_from_model(task_input_shape, num_outputs):
            if tuple(task_input_shape) != input_shape:
                raise ConfigError(
                    f"model: {model.name!r} takes inputs of shape {input_shape}, but "
                    f"the task's samples have shape {tuple(task_input_shape)}."
                )
            trunk = keras.Model(model.inputs, model.layers[-2].output)
            clone = keras.models.clone_model(
                trunk, clone_function=lambda layer: _clone_layer(layer, self.unsafe_load)
            )
            outputs = keras.layers.Dense(num_outputs, name=HEAD)(clone.outputs[0])
            return keras.Model(clone.inputs, outputs, name=model.name)

        return build_from_model

    def build(self, input_shape, num_outputs, seed):
        """Builds a fresh model with seeded random weights.

        Args:
            input_shape: tuple. Shape of one sample.
            num_outputs: int. Width of the head.
            seed: int. Seeds the weight initialisation.

        Returns:
            A functional `keras.Model` whose last layer is named `head`.
        """
        keras.utils.set_random_seed(seed)
        model = self._builder(tuple(input_shape), num_outputs, **self.options)
        if isinstance(model, keras.Model) and not model.built:
            # A subclassed model has no weights until it sees a batch.
            model(keras.ops.zeros((1, *input_shape)))
        if not isinstance(model, keras.Model) or HEAD not in [
            layer.name for layer in model.layers
        ]:
            raise ConfigError(
                f"model: builder {self.definition!r} must return a keras.Model whose "
                f"output layer is named {HEAD!r}. Received: {type(model).__name__}."
            )
        return model

    def spec(self):
        """A JSON-friendly description of the definition (for configs and hashes)."""
        if isinstance(self.definition, keras.Model):
            return {"model": self.definition.name, **self.options}
        if callable(self.definition):
            name = f"{self.definition.__module__}:{self.definition.__qualname__}"
            return {"builder": name, **self.options}
        return {"builder": self.definition, **self.options}


def _clone_layer(layer, unsafe_load):
    """A new layer from `layer`'s config; code (a `Lambda`) only with the same
    consent that loaded it (`unsafe_load`, the CLI's `--unsafe-load`)."""
    return keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer), safe_mode=not unsafe_load
    )


def load_model_file(path, unsafe_load=False):
    """Loads a `.keras` file, safely by default; errors name the fix.

    Args:
        path: str.
        unsafe_load: bool. Load a model holding code (a `Lambda` layer); only for
            files you trust (the CLI's `--unsafe-load`).
    """
    safe_mode = not unsafe_load
    if not os.path.isfile(path):
        raise ConfigError(
            f"model: file not found: {path!r}. Expected a .keras file saved with "
            f"model.save(path)."
        )
    if not zipfile.is_zipfile(path):
        raise ConfigError(
            f"model: {path!r} is not a .keras (zip) archive. Expected a file saved "
            f"with model.save(path)."
        )
    try:
        return keras.saving.load_model(path, safe_mode=safe_mode, compile=False)
    except ValueError as error:
        if "safe_mode" in str(error) or "lambda" in str(error).lower():
            raise ConfigError(
                f"model: {path!r} contains code (e.g. a Lambda layer) that safe "
                f"loading refuses. Load it only if you trust it, with --unsafe-load."
            ) from None
        raise ConfigError(
            f"model: {path!r} is not a Keras archive ({str(error).splitlines()[0]}). "
            f"Expected a .keras file saved with model.save(path)."
        ) from None
    except Exception as error:
        raise ConfigError(
            f"model: {path!r} is not a Keras archive ({type(error).__name__}). "
            f"Expected a .keras file saved with model.save(path)."
        ) from None
