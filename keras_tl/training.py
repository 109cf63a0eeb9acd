"""Fit recipes: scratch, fine_tune, linear_probe, lp_ft and l2sp.

Each recipe trains a target model that already holds its transferred weights. The
data order and dropout randomness come from `keras.utils.set_random_seed(seed)`
called right before each `fit`, so two arms with the same seed see the same
batches. A change of `trainable` is always followed by a fresh `compile`.
"""

import dataclasses
import hashlib
import json
import math
import os
import warnings

import keras
import numpy as np

from keras_tl import ondisk
from keras_tl.applications import transfer_units
from keras_tl.distribution import fitting
from keras_tl.errors import ConfigError
from keras_tl.metrics import compute_metrics
from keras_tl.models import HEAD
from keras_tl.transfer import freeze

RECIPES = ("scratch", "fine_tune", "linear_probe", "lp_ft", "l2sp")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
PREDICT_BATCH_SIZE = 1024


class TrialFailure(Exception):
    """A trial could not finish (e.g. its loss became non-finite)."""


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """How one model is trained.

    Args:
        epochs: int. Maximum number of epochs.
        batch_size: int.
        optimizer: str. One of `OPTIMIZERS`.
        learning_rate: float.
        patience: int or None. Early-stopping patience on the val loss; the best
            val weights are restored. None trains for exactly `epochs`.
        verbose: int. Keras' own progress output for `fit` (0: none).
        callbacks: tuple of `keras.callbacks.Callback`. Extra callbacks for every
            `fit` of this training (e.g. a progress display).
    """

    epochs: int
    batch_size: int
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    patience: int = None
    verbose: int = 0
    callbacks: tuple = ()


def make_optimizer(name, learning_rate):
    if name not in OPTIMIZERS:
        raise ConfigError(
            f"Unknown optimizer {name!r}. Expected one of {', '.join(OPTIMIZERS)}."
        )
    classes = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }
    return classes[name](learning_rate=learning_rate)


def loss_for(kind):
    if kind == "classification":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if kind == "binary":
        return keras.losses.BinaryCrossentropy(from_logits=True)
    return keras.losses.MeanSquaredError()


def compile_model(model, kind, optimizer, learning_rate):
    """Compiles `model` for a task kind with a fresh optimizer."""
    model.compile(optimizer=make_optimizer(optimizer, learning_rate), loss=loss_for(kind))


def _labels_for_fit(kind, y):
    return y.reshape(-1, 1).astype("float32") if kind == "binary" else y


def predict(model, x, batch_size=None):
    """Model outputs on `x` in inference mode, as a NumPy array (a list of them for
    a model with several outputs).

    Calls the model directly, batch by batch, instead of `Model.predict`, which
    traces and compiles a predict function for every new model.
    """
    batch_size = batch_size or PREDICT_BATCH_SIZE
    with warnings.catch_warnings():
        # Models loaded from files declare their one input as a list; a plain
        # array is what they mean, and Keras handles it, but warns on every call.
        warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
        batches = [
            model(x[start:start + batch_size], training=False)
            for start in range(0, len(x), batch_size)
        ]
    if isinstance(batches[0], (list, tuple)):
        return [
            np.concatenate([keras.ops.convert_to_numpy(batch[i]) for batch in batches])
            for i in range(len(batches[0]))
        ]
    return np.concatenate([keras.ops.convert_to_numpy(batch) for batch in batches])


def evaluate(model, task, split):
    """Every metric of `task`'s kind on one split (`"train"`, `"val"`, `"test"`)."""
    x, y = task.split(split)
    return compute_metrics(task.kind, predict(model, x), y)


def fit(model, task, settings, seed):
    """Trains a compiled model on the task's train split; returns epochs run.

    A seeded loop of `train_on_batch` calls with Keras' own callbacks (NaN stop,
    early stopping on the val loss with the best weights restored, the progress
    bar with `settings.verbose`, and `settings.callbacks`). Each epoch visits the
    rows in a permutation drawn from `numpy.random.default_rng(seed)`, in batches
    of `settings.batch_size` (the last one smaller); dropout draws from Keras'
    generators, seeded here too. `Model.fit` would give the same training but
    builds a data pipeline every epoch, which costs about 60 ms an epoch on
    tensorflow: more than a small model's epoch itself.

    Raises:
        TrialFailure: the training loss became NaN or infinite.
    """
    x = task.x_train
    y = _labels_for_fit(task.kind, task.y_train)
    callbacks = [keras.callbacks.TerminateOnNaN(), *settings.callbacks]
    if settings.patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=settings.patience, restore_best_weights=True
            )
        )
    batch_size = settings.batch_size
    steps = math.ceil(len(y) / batch_size)
    callback_list = keras.callbacks.CallbackList(
        callbacks, add_progbar=settings.verbose != 0, model=model,
        verbose=settings.verbose, epochs=settings.epochs, steps=steps,
    )
    keras.utils.set_random_seed(seed)
    order_generator = np.random.default_rng(seed)
    model.stop_training = False
    losses = []
    with fitting((len(y), batch_size)):
        callback_list.on_train_begin()
        for epoch in range(settings.epochs):
            callback_list.on_epoch_begin(epoch)
            order = order_generator.permutation(len(y))
            total, seen = 0.0, 0
            for step in range(steps):
                rows = order[step * batch_size:(step + 1) * batch_size]
                callback_list.on_train_batch_begin(step)
                logs = model.train_on_batch(x[rows], y[rows], return_dict=True)
                loss = float(logs["loss"])
                total, seen = total + loss * len(rows), seen + len(rows)
                callback_list.on_train_batch_end(step, {"loss": loss})
                if model.stop_training:
                    break
            logs = {"loss": total / seen}
            if settings.patience is not None:
                logs["val_loss"] = _mean_loss(model, task.x_val, task.kind, task.y_val,
                                              batch_size)
            losses.append(logs["loss"])
            callback_list.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
        callback_list.on_train_end()
    for epoch, loss in enumerate(losses, start=1):
        if not math.isfinite(loss):
            raise TrialFailure(f"non-finite loss at epoch {epoch}")
    return len(losses)


def _mean_loss(model, x, kind, labels, batch_size):
    """The compiled loss over `(x, labels)`, averaged per row, in inference mode."""
    y = _labels_for_fit(kind, labels)
    total = 0.0
    with fitting((len(y), batch_size)):
        for start in range(0, len(y), batch_size):
            logs = model.test_on_batch(
                x[start:start + batch_size], y[start:start + batch_size], return_dict=True
            )
            total += float(logs["loss"]) * len(y[start:start + batch_size])
    return total / len(y)


class L2SP(keras.regularizers.Regularizer):
    """Penalty `alpha / 2 * |w - w_source|^2` towards a reference weight.

    From Li, Grandvalet and Davis, "Explicit Inductive Bias for Transfer Learning
    with Convolutional Networks" (ICML 2018). With a zero reference it is the
    plain `beta / 2 * |w|^2` penalty used on the new head.

    Args:
        strength: float. `alpha` (or `beta` for the head).
        reference: array. The starting point (the transferred source weight).
    """

    def __init__(self, strength, reference):
        self.strength = float(strength)
        self.reference = np.asarray(reference, dtype="float32")

    def __call__(self, weight):
        difference = weight - keras.ops.convert_to_tensor(self.reference)
        return 0.5 * self.strength * keras.ops.sum(keras.ops.square(difference))

    def get_config(self):
        return {"strength": self.strength, "reference": self.reference.tolist()}


class ModelPool:
    """Reuses one compiled model per network structure and freeze pattern.

    Building and compiling a model costs more than training it on small data
    (tracing on tensorflow, XLA compilation on jax). A trial asks the pool for a
    compiled model shaped like its freshly built one; the pool copies the fresh
    model's variables (weights and random-seed state) into the compiled model it
    keeps and resets the optimizer state, so the trial runs exactly as it would on
    the fresh model, without compiling again.
    """

    def __init__(self):
        self._models = {}

    @staticmethod
    def _key(model, kind, optimizer):
        config = {k: v for k, v in model.get_config().items() if k != "name"}
        # A subclassed model's config holds only its constructor arguments.
        config["class"] = f"{type(model).__module__}.{type(model).__qualname__}"
        structure = json.dumps(config, sort_keys=True, default=str)
        frozen = tuple(layer.name for layer in model.layers if not layer.trainable)
        return structure, frozen, kind, optimizer

    def compiled(self, fresh, kind, optimizer, learning_rate):
        """Returns a compiled model in the state of `fresh` (built, not compiled)."""
        try:
            key = self._key(fresh, kind, optimizer)
        except NotImplementedError:  # A subclassed model without get_config().
            compile_model(fresh, kind, optimizer, learning_rate)
            return fresh
        model = self._models.get(key)
        if model is None:
            compile_model(fresh, kind, optimizer, learning_rate)
            self._models[key] = fresh
            return fresh
        for variable, value in zip(model.variables, fresh.variables):
            variable.assign(value.value)
        for variable in model.optimizer.variables:
            variable.assign(keras.ops.zeros(variable.shape, dtype=variable.dtype))
        model.optimizer.learning_rate = learning_rate
        return model

    def clear(self):
        self._models.clear()


def _attach_l2sp(model, transferred, alpha, beta):
    """L2-SP on the transferred layers (towards their source weights) and a plain
    L2 penalty on the head (towards zero)."""
    for layer in model.layers:
        is_head = layer.name == HEAD
        if not is_head and layer.name not in transferred:
            continue
        for variable in layer.trainable_weights:
            if is_head:
                regularizer = L2SP(beta, np.zeros(variable.shape, dtype="float32"))
            else:
                regularizer = L2SP(alpha, keras.ops.convert_to_numpy(variable.value))
            variable.regularizer = regularizer


# Layers whose outputs are random at training time: a frozen prefix holding one
# cannot be replaced by features computed once.
_RANDOM_LAYERS = (
    keras.layers.Dropout, keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D, keras.layers.GaussianDropout,
    keras.layers.GaussianNoise, keras.layers.AlphaDropout,
)


def _is_random(layer):
    return isinstance(layer, _RANDOM_LAYERS) or type(layer).__name__.startswith("Random")


def frozen_prefix_cut(model):
    """Index of the last layer of the frozen prefix, if the model can be cut there.

    The frozen-prefix feature cache applies when the model is a chain (each layer
    takes the previous layer's output: Sequential-like functional models), its
    first layers up to the last frozen one are all frozen or weightless, and none
    of them is random at training time (Dropout, noise, augmentation); frozen
    BatchNormalization runs in inference mode, so it qualifies. Returns None when
    nothing is frozen or the cut is not possible (e.g. residual networks and
    subclassed models).
    """
    layers = model.layers
    if not layers or not isinstance(layers[0], keras.layers.InputLayer):
        return None
    try:
        for previous, layer in zip(layers, layers[1:]):
            if layer.input is not previous.output:
                return None
    except (AttributeError, ValueError):  # no graph, or a layer used twice
        return None
    frozen = [i for i, layer in enumerate(layers) if layer.weights and not layer.trainable]
    if not frozen or frozen[-1] == len(layers) - 1:
        return None
    cut = frozen[-1]
    for layer in layers[1:cut + 1]:
        if _is_random(layer) or (layer.weights and layer.trainable):
            return None
    return cut


class FeatureCache:
    """Outputs of frozen prefixes, shared by the trials that need the same ones.

    Trials at the same freeze depth from the same source model and seed (e.g.
    each learning rate of a grid, or `linear_probe` and `fine_tune` with every
    unit frozen) run the same prefix over the same inputs. The key is a digest of
    the prefix (its layers' configs and weights) and of the inputs, so a hit is
    always the array the trial would have computed. Arrays are kept in memory up
    to `memory_mb`; beyond that they are written to `folder` as `.npy` files and
    read back memory-mapped (without a folder they are not kept). Outputs on
    inputs read from disk (`ondisk.DiskArray`) are files already, and kept as such.

    Args:
        memory_mb: number. Memory for cached arrays, in MB.
        folder: str or None. Where arrays beyond `memory_mb` go; `clear()`
            deletes them.

    Attributes:
        requested: int. Arrays asked for.
        computed: int. Arrays computed (the rest were served from the cache).
    """

    def __init__(self, memory_mb=512, folder=None):
        self.memory_bytes = int(memory_mb * 2**20)
        self.folder = folder
        self.requested = 0
        self.computed = 0
        self._arrays = {}
        self._files = {}
        self._used = 0

    def features(self, prefix, inputs):
        """`prefix_outputs(prefix, inputs)`, computed once per prefix and inputs."""
        self.requested += 1
        key = _digest(prefix, inputs)
        if key in self._arrays:
            return self._arrays[key]
        if key in self._files:
            return np.load(self._files[key], mmap_mode="r")
        values = prefix_outputs(prefix, inputs)
        self.computed += 1
        if isinstance(values, ondisk.DiskArray):
            self._arrays[key] = values  # A file: no memory to count.
        elif self._used + values.nbytes <= self.memory_bytes:
            self._arrays[key] = values
            self._used += values.nbytes
        elif self.folder:
            os.makedirs(self.folder, exist_ok=True)
            path = os.path.join(self.folder, f"{key}.npy")
            temporary = os.path.join(self.folder, f"{key}.tmp.npy")
            np.save(temporary, values)
            os.replace(temporary, path)
            self._files[key] = path
        return values

    def clear(self):
        """Drops the arrays in memory and deletes the spilled files."""
        for values in self._arrays.values():
            if isinstance(values, ondisk.DiskArray):
                os.remove(values.path)
        self._arrays.clear()
        self._used = 0
        for path in self._files.values():
            os.remove(path)
        self._files.clear()


def prefix_outputs(prefix, inputs):
    """`predict(prefix, inputs)`; for inputs on disk (`ondisk.DiskArray`) the
    outputs go to a file of this process too, a chunk at a time, and come back
    as a `DiskArray` (delete its `path` when done)."""
    if not isinstance(inputs, ondisk.DiskArray):
        return predict(prefix, inputs)
    writer = ondisk.RowWriter(kind="features")
    try:
        for block in ondisk.chunks(inputs):
            writer.write(predict(prefix, block))
    except BaseException:
        writer.abort()
        raise
    return writer.finish()


def _digest(prefix, inputs):
    digest = hashlib.sha256()
    configs = [(type(layer).__name__, layer.get_config()) for layer in prefix.layers]
    digest.update(json.dumps(configs, sort_keys=True, default=str).encode())
    for weight in prefix.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    if isinstance(inputs, ondisk.DiskArray):
        digest.update(inputs.identity())  # Not its contents: that is a full read.
        return digest.hexdigest()
    inputs = np.ascontiguousarray(inputs)
    digest.update(f"{inputs.shape}{inputs.dtype}".encode())
    digest.update(inputs.tobytes())
    return digest.hexdigest()


def _fit_on_prefix_features(model, cut, task, settings, seed, pool, feature_cache):
    """Trains the layers after `cut` on the frozen prefix's outputs; returns epochs.

    The prefix runs once over the train (and val) inputs instead of once per
    epoch (once per run with a `FeatureCache`). The suffix is a separate model
    built from the same layer configs; its trained weights are copied back into
    `model`, so `model` ends exactly where the uncached trial would (same data
    order, same arithmetic after the cut).
    """
    layers = model.layers
    prefix = keras.Model(layers[0].output, layers[cut].output)
    compute = feature_cache.features if feature_cache else prefix_outputs
    # The val split only feeds early stopping.
    splits = ("train", "val") if settings.patience is not None else ("train",)
    features = {split: compute(prefix, task.split(split)[0]) for split in splits}
    inputs = keras.Input(shape=features["train"].shape[1:], name="prefix_features")
    outputs = inputs
    rest = [layer.__class__.from_config(layer.get_config()) for layer in layers[cut + 1:]]
    for clone in rest:
        outputs = clone(outputs)
    suffix = keras.Model(inputs, outputs, name="suffix")
    for clone, layer in zip(rest, layers[cut + 1:]):
        clone.set_weights(layer.get_weights())
    if pool is not None:
        suffix = pool.compiled(suffix, task.kind, settings.optimizer, settings.learning_rate)
        rest = suffix.layers[1:]
    else:
        compile_model(suffix, task.kind, settings.optimizer, settings.learning_rate)
    no_rows = features["train"][:0]
    feature_task = dataclasses.replace(
        task, x_train=features["train"], x_val=features.get("val", no_rows),
        y_val=task.y_val if "val" in features else task.y_val[:0], x_test=no_rows,
        y_test=task.y_test[:0],
    )
    try:
        epochs = fit(suffix, feature_task, settings, seed)
    finally:
        if feature_cache is None:  # Outputs written to files are this trial's own.
            for values in features.values():
                if isinstance(values, ondisk.DiskArray):
                    os.remove(values.path)
    for clone, layer in zip(rest, layers[cut + 1:]):
        layer.set_weights(clone.get_weights())
    return epochs


def train_target(
    model, task, recipe, transferred, depth, settings, seed, options=None, pool=None,
    feature_cache=None, frozen=None,
):
    """Trains a target model by a recipe.

    Args:
        model: keras.Model. Holds the transferred weights already.
        task: Task. Its train split is the (subsampled) training data.
        recipe: str. One of `RECIPES`.
        transferred: list of str. Layers copied from the source, in order.
        depth: int. How many of the transferred layers stay frozen (ignored by
            `scratch`; `linear_probe` freezes all of them).
        settings: FitSettings.
        seed: int. Seeds data order and dropout.
        options: dict. Recipe options: `learning_rate_scale` and `probe_fraction`
            for `lp_ft`; `alpha` and `beta` for `l2sp`; `cache_features` (default
            True) trains `fine_tune` and `linear_probe` on the outputs of the
            frozen prefix when `frozen_prefix_cut` allows it.
        pool: ModelPool or None. Reuse compiled models for the single-stage recipes
            (`scratch`, `fine_tune`, `linear_probe`); `lp_ft` changes its freeze
            pattern mid-way and `l2sp` bakes its reference weights into the
            compiled loss, so they always compile their own.
        feature_cache: FeatureCache or None. Share prefix outputs across trials.
        frozen: list of str or None. Freeze exactly these layers instead of the
            first `depth` units (`fine_tune`, `l2sp`, and `lp_ft` after its probe
            stage; `freeze: {layers: REGEX}` in an experiment). Ignored by
            `scratch` and `linear_probe`.

    Returns:
        `(trained_model, epochs_run)`: with a pool the trained model is the pooled
        one, not `model`.
    """
    if recipe not in RECIPES:
        raise ConfigError(
            f"Unknown recipe {recipe!r}. Expected one of {', '.join(RECIPES)}."
        )
    options = dict(options or {})
    if recipe == "scratch":
        depth, transferred, frozen = 0, [], None
    elif recipe == "linear_probe":
        depth, frozen = len(transfer_units(transferred)), None
    # What the (last stage of the) recipe freezes: named layers, or the first units.
    pattern = {"layers": frozen} if frozen is not None else {"depth": depth}
    if recipe == "lp_ft":
        probe_epochs = max(1, int(round(settings.epochs * options.get("probe_fraction", 0.5))))
        freeze(model, depth=len(transfer_units(transferred)), transferred=transferred)
        compile_model(model, task.kind, settings.optimizer, settings.learning_rate)
        probe = dataclasses.replace(settings, epochs=probe_epochs)
        epochs_run = fit(model, task, probe, seed)
        freeze(model, transferred=transferred, **pattern)
        scale = options.get("learning_rate_scale", 0.1)
        compile_model(model, task.kind, settings.optimizer, settings.learning_rate * scale)
        rest = dataclasses.replace(settings, epochs=max(1, settings.epochs - probe_epochs))
        return model, epochs_run + fit(model, task, rest, seed + 1)
    freeze(model, transferred=transferred, **pattern)
    if recipe == "l2sp":
        _attach_l2sp(
            model, transferred, options.get("alpha", 0.01), options.get("beta", 0.01)
        )
    cut = frozen_prefix_cut(model) if options.get("cache_features", True) else None
    if cut is not None and recipe != "l2sp":
        return model, _fit_on_prefix_features(
            model, cut, task, settings, seed, pool, feature_cache
        )
    if pool is not None and recipe != "l2sp":
        model = pool.compiled(model, task.kind, settings.optimizer, settings.learning_rate)
    else:
        compile_model(model, task.kind, settings.optimizer, settings.learning_rate)
    return model, fit(model, task, settings, seed)
