"""The one registry of arms and of every name and default an experiment may use.

An arm is a way to train the target network, compared with `scratch` paired by
seed. Each arm declares its rules here; `keras_tl.training.recipes` holds the
recipe it trains with. Adding an arm touches this registry and (for a new way to
train) a recipe, nothing else:

>>> from keras_tl.config import arms
>>> arms.register_arm(arms.Arm("slow_fine_tune", recipe="slow_fine_tune",
...                            uses_source=True, sweeps_depth=True))
>>> from keras_tl.training.recipes import register_recipe
>>> register_recipe("slow_fine_tune", my_recipe)  # see register_recipe
"""

import dataclasses

from keras_tl.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Arm:
    """What an arm is: how it trains and which rules of the protocol apply to it.

    Args:
        name: str. The name used in `arms:` and in results.
        recipe: str. The training recipe (`keras_tl.training.recipes.RECIPES`), or
            `"fused"` for the multi-task model, which has its own trial body.
        uses_source: bool. Copies layers from a source network (one trial per source).
        sweeps_depth: bool. Runs once per freeze depth of `freeze_depths` (or freezes
            the layers `freeze: {layers: REGEX}` matches).
        freezes_all: bool. Freezes every transferred unit (a linear probe).
        is_control: bool. A control, not a candidate: it transfers from an
            untrained source (`random_transfer`), so it is never the best arm and
            has no source-side metrics.
        is_baseline: bool. The arm every gain is measured against (`scratch`).
    """

    name: str
    recipe: str
    uses_source: bool = False
    sweeps_depth: bool = False
    freezes_all: bool = False
    is_control: bool = False
    is_baseline: bool = False

    @property
    def is_fused(self):
        return self.recipe == "fused"


_BUILT_IN = (
    Arm("scratch", "scratch", is_baseline=True),
    Arm("fine_tune", "fine_tune", uses_source=True, sweeps_depth=True),
    Arm("linear_probe", "linear_probe", uses_source=True, freezes_all=True),
    Arm("lp_ft", "lp_ft", uses_source=True, sweeps_depth=True),
    Arm("l2sp", "l2sp", uses_source=True, sweeps_depth=True),
    Arm("random_transfer", "fine_tune", uses_source=True, sweeps_depth=True, is_control=True),
    Arm("fused", "fused"),
)
ARMS = {arm.name: arm for arm in _BUILT_IN}
BASELINE = "scratch"

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
METRICS = ("accuracy", "auc", "loss", "mae", "mse")
SCORE_NAMES = ("logme", "leep", "nce", "h_score", "regularized_h_score", "gbc", "transrate")
DISTRIBUTIONS = ("data_parallel",)

# Training-stage defaults (source and target), and the recipe options' defaults.
STAGE_DEFAULTS = {"epochs": 10, "batch_size": 32, "optimizer": "adam", "learning_rate": 0.001}
LP_FT_DEFAULTS = {"learning_rate_scale": 0.1, "probe_fraction": 0.5}
L2SP_DEFAULTS = {"alpha": 0.01, "beta": 0.01}
CACHE_FEATURES_DEFAULT = True
FEATURE_CACHE_MB_DEFAULT = 512

# `augment:` of a training stage: name -> every option at its default (the options
# of the Keras preprocessing layer of that name, `keras_tl.training.augment`).
# A name alone takes these defaults; the resolved config holds every option.
_FILL = {"fill_mode": "reflect", "interpolation": "bilinear", "fill_value": 0.0}
AUGMENTATIONS = {
    "random_flip": {"mode": "horizontal_and_vertical"},
    "random_translation": {"height_factor": 0.1, "width_factor": 0.1, **_FILL},
    "random_zoom": {"height_factor": 0.1, "width_factor": None, **_FILL},
    "random_rotation": {"factor": 0.1, **_FILL},
    "random_contrast": {"factor": 0.1, "value_range": [0, 255]},
    "gaussian_noise": {"stddev": 0.1},
}
# The augmentations that need image inputs (height, width, channels).
IMAGE_AUGMENTATIONS = (
    "random_flip", "random_translation", "random_zoom", "random_rotation", "random_contrast",
)
FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")
FILL_MODES = ("reflect", "wrap", "constant", "nearest")
INTERPOLATIONS = ("nearest", "bilinear")


def get_arm(name):
    """The registered `Arm` called `name`; `ConfigError` for an unknown one."""
    if name not in ARMS:
        raise ConfigError(f"arm: expected one of {', '.join(ARMS)}, received {name!r}")
    return ARMS[name]


def register_arm(arm):
    """Adds an arm to the registry (its recipe must be registered in
    `keras_tl.training.recipes` before a trial runs it).

    Args:
        arm: Arm. A new name; the built-in arms cannot be replaced.
    """
    if not isinstance(arm, Arm):
        raise ConfigError(f"register_arm: expected an Arm, received {arm!r}")
    if arm.name in {built_in.name for built_in in _BUILT_IN}:
        raise ConfigError(
            f"register_arm: {arm.name!r} is a built-in arm. Choose another name."
        )
    ARMS[arm.name] = arm


def unregister_arm(name):
    """Removes an arm added with `register_arm` (built-in arms stay)."""
    if name in {built_in.name for built_in in _BUILT_IN}:
        raise ConfigError(f"unregister_arm: {name!r} is a built-in arm.")
    ARMS.pop(name, None)


def rules_of(name):
    """The rules of arm `name` for reading stored results: the registered `Arm`, or
    for an arm registered only in the process that ran it, a depth-swept transfer arm."""
    return ARMS.get(name) or Arm(name, name, uses_source=True, sweeps_depth=True)
