"""Networks defined once: built-in builders, `module:function` builders, `.keras` files.

`Network` builds a fresh model for any input shape and head width with a seed.
"""

import importlib
import inspect
import zipfile

import keras

from keras_tl.errors import ConfigError, KerasTLError
from keras_tl.filesystem import path_problem
from keras_tl.networks.seeding import made_of_keras, set_random_seed
from keras_tl.networks.units import HEAD, is_graph_model


def _dropouts(rate, names):
    """Dropout layers (active in training only) by name, or identities for rate 0:
    a rate of 0 adds no layer, so such networks are those of earlier versions.

    Call it after every layer with weights is constructed: a Dropout draws its
    seed from Python's random state, so constructing one earlier would change
    the initialisation of the layers after it.
    """
    if not rate:
        return {name: (lambda x: x) for name in names}
    return {name: keras.layers.Dropout(rate, name=name) for name in names}


def small_cnn(input_shape, num_outputs, filters=(16, 32), units=64, dropout=0.0):
    """A two-convolution network for small images (the digits tasks).

    Layers: `conv1`, `pool1`, `conv2`, `flatten`, `fc1`, `head`; with `dropout`,
    `dropout1` after `pool1`, `dropout2` after `conv2` and `dropout3` after `fc1`.
    The data format is fixed to channels-last so weight layouts never depend on a
    `keras.json`.

    Args:
        input_shape: tuple. `(height, width, channels)`.
        num_outputs: int. Width of the head.
        filters: pair of int. Filters of `conv1` and `conv2`.
        units: int. Width of `fc1`.
        dropout: float in [0, 1). Dropout rate after each block (training only);
            0 (the default) adds no layer, and any rate leaves the initial
            weights as they are without dropout.

    Returns:
        A functional `keras.Model`.
    """
    inputs = keras.Input(shape=tuple(input_shape), name="inputs")
    conv1 = keras.layers.Conv2D(
        filters[0], 3, padding="same", activation="relu",
        data_format="channels_last", name="conv1",
    )
    pool1 = keras.layers.MaxPooling2D(2, data_format="channels_last", name="pool1")
    conv2 = keras.layers.Conv2D(
        filters[1], 3, padding="same", activation="relu",
        data_format="channels_last", name="conv2",
    )
    flatten = keras.layers.Flatten(data_format="channels_last", name="flatten")
    fc1 = keras.layers.Dense(units, activation="relu", name="fc1")
    head = keras.layers.Dense(num_outputs, name=HEAD)
    drop = _dropouts(dropout, ("dropout1", "dropout2", "dropout3"))
    x = drop["dropout1"](pool1(conv1(inputs)))
    x = flatten(drop["dropout2"](conv2(x)))
    outputs = head(drop["dropout3"](fc1(x)))
    return keras.Model(inputs, outputs, name="small_cnn")


def mlp(input_shape, num_outputs, units=(64, 32), dropout=0.0):
    """A multi-layer perceptron over flattened inputs.

    Layers: `flatten`, `fc1`, `fc2`, ..., `head`; with `dropout`, `dropoutN`
    after each `fcN`.

    Args:
        input_shape: tuple. Shape of one sample.
        num_outputs: int. Width of the head.
        units: sequence of int. Widths of the hidden layers.
        dropout: float in [0, 1). Dropout rate after each hidden layer (training
            only); 0 (the default) adds no layer.

    Returns:
        A functional `keras.Model`.
    """
    inputs = keras.Input(shape=tuple(input_shape), name="inputs")
    flatten = keras.layers.Flatten(name="flatten")
    hidden = [
        keras.layers.Dense(width, activation="relu", name=f"fc{index}")
        for index, width in enumerate(units, start=1)
    ]
    head = keras.layers.Dense(num_outputs, name=HEAD)
    drop = _dropouts(dropout, [f"dropout{index}" for index in range(1, len(units) + 1)])
    x = flatten(inputs)
    for index, layer in enumerate(hidden, start=1):
        x = drop[f"dropout{index}"](layer(x))
    outputs = head(x)
    return keras.Model(inputs, outputs, name="mlp")


BUILDERS = {"small_cnn": small_cnn, "mlp": mlp}

# What a builder is, for error messages.
BUILDER_CONTRACT = (
    f"A builder is a function (input_shape, num_outputs, **options) that returns a "
    f"keras.Model whose output layer is named {HEAD!r}"
)

# Bounds of the built-in builders' options: wider layers or deeper stacks than
# these are typos, and would not fit in memory.
MAX_WIDTH = 65536
MAX_HIDDEN_LAYERS = 100


def _one_line(error, limit=300):
    return " ".join(str(error).split())[:limit]


def _width(value, path):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WIDTH:
        raise ConfigError(
            f"{path}: expected a positive integer of at most {MAX_WIDTH}, received "
            f"{value!r}"
        )
    return value


def _widths(value, path, expected, count=None):
    valid_length = (
        isinstance(value, (list, tuple))
        and 1 <= len(value) <= MAX_HIDDEN_LAYERS
        and (count is None or len(value) == count)
    )
    if not valid_length:
        raise ConfigError(f"{path}: expected {expected}, received {value!r}")
    for index, width in enumerate(value):
        _width(width, f"{path}[{index}]")
    return value


def _rate(value, path):
    """A dropout rate: a number in [0, 1)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not 0 <= value < 1:
        raise ConfigError(
            f"{path}: expected a rate in [0, 1) (the fraction of units dropped in "
            f"training; 0 for none), received {value!r}"
        )
    return value


def _check_small_cnn_options(options, path):
    if "filters" in options:
        _widths(
            options["filters"], f"{path}.filters",
            "a list of 2 positive integers (the filters of conv1 and conv2), e.g. "
            "[16, 32]", count=2,
        )
    if "units" in options:
        _width(options["units"], f"{path}.units")
    if "dropout" in options:
        _rate(options["dropout"], f"{path}.dropout")


def _check_mlp_options(options, path):
    if "units" in options:
        _widths(
            options["units"], f"{path}.units",
            f"a list of 1 to {MAX_HIDDEN_LAYERS} positive integers (the widths of the "
            f"hidden layers), e.g. [64, 32]",
        )
    if "dropout" in options:
        _rate(options["dropout"], f"{path}.dropout")


OPTION_CHECKS = {"small_cnn": _check_small_cnn_options, "mlp": _check_mlp_options}


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
        path: str. The config key path named in error messages (default
            `"model"`, e.g. `"source.model"`).

    A builder is checked before it is first called: it must be a Python callable
    whose signature takes `(input_shape, num_outputs, **options)`; an option it
    does not take, or (for `small_cnn` and `mlp`) an option value of the wrong
    type, is a `ConfigError`. An exception raised by the first build becomes a
    `ConfigError` naming the builder (later ones, after the builder has worked,
    propagate as they are: a trial fails, the sweep goes on); a result that is
    not a `keras.Model` with a layer named `head` is always a `ConfigError`.

    Example:

    >>> network = keras_tl.Network("small_cnn", {"filters": [16, 32]})
    >>> model = network.build((8, 8, 1), num_outputs=10, seed=0)
    """

    def __init__(self, definition, options=None, unsafe_load=False, path="model"):
        self.definition = definition
        if options is not None and not isinstance(options, dict):
            raise ConfigError(
                f"{path}: expected the builder's options as a mapping of names to "
                f"values, received {options!r}"
            )
        self.options = dict(options or {})
        self.unsafe_load = unsafe_load
        self.path = path
        self._built_once = False
        self._made_of_keras = None  # Not known until built.
        self._builder = self._resolve(definition)
        self._check_builder()

    @classmethod
    def from_config(cls, model_config, unsafe_load=False, path="model"):
        """The network of an experiment's `model:` mapping (builder, file,
        application or keras_hub, with their options); `path` names the mapping
        in error messages (e.g. `source.model`)."""
        definition = model_config.get("builder") or model_config.get("file")
        options = {k: v for k, v in model_config.items() if k not in ("builder", "file")}
        if "application" in model_config:
            definition = "keras_tl.networks.applications:application"
        if "keras_hub" in model_config:
            definition = "keras_tl.networks.hub:backbone"
        return cls(definition, options, unsafe_load, path=path)

    def with_options(self, **options):
        """The same definition with some builder options replaced."""
        return Network(self.definition, {**self.options, **options}, self.unsafe_load,
                       path=self.path)

    def _name(self):
        """The builder as the user named it, for messages."""
        if isinstance(self.definition, str):
            return self.definition
        module = getattr(self.definition, "__module__", None)
        name = getattr(self.definition, "__qualname__", None) or type(self.definition).__name__
        return f"{module}:{name}" if module else name

    def _check_builder(self):
        """Refuses, before it is ever called, a builder that is not a function
        taking `(input_shape, num_outputs, **options)`, options it does not take,
        and (for the built-in builders) option values of the wrong type."""
        builder, path, name = self._builder, self.path, self._name()
        if not callable(builder):
            raise ConfigError(
                f"{path}: builder {name!r} is not callable (it is a "
                f"{type(builder).__name__}). {BUILDER_CONTRACT}."
            )
        if inspect.isbuiltin(builder) or type(builder).__name__ in (
            "method-wrapper", "wrapper_descriptor", "method_descriptor",
        ):
            raise ConfigError(
                f"{path}: builder {name!r} is a built-in function of Python, not a "
                f"network builder. {BUILDER_CONTRACT}."
            )
        try:
            signature = inspect.signature(builder)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{path}: builder {name!r} has no readable signature, so its "
                f"arguments cannot be checked. {BUILDER_CONTRACT}; wrap it in a "
                f"Python function."
            ) from None
        try:
            signature.bind((1,), 1, **self.options)
        except TypeError as error:
            parameters = list(signature.parameters.values())
            keywords = [
                p.name for p in parameters
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            ]
            if not any(p.kind is p.VAR_KEYWORD for p in parameters):
                for option in self.options:
                    if option not in keywords:
                        allowed = ", ".join(keywords[2:]) or "none"
                        raise ConfigError(
                            f"{path}.{option}: unknown option for builder {name!r}. "
                            f"Allowed options: {allowed}."
                        ) from None
            raise ConfigError(
                f"{path}: builder {name!r} cannot be called as builder(input_shape, "
                f"num_outputs, **options) with options {sorted(self.options)} "
                f"({_one_line(error)}). {BUILDER_CONTRACT}."
            ) from None
        if isinstance(self.definition, str) and self.definition in OPTION_CHECKS:
            OPTION_CHECKS[self.definition](self.options, path)

    def _resolve(self, definition):
        if isinstance(definition, keras.Model):
            return self._from_model(definition)
        if callable(definition):
            return definition
        if not isinstance(definition, str):
            raise ConfigError(
                f"{self.path}: expected a builder name, 'module:function', a .keras path or "
                f"a keras.Model. Received: {definition!r}."
            )
        if definition in BUILDERS:
            return BUILDERS[definition]
        if definition.endswith(".keras"):
            if self.options:
                raise ConfigError(
                    f"{self.path}: options {sorted(self.options)} apply to builders only, "
                    f"not to the file {definition!r}. Remove them."
                )
            return self._from_model(load_model_file(definition, self.unsafe_load))
        if ":" in definition:
            module_name, _, function_name = definition.partition(":")
            try:
                module = importlib.import_module(module_name)
                return getattr(module, function_name)
            except (ImportError, AttributeError) as error:
                reason = _one_line(error)
            except Exception as error:  # The module itself fails (or no module name).
                reason = f"{type(error).__name__}: {_one_line(error)}"
            raise ConfigError(
                f"{self.path}: cannot import builder {definition!r} ({reason}). Expected "
                f"'package.module:function' importable from this environment."
            )
        raise ConfigError(
            f"{self.path}: unknown builder {definition!r}. Expected one of "
            f"{', '.join(BUILDERS)}, 'package.module:function' or a path ending in "
            f".keras."
        )

    def _from_model(self, model):
        if not is_graph_model(model):
            raise ConfigError(
                f"{self.path}: {model.name!r} is a subclassed keras.Model instance, which "
                f"cannot be cloned with a new head. Pass a function "
                f"(input_shape, num_outputs) -> model instead, whose output layer is "
                f"named {HEAD!r}."
            )
        if len(model.inputs) != 1 or len(model.layers) < 2:
            raise ConfigError(
                f"{self.path}: {model.name!r} must have one input and at least one layer "
                f"before its output layer to serve as a transferable trunk."
            )
        input_shape = tuple(model.inputs[0].shape[1:])

        def build_from_model(task_input_shape, num_outputs):
            if tuple(task_input_shape) != input_shape:
                raise ConfigError(
                    f"{self.path}: {model.name!r} takes inputs of shape {input_shape}, but "
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
        # Seeded as Keras does until this network has been seen to be made of
        # Keras' classes only (then TensorFlow's caches are kept: `seeding`).
        set_random_seed(seed, keras_only=self._made_of_keras is True)
        try:
            model = self._builder(tuple(input_shape), num_outputs, **self.options)
            if isinstance(model, keras.Model) and not model.built:
                # A subclassed model has no weights until it sees a batch.
                model(keras.ops.zeros((1, *input_shape)))
        except KerasTLError:
            raise
        except Exception as error:
            if getattr(self, "_built_once", False):
                # The builder worked before: this is a failure of the moment (e.g.
                # out of memory), which fails one trial, not a mistake in the config.
                raise
            raise ConfigError(
                f"{self.path}: builder {self._name()!r} failed for input_shape="
                f"{tuple(input_shape)}, num_outputs={num_outputs} "
                f"({type(error).__name__}: {_one_line(error)}). Fix the builder or its "
                f"options. {BUILDER_CONTRACT}."
            ) from error
        if not isinstance(model, keras.Model):
            raise ConfigError(
                f"{self.path}: builder {self._name()!r} must return a keras.Model whose "
                f"output layer is named {HEAD!r}. Received: {type(model).__name__}."
            )
        if HEAD not in [layer.name for layer in model.layers]:
            names = [layer.name for layer in model.layers]
            raise ConfigError(
                f"{self.path}: builder {self._name()!r} must return a keras.Model whose "
                f"output layer is named {HEAD!r}. Received: a keras.Model with layers "
                f"{names[:10]}{' ...' if len(names) > 10 else ''}. Name the output layer "
                f"{HEAD!r} (e.g. keras.layers.Dense(num_outputs, name={HEAD!r}))."
            )
        float32_layer(model.get_layer(HEAD))  # Logits in float32 under mixed precision.
        self._made_of_keras = self._made_of_keras is not False and made_of_keras(model)
        self._built_once = True
        return model

    def spec(self):
        """A JSON-friendly description of the definition (for configs and hashes)."""
        if isinstance(self.definition, keras.Model):
            return {"model": self.definition.name, **self.options}
        if callable(self.definition):
            name = f"{self.definition.__module__}:{self.definition.__qualname__}"
            return {"builder": name, **self.options}
        return {"builder": self.definition, **self.options}


def float32_layer(layer):
    """Makes a layer built under a mixed dtype policy compute in float32 (its
    variables are float32 already), as Keras' mixed-precision guide advises for
    output layers; a layer of any other policy is left as it is. Returns it."""
    policy = layer.dtype_policy
    if policy.compute_dtype in ("float16", "bfloat16") and policy.variable_dtype == "float32":
        layer.dtype_policy = "float32"
    return layer


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
    problem = path_problem(path)
    if problem == "not found":
        raise ConfigError(
            f"model: file not found: {path!r}. Expected a .keras file saved with "
            f"model.save(path)."
        )
    if problem:
        raise ConfigError(
            f"model: {path!r} is {problem}. Expected a .keras file saved with "
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
