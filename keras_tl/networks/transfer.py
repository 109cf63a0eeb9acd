"""Copy weights from a source model to a target model, and freeze layers.

Copies are per layer and shape-checked: a layer is copied only when every one of
its weights has the same shape in both models (mode `exact`); modes `net2wider`
and `slice` copy into a wider target (`keras_tl.networks.widen`). Anything that
cannot be copied is listed in the `TransferReport` with the reason, never
skipped silently.
"""

import dataclasses

from keras_tl.config.schema import TRANSFER_MODES as MODES
from keras_tl.errors import TransferError
from keras_tl.networks.units import transfer_units, trunk_layers
from keras_tl.networks.widen import widen_weights

MATCHES = ("name", "order")


@dataclasses.dataclass
class TransferReport:
    """What `transfer_weights` copied and what it skipped, with reasons.

    Args:
        copied: list of str. Target layer names whose weights were copied, in
            model order.
        skipped: list of (str, str). Layer name and why it was not copied.
        mode: str or None. The transfer mode when not `exact` (`net2wider`,
            `slice`); None for an exact copy.
        noise: float or None. net2wider's noise (a fraction of each kernel's std).
        details: dict or None. Per copied layer: its source and target kernel
            shapes and how many units were added.
    """

    copied: list
    skipped: list
    mode: str = None
    noise: float = None
    details: dict = None

    def to_dict(self):
        result = {
            "copied": list(self.copied),
            "skipped": [{"layer": name, "reason": reason} for name, reason in self.skipped],
        }
        if self.mode not in (None, "exact"):  # Exact records keep their old form.
            result.update(mode=self.mode, noise=self.noise, layers=dict(self.details or {}))
        return result


def _shape(weight):
    return tuple(int(dim) for dim in weight.shape)


def transfer_weights(source, target, layers=None, match="name", mode="exact",
                     noise=0.0, seed=0):
    """Copies layer weights from `source` into `target`, checking shapes.

    Args:
        source: keras.Model. The model to copy from.
        target: keras.Model. The model to copy into (modified in place).
        layers: list of str or None. Target layer names to copy; None means every
            layer with weights except the head.
        match: str. `"name"` pairs layers with the same name; `"order"` pairs the
            i-th trunk layer of each model.
        mode: str. `"exact"` copies layers whose weights have the same shapes;
            `"net2wider"` widens each layer by Net2WiderNet (the target computes the
            source's function before training); `"slice"` copies the overlapping
            block of each weight. The last two pair layers by name and need a
            chain network; a target deeper than the source is a `TransferError`.
        noise: float. net2wider only: noise on the copied units (default 0).
        seed: int. net2wider: seeds which units are copied, and the noise.

    Returns:
        A `TransferReport`.

    Example:

    >>> report = keras_tl.transfer_weights(source_model, target_model)
    >>> report.copied
    ['conv1', 'conv2', 'fc1']
    """
    if match not in MATCHES:
        raise TransferError(
            f"Unknown match {match!r}. Expected one of {', '.join(MATCHES)}."
        )
    if mode not in MODES:
        raise TransferError(f"Unknown transfer mode {mode!r}. Expected one of {', '.join(MODES)}.")
    if mode != "exact":
        if match != "name":
            raise TransferError(f"Transfer mode {mode!r} pairs layers by name: use match='name'.")
        copied, skipped, details = widen_weights(
            source, target, mode=mode, layers=layers, noise=noise, seed=seed
        )
        return TransferReport(copied, skipped, mode=mode, noise=float(noise), details=details)
    source_names = [layer.name for layer in source.layers]
    target_names = [layer.name for layer in target.layers]
    if match == "name":
        pairs = {name: name for name in target_names}
    else:
        pairs = dict(zip(trunk_layers(target), trunk_layers(source)))
    requested = trunk_layers(target) if layers is None else list(layers)
    unknown = [n for n in requested if n not in source_names and n not in target_names]
    if unknown:
        raise TransferError(
            f"Transfer layer(s) {unknown} exist in neither model. Source layers: "
            f"{trunk_layers(source)}; target layers: {trunk_layers(target)}."
        )
    copied, skipped = [], []
    for name in requested:
        source_name = pairs.get(name)
        if name not in target_names:
            skipped.append((name, f"{name}: not in the target model"))
            continue
        if source_name is None or source_name not in source_names:
            skipped.append((name, f"{name}: not in the source model"))
            continue
        source_weights = source.get_layer(source_name).get_weights()
        target_layer = target.get_layer(name)
        target_weights = target_layer.get_weights()
        if not source_weights and not target_weights:
            skipped.append((name, f"{name}: has no weights to copy"))
            continue
        reason = _mismatch(name, source_weights, target_weights)
        if reason:
            skipped.append((name, reason))
            continue
        target_layer.set_weights(source_weights)
        copied.append(name)
    return TransferReport(copied=copied, skipped=skipped)


def _mismatch(name, source_weights, target_weights):
    if len(source_weights) != len(target_weights):
        return (
            f"{name}: {len(source_weights)} weight tensors in source vs "
            f"{len(target_weights)} in target"
        )
    for source_weight, target_weight in zip(source_weights, target_weights):
        if _shape(source_weight) != _shape(target_weight):
            return (
                f"{name}: shape {_shape(source_weight)} in source vs "
                f"{_shape(target_weight)} in target"
            )
    return None


def freeze(model, depth=None, layers=None, transferred=None):
    """Freezes the first `depth` transferred units, or the layers named.

    A unit is a layer, or for deep backbones a block of layers
    (`keras_tl.networks.units.transfer_units`): `depth` counts units.

    Every other layer is made trainable. Frozen `BatchNormalization` layers run in
    inference mode (Keras 3 semantics of `trainable=False`), so their moving
    statistics do not change. If the model is already compiled it is compiled again
    with a fresh optimizer, because a change of `trainable` only takes effect at
    compile time.

    Args:
        model: keras.Model. Modified in place.
        depth: int or None. How many of the transferred units to freeze, counted
            from the input.
        layers: list of str or None. Exact layer names to freeze instead of depth.
        transferred: list of str or None. The transferred layers, in order
            (`TransferReport.copied`); defaults to every layer with weights except
            the head.

    Returns:
        The list of frozen layer names.

    Example:

    >>> keras_tl.freeze(target_model, depth=2, transferred=report.copied)
    ['conv1', 'conv2']
    """
    if (depth is None) == (layers is None):
        raise TransferError("freeze: give exactly one of depth= or layers=.")
    candidates = trunk_layers(model) if transferred is None else list(transferred)
    units = transfer_units(candidates)
    if layers is not None:
        names = [layer.name for layer in model.layers]
        unknown = [name for name in layers if name not in names]
        if unknown:
            raise TransferError(
                f"freeze: layer(s) {unknown} are not in the model. Layers with "
                f"weights: {trunk_layers(model)}."
            )
        frozen = list(layers)
    else:
        if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= len(units):
            raise TransferError(
                f"freeze: depth must be an integer from 0 to {len(units)} (the "
                f"number of transferred units {[name for name, _ in units]}). "
                f"Received: {depth!r}."
            )
        frozen = [layer for _, layers in units[:depth] for layer in layers]
    for layer in model.layers:
        layer.trainable = layer.name not in frozen
    if model.compiled:
        model.compile_from_config(model.get_compile_config())
    return frozen
