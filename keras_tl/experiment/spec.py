"""Trial identity: `TrialSpec`, its key, and the identifying fields of a record.

Keys are byte-identical to those of earlier versions, so old run folders resume.
"""

import dataclasses
import hashlib
import json

from keras_tl.config.arms import ARMS

# Bumped whenever a change alters the numbers a trial produces.
RESULT_VERSION = 2



@dataclasses.dataclass(frozen=True)
class TrialSpec:
    """One trial: an arm from one source at one freeze depth, train size and seed.

    `source` is the source's name; None for `scratch`, which uses no source.
    """

    arm: str
    freeze_depth: int
    train_size: object
    seed: int
    source: str = None

    @property
    def recipe(self):
        return ARMS[self.arm].recipe

    def key(self, experiment):
        """A stable hash of everything that determines this trial's numbers."""
        config = experiment.config
        sources = {source["name"]: source for source in config["sources"]}
        payload = {
            "trial": dataclasses.asdict(self),
            "model": config["model"],
            "source": sources.get(self.source),
            "target": config["target"] | {"train_sizes": None},
            "learning_rates": config["learning_rates"],
            "early_stopping": config["early_stopping"],
            "scores": config["scores"],
            "recipe_options": {"lp_ft": config["lp_ft"], "l2sp": config["l2sp"]},
            "fused": config["fused"] if ARMS[self.arm].is_fused else None,
            "result_version": RESULT_VERSION,
        }
        if config.get("freeze") and ARMS[self.arm].sweeps_depth:
            # Only when set, so the keys of depth-swept experiments stay as they were.
            payload["freeze"] = config["freeze"]
        transfer = config.get("transfer")
        if transfer and transfer["mode"] != "exact" and self.source is not None:
            # Only when not an exact copy (a source's own `transfer` is in its
            # config above), so other keys stay as they were; scratch shares its.
            payload["transfer"] = transfer
        if config.get("search"):  # Likewise: absent without a search grid.
            payload["search"] = config["search"]
        if config.get("precision"):  # Likewise: absent for float32.
            payload["precision"] = config["precision"]
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:20]


def base_record(plan, spec):
    """The identifying fields of a trial's record."""
    return {
        "key": spec.key(plan.experiment),
        "arm": spec.arm,
        "recipe": spec.recipe,
        "source": spec.source,
        "freeze_depth": spec.freeze_depth,
        "requested_train_size": spec.train_size,
        "seed": spec.seed,
    }
