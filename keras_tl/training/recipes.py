"""Target training recipes: scratch, fine_tune, linear_probe, lp_ft and l2sp.

`freeze_pattern` is the one rule of what each recipe freezes of the transferred
layers; `frozen_by_recipe` names those layers without a model (the trial records
them as frozen).
"""

import dataclasses
import os

import keras
import numpy as np

from keras_tl.config.arms import CACHE_FEATURES_DEFAULT, L2SP_DEFAULTS, LP_FT_DEFAULTS
from keras_tl.data import ondisk
from keras_tl.errors import ConfigError
from keras_tl.networks.transfer import freeze
from keras_tl.networks.units import HEAD, transfer_units
from keras_tl.training.cache import frozen_prefix_cut, prefix_outputs
from keras_tl.training.fit import compile_model, fit


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


# What a recipe freezes. `pattern` is what the trial asked for: `{"depth": k}` (the
# first k transfer units) or `{"layers": [names]}` (exactly those layers).


def every_unit(transferred):
    """The freeze pattern of every transferred unit (what a linear probe freezes)."""
    return {"depth": len(transfer_units(transferred))}


def freeze_pattern(recipe, transferred, pattern):
    """What `recipe` freezes of the transferred layers, as a freeze pattern.

    The one rule of which layers a recipe keeps frozen: `scratch` freezes nothing,
    `linear_probe` every transferred unit, and every other recipe (`fine_tune`,
    `l2sp`, `lp_ft` after its probe stage, registered recipes) the requested
    `pattern`. The recipes freeze by it, and
    `keras_tl.experiment.plan.frozen_layers` (what a trial records as frozen)
    reads it through `frozen_by_recipe`.

    Args:
        recipe: str. A recipe name.
        transferred: list of str. Layers copied from the source, in order.
        pattern: dict. `{"depth": k}` or `{"layers": [names]}`.

    Returns:
        A freeze pattern for `keras_tl.networks.transfer.freeze`.
    """
    if recipe == "scratch":
        return {"depth": 0}
    if recipe == "linear_probe":
        return every_unit(transferred)
    return pattern


def frozen_by_recipe(recipe, transferred, pattern):
    """The names of the transferred layers `recipe` freezes, in order.

    The layers `keras_tl.networks.transfer.freeze` freezes for
    `freeze_pattern(recipe, transferred, pattern)`: the layers of the first `k`
    transfer units for `{"depth": k}` (all of them for `k=None`), or the layers
    named.

    Args:
        recipe: str. A recipe name.
        transferred: list of str. Layers copied from the source, in order.
        pattern: dict. `{"depth": k}` or `{"layers": [names]}`.

    Returns:
        list of str.
    """
    pattern = freeze_pattern(recipe, transferred, pattern)
    if "layers" in pattern:
        return list(pattern["layers"])
    units = transfer_units(transferred)
    return [name for _, layers in units[:pattern["depth"]] for name in layers]


def train_single_stage(model, task, transferred, pattern, settings, seed, pool=None,
                       feature_cache=None, cache_features=True):
    """Freezes `pattern` of the transferred layers and trains once: the body of
    `scratch`, `fine_tune` and `linear_probe`, and a building block for new recipes.

    Args:
        model: keras.Model. Holds the transferred weights already.
        task: Task.
        transferred: list of str. Layers copied from the source, in order.
        pattern: dict. `{"depth": k}` freezes the first k transfer units;
            `{"layers": [names]}` freezes exactly those layers.
        settings: FitSettings.
        seed: int.
        pool: ModelPool or None. Reuse a compiled model of the same structure.
        feature_cache: FeatureCache or None. Share frozen-prefix outputs.
        cache_features: bool. Train on the frozen prefix's outputs when it has
            no train-time randomness (same numbers, less work). Never with
            `settings.augment`: the prefix then sees new inputs every batch.

    Returns:
        `(trained_model, epochs_run)`.
    """
    freeze(model, transferred=transferred, **pattern)
    # Augmented inputs change every batch: a frozen prefix's outputs computed
    # once (or cached) on the inputs as they are would be the wrong features.
    use_cut = cache_features and not settings.augment
    cut = frozen_prefix_cut(model) if use_cut else None
    if cut is not None:
        return model, _fit_on_prefix_features(
            model, cut, task, settings, seed, pool, feature_cache
        )
    if pool is not None:
        model = pool.compiled(model, task.kind, settings.optimizer, settings.learning_rate)
    else:
        compile_model(model, task.kind, settings.optimizer, settings.learning_rate)
    return model, fit(model, task, settings, seed)


def _scratch(model, task, transferred, pattern, settings, seed, options, pool, feature_cache):
    nothing = freeze_pattern("scratch", transferred, pattern)
    return train_single_stage(model, task, [], nothing, settings, seed, pool,
                              feature_cache, options["cache_features"])


def _fine_tune(model, task, transferred, pattern, settings, seed, options, pool,
               feature_cache):
    pattern = freeze_pattern("fine_tune", transferred, pattern)
    return train_single_stage(model, task, transferred, pattern, settings, seed, pool,
                              feature_cache, options["cache_features"])


def _linear_probe(model, task, transferred, pattern, settings, seed, options, pool,
                  feature_cache):
    pattern = freeze_pattern("linear_probe", transferred, pattern)
    return train_single_stage(model, task, transferred, pattern, settings, seed, pool,
                              feature_cache, options["cache_features"])


def _lp_ft(model, task, transferred, pattern, settings, seed, options, pool, feature_cache):
    """Linear probe for `probe_fraction` of the epochs, then fine-tune at the
    learning rate times `learning_rate_scale` (Kumar et al., ICLR 2022). It changes
    its freeze pattern mid-way, so it compiles its own model (no pool)."""
    probe_epochs = max(1, int(round(settings.epochs * options["probe_fraction"])))
    freeze(model, transferred=transferred, **every_unit(transferred))
    compile_model(model, task.kind, settings.optimizer, settings.learning_rate)
    probe = dataclasses.replace(settings, epochs=probe_epochs)
    epochs_run = fit(model, task, probe, seed)
    freeze(model, transferred=transferred, **freeze_pattern("lp_ft", transferred, pattern))
    scale = options["learning_rate_scale"]
    compile_model(model, task.kind, settings.optimizer, settings.learning_rate * scale)
    rest = dataclasses.replace(settings, epochs=max(1, settings.epochs - probe_epochs))
    return model, epochs_run + fit(model, task, rest, seed + 1)


def _l2sp(model, task, transferred, pattern, settings, seed, options, pool, feature_cache):
    """Fine-tunes with the L2-SP penalty. The reference weights are baked into the
    compiled loss, so it compiles its own model and trains on the whole network."""
    freeze(model, transferred=transferred, **freeze_pattern("l2sp", transferred, pattern))
    _attach_l2sp(model, transferred, options["alpha"], options["beta"])
    compile_model(model, task.kind, settings.optimizer, settings.learning_rate)
    return model, fit(model, task, settings, seed)


# Recipe name -> function(model, task, transferred, pattern, settings, seed, options,
# pool, feature_cache) -> (trained_model, epochs_run).
RECIPES = {
    "scratch": _scratch,
    "fine_tune": _fine_tune,
    "linear_probe": _linear_probe,
    "lp_ft": _lp_ft,
    "l2sp": _l2sp,
}


def register_recipe(name, recipe):
    """Adds a training recipe for an arm registered with
    `keras_tl.config.arms.register_arm`.

    Args:
        name: str. The recipe name the arm declares.
        recipe: callable. Called as `recipe(model, task, transferred, pattern,
            settings, seed, options, pool, feature_cache)` and returns
            `(trained_model, epochs_run)`; `pattern` is what the trial freezes
            (`{"depth": k}` or `{"layers": [...]}`), `options` the experiment's
            recipe options (`lp_ft`, `l2sp`, `cache_features`).
            `train_single_stage` does the usual freeze-compile-fit.
    """
    if name in ("scratch", "fine_tune", "linear_probe", "lp_ft", "l2sp", "fused"):
        raise ConfigError(f"register_recipe: {name!r} is a built-in recipe. Choose another name.")
    RECIPES[name] = recipe


def train_target(
    model, task, recipe, transferred, depth, settings, seed, options=None, pool=None,
    feature_cache=None, frozen=None,
):
    """Trains a target model by a recipe.

    Args:
        model: keras.Model. Holds the transferred weights already.
        task: Task. Its train split is the (subsampled) training data.
        recipe: str. A key of `RECIPES`.
        transferred: list of str. Layers copied from the source, in order.
        depth: int. How many of the transferred units stay frozen (ignored by
            `scratch`; `linear_probe` freezes all of them).
        settings: FitSettings.
        seed: int. Seeds data order and dropout.
        options: dict or None. Recipe options: `learning_rate_scale` and
            `probe_fraction` for `lp_ft`; `alpha` and `beta` for `l2sp`;
            `cache_features`. None: the defaults of `keras_tl.config.arms`.
        pool: ModelPool or None. Reuse compiled models for the single-stage recipes.
        feature_cache: FeatureCache or None. Share prefix outputs across trials.
        frozen: list of str or None. Freeze exactly these layers instead of the
            first `depth` units (`freeze: {layers: REGEX}` in an experiment).

    Returns:
        `(trained_model, epochs_run)`: with a pool the trained model is the pooled
        one, not `model`.
    """
    if recipe not in RECIPES:
        raise ConfigError(
            f"Unknown recipe {recipe!r}. Expected one of {', '.join(RECIPES)}."
        )
    options = {**recipe_defaults(), **(options or {})}
    pattern = {"layers": frozen} if frozen is not None else {"depth": depth}
    return RECIPES[recipe](
        model, task, transferred, pattern, settings, seed, options, pool, feature_cache
    )


def recipe_defaults():
    """Every recipe option at its default (from `keras_tl.config.arms`)."""
    return {**LP_FT_DEFAULTS, **L2SP_DEFAULTS, "cache_features": CACHE_FEATURES_DEFAULT}
