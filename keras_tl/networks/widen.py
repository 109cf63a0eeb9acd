"""Transfer into a wider target: Net2WiderNet and slicing.

`transfer_weights(..., mode="net2wider")` and `mode="slice"` call `widen_weights`.

* **net2wider** (Chen, Goodfellow and Shlens, "Net2Net: Accelerating Learning via
  Knowledge Transfer", ICLR 2016, Net2WiderNet). A layer widened from `n` to `q`
  units keeps the source's units and fills the extra ones with copies of source
  units chosen at random (seeded): with `g(j) = j` for `j < n` and a random source
  unit beyond, `W'[:, j] = W[:, g(j)]`, `b'[j] = b[g(j)]`; the next layer's
  incoming weights of each unit are divided by how many copies it has,
  `W'_next[j, :] = W_next[g(j), :] / |{x : g(x) = g(j)}|`, so the widened network
  computes exactly the source function. Optional noise (a fraction of each
  kernel's standard deviation) is added to the copies' incoming weights, to break
  the symmetry between a unit and its copies.
* **slice**: the overlapping block of each weight tensor is copied; the rest keeps
  its initialisation. A `Dense` layer after a `Flatten` is sliced per spatial
  position (channels-last), so each copied weight meets the channel it met in
  the source.

Both walk the layers of a chain network in order, carrying the map from the
target's channels to the source's: `Dense`, `Conv2D` (and other convolutions of
the same rank), `BatchNormalization`, `Flatten`, pooling, `Dropout` and
activation layers. A layer that cannot be mapped (a narrower target for
net2wider, another layer type or kernel size, a missing layer, a layer after an
unmapped one) is listed with the reason; a target deeper than the source (a
layer with weights the source has not) is a `TransferError`: net2deeper is not
supported.
"""

import numpy as np

from keras_tl.errors import TransferError
from keras_tl.networks.units import HEAD

# Layers with no weights that act on each channel alone: the channel map passes.
_PASS_THROUGH = (
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D",
    "AveragePooling2D", "AveragePooling3D", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalAveragePooling3D", "GlobalMaxPooling1D",
    "GlobalMaxPooling2D", "GlobalMaxPooling3D", "Dropout", "SpatialDropout1D",
    "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
    "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax",
)
# Layers that act in training only: the target may have them where the source has not.
_TRAINING_ONLY = (
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
    "GaussianNoise", "GaussianDropout",
)
_KERNEL_LAYERS = ("Dense", "Conv1D", "Conv2D", "Conv3D")
# Config entries that must agree for a copied layer to compute the same function.
_SAME_CONFIG = ("activation", "kernel_size", "strides", "padding", "dilation_rates",
                "dilation_rate", "use_bias", "data_format", "groups")


class _Channels:
    """The tensor between two layers: which source channel each target channel
    copies (`source_of`, -1 for none), how many copies each source channel has,
    and the flattened positions (`positions`) once a `Flatten` has run."""

    def __init__(self, source_of, source_width, positions=1):
        self.source_of = np.asarray(source_of, dtype=int)
        self.source_width = int(source_width)
        self.positions = positions
        counts = np.bincount(self.source_of[self.source_of >= 0], minlength=source_width)
        self.counts = counts

    def flattened(self, positions):
        """Channels-last Flatten: target index p*Ct + j reads source p*Cs + g(j)."""
        width_t, width_s = len(self.source_of), self.source_width
        source_of = np.full(positions * width_t, -1, dtype=int)
        for position in range(positions):
            block = self.source_of
            source_of[position * width_t:(position + 1) * width_t] = np.where(
                block >= 0, position * width_s + block, -1
            )
        return _Channels(source_of, positions * width_s, positions)


def _layer_type(layer):
    return type(layer).__name__


def _check_deeper(source, target, requested):
    source_names = {layer.name for layer in source.layers}
    extra = [
        layer.name for layer in target.layers
        if layer.weights and layer.name != HEAD and layer.name not in source_names
        and (requested is None or layer.name in requested)
    ]
    if extra:
        raise TransferError(
            f"The target has layer(s) {extra} with weights that the source network "
            f"has not (a deeper target): widening (net2wider, slice) maps each target "
            f"layer onto the source layer of the same name, and net2deeper is not "
            f"supported. Give the target the source's layers (wider is fine), or use "
            f"transfer mode exact."
        )


def _check_chain(model, role):
    """Widening follows `model.layers` in order, so each layer must read the one
    before it (no branches, no shared layers)."""
    inputs = getattr(model, "inputs", None)
    if not inputs or len(inputs) != 1:
        raise TransferError(
            f"Widening (net2wider, slice) needs a {role} network with one input and a "
            f"layer graph; {model.name!r} has none. Use transfer mode exact."
        )
    current = inputs[0]
    for layer in model.layers:
        if _layer_type(layer) == "InputLayer":
            continue
        try:
            reads_previous = layer.input is current
            current = layer.output
        except (AttributeError, ValueError):  # A layer used more than once.
            reads_previous = False
        if not reads_previous:
            raise TransferError(
                f"Widening (net2wider, slice) needs a chain network, in which each "
                f"layer reads the one before it; in the {role} network {model.name!r}, "
                f"layer {layer.name!r} does not (a branch or a shared layer). Use "
                f"transfer mode exact."
            )


def _spatial_positions(layer):
    shape = layer.input.shape[1:-1]
    return int(np.prod([int(dim) for dim in shape])) if len(shape) else 1


def _settings(layer):
    """A layer's config without its name."""
    return {key: value for key, value in layer.get_config().items() if key != "name"}


def _config_mismatch(source_layer, target_layer):
    source_config, target_config = source_layer.get_config(), target_layer.get_config()
    for key in _SAME_CONFIG:
        if source_config.get(key) != target_config.get(key):
            return (
                f"{key} {source_config.get(key)!r} in source vs "
                f"{target_config.get(key)!r} in target"
            )
    return None


def widen_weights(source, target, mode="net2wider", layers=None, noise=0.0, seed=0,
                  include_head=False):
    """Copies a source network into a wider target by Net2WiderNet or slicing.

    Args:
        source: keras.Model. A chain network (each layer feeds the next).
        target: keras.Model. The same layer names, each as wide or wider
            (modified in place).
        mode: str. `"net2wider"` (function-preserving) or `"slice"`.
        layers: list of str or None. Target layers to copy; None means every
            layer with weights except the head.
        noise: float >= 0. net2wider only: noise added to the copied units'
            incoming weights, as a fraction of each kernel's standard deviation.
        seed: int. Seeds the choice of units to copy and the noise.
        include_head: bool. Also map the head (the widened network then computes
            the source's outputs, when the heads have the same width).

    Returns:
        `(copied, skipped, details)`: copied layer names in model order, `(name,
        reason)` pairs, and `{name: {"source_shape", "target_shape", "added_units"}}`.
    """
    if mode not in ("net2wider", "slice"):
        raise TransferError(f"Unknown widening mode {mode!r}. Expected net2wider or slice.")
    _check_chain(source, "source")
    _check_chain(target, "target")
    _check_deeper(source, target, layers)
    rng = np.random.default_rng(seed)
    source_layers = {layer.name: layer for layer in source.layers}
    copied, skipped, details = [], [], {}
    # The map of the tensor flowing into the current layer (None: not mapped).
    channels, broken_at = None, "inputs"  # broken_at: the layer that broke the map.
    source_shape = tuple(source.inputs[0].shape[1:])
    target_shape = tuple(target.inputs[0].shape[1:])
    if source_shape == target_shape:
        width = int(target_shape[-1]) if target_shape else 1
        channels = _Channels(np.arange(width), width)
    else:
        skipped.append(("inputs", (
            f"inputs: of shape {source_shape} in source vs {target_shape} in target"
        )))
    for layer in target.layers:
        kind = _layer_type(layer)
        if kind == "InputLayer":
            continue
        if layer.name == HEAD and not include_head:
            break
        wanted = layers is None or layer.name in layers or layer.name == HEAD
        source_layer = source_layers.get(layer.name)
        if not layer.weights:
            if channels is None or kind in _TRAINING_ONLY:
                continue
            same = (
                source_layer is not None and _layer_type(source_layer) == kind
                and _settings(source_layer) == _settings(layer)
            )
            if kind == "Flatten" and same and (
                _spatial_positions(source_layer) == _spatial_positions(layer)
            ):
                channels = channels.flattened(_spatial_positions(layer))
            elif kind not in _PASS_THROUGH or not same:
                channels, broken_at = None, layer.name
            continue
        if not wanted:
            channels, broken_at = None, layer.name
            continue
        reason = None
        if source_layer is None:
            reason = f"{layer.name}: not in the source model"
        elif _layer_type(source_layer) != kind:
            reason = (
                f"{layer.name}: a {_layer_type(source_layer)} in source vs a {kind} in "
                f"target"
            )
        elif kind not in _KERNEL_LAYERS and kind != "BatchNormalization":
            reason = f"{layer.name}: a {kind} layer cannot be widened (only Dense, "
            reason += "convolutions and BatchNormalization can)"
        elif channels is None:
            reason = (
                f"{layer.name}: its input is not mapped (from layer {broken_at!r} on, "
                f"the target differs from the source or was not transferred), so its "
                f"weights would meet other features"
            )
        else:
            mismatch = _config_mismatch(source_layer, layer)
            if mismatch:
                reason = f"{layer.name}: {mismatch}"
        if reason is None:
            if kind == "BatchNormalization":
                reason, channels = _batch_norm(source_layer, layer, channels, mode)
            else:
                reason, channels = _kernel(source_layer, layer, channels, mode, noise, rng)
        if reason is not None:
            skipped.append((layer.name, reason))
            channels, broken_at = None, layer.name
            continue
        copied.append(layer.name)
        details[layer.name] = {
            "source_shape": [list(np.shape(w)) for w in source_layer.get_weights()][0],
            "target_shape": [list(np.shape(w)) for w in layer.get_weights()][0],
            "added_units": max(0, len(channels.source_of) - channels.source_width)
            if kind in _KERNEL_LAYERS else 0,
        }
    if include_head:
        copied = [name for name in copied if name != HEAD]
    target_names = {layer.name for layer in target.layers}
    for layer in source.layers:
        if layer.weights and layer.name != HEAD and layer.name not in target_names:
            skipped.append((layer.name, (
                f"{layer.name}: in the source but not in the target (a shallower "
                f"target); its output is not used"
            )))
    return copied, skipped, details


def _kernel(source_layer, target_layer, channels, mode, noise, rng):
    """Maps one Dense / convolution layer; returns `(reason or None, channels out)`."""
    source_weights = source_layer.get_weights()
    target_weights = target_layer.get_weights()
    kernel_s, kernel_t = source_weights[0], target_weights[0]
    in_t, out_t = kernel_t.shape[-2], kernel_t.shape[-1]
    in_s, out_s = kernel_s.shape[-2], kernel_s.shape[-1]
    name = target_layer.name
    if kernel_s.shape[:-2] != kernel_t.shape[:-2]:
        return f"{name}: kernel {kernel_s.shape} in source vs {kernel_t.shape} in target", None
    if len(channels.source_of) != in_t or channels.source_width != in_s:
        return (
            f"{name}: takes {in_t} inputs in target and {in_s} in source, but the "
            f"layers before map {len(channels.source_of)} onto {channels.source_width}"
        ), None
    if mode == "net2wider":
        if out_t < out_s:
            return (
                f"{name}: narrower in target ({out_t} units vs {out_s} in source); "
                f"net2wider only widens (slice copies a narrower block)"
            ), None
        if (channels.source_of < 0).any():
            return f"{name}: some of its inputs have no source unit", None
        source_of = np.concatenate(
            [np.arange(out_s), rng.integers(0, out_s, size=out_t - out_s)]
        ).astype(int)
        # Incoming side: each target input reads its source unit, divided by the
        # number of copies of that unit (Net2WiderNet's next-layer rule).
        scale = 1.0 / channels.counts[channels.source_of]
        kernel = kernel_s[..., channels.source_of, :] * scale[:, None]
        kernel = kernel[..., source_of]
        if noise and out_t > out_s:
            std = float(np.std(kernel_s)) or 1.0
            extra = kernel[..., out_s:]
            kernel[..., out_s:] = extra + rng.normal(0.0, noise * std, size=extra.shape)
        new = [kernel.astype(kernel_t.dtype)]
        for weight in source_weights[1:]:  # The bias.
            new.append(weight[source_of].astype(weight.dtype))
        target_layer.set_weights(new)
        return None, _Channels(source_of, out_s)
    # slice: copy the overlapping block; the flattened positions line up.
    pairs = [(t, s) for t, s in enumerate(channels.source_of) if 0 <= s < in_s]
    rows_t = np.array([t for t, _ in pairs], dtype=int)
    rows_s = np.array([s for _, s in pairs], dtype=int)
    width = min(out_s, out_t)
    kernel = kernel_t.copy()
    kernel[..., rows_t, :width] = kernel_s[..., rows_s, :width]
    new = [kernel]
    for weight_s, weight_t in zip(source_weights[1:], target_weights[1:]):
        weight = weight_t.copy()
        weight[:width] = weight_s[:width]
        new.append(weight)
    target_layer.set_weights(new)
    source_of = np.where(np.arange(out_t) < out_s, np.arange(out_t), -1)
    return None, _Channels(source_of, out_s)


def _batch_norm(source_layer, target_layer, channels, mode):
    """Maps a BatchNormalization's per-channel statistics along the channel map."""
    config = target_layer.get_config()
    axis = config.get("axis")
    if axis not in (-1, [-1], (len(target_layer.input.shape) - 1,),
                    [len(target_layer.input.shape) - 1], len(target_layer.input.shape) - 1):
        return f"{target_layer.name}: normalises axis {axis!r}, not the channels (last)", None
    source_weights = source_layer.get_weights()
    target_weights = target_layer.get_weights()
    if len(channels.source_of) != target_weights[0].shape[0] or (
        channels.source_width != source_weights[0].shape[0]
    ):
        return (
            f"{target_layer.name}: {target_weights[0].shape[0]} channels in target, "
            f"{source_weights[0].shape[0]} in source, but the layer before maps "
            f"{len(channels.source_of)} onto {channels.source_width}"
        ), None
    known = channels.source_of >= 0
    new = []
    for weight_s, weight_t in zip(source_weights, target_weights):
        weight = weight_t.copy()
        weight[known] = weight_s[channels.source_of[known]]
        new.append(weight)
    if mode == "net2wider" and not known.all():
        return f"{target_layer.name}: some of its channels have no source channel", None
    target_layer.set_weights(new)
    return None, channels
