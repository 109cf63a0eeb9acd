"""Reuse across trials: compiled models (`ModelPool`) and frozen-prefix outputs (`FeatureCache`)."""

import hashlib
import json
import os

import keras
import numpy as np

from keras_tl.data import ondisk
from keras_tl.training.fit import compile_model, predict


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
        # A model built under another dtype policy (`precision`) computes differently.
        return structure, frozen, kind, optimizer, keras.config.dtype_policy().name

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
        if isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) and (
            model.optimizer.built
        ):
            # mixed_float16: the loss scale starts again where a fresh one does.
            model.optimizer.dynamic_scale.assign(model.optimizer.initial_scale)
        model.optimizer.learning_rate = learning_rate
        return model

    def clear(self):
        self._models.clear()


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
