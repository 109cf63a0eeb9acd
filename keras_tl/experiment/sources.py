"""Source models: trained once per (source, seed), kept in memory and on disk."""

import hashlib
import json
import logging
import os
import uuid

from keras_tl.experiment.plan import fit_settings, pretrained_model
from keras_tl.experiment.spec import RESULT_VERSION
from keras_tl.training.fit import (
    compile_model,
)
from keras_tl.training.fit import evaluate as evaluate_split
from keras_tl.training.fit import fit

logger = logging.getLogger(__name__)


def _derived_seed(seed, purpose):
    digest = hashlib.sha256(f"{seed}|{purpose}".encode()).hexdigest()
    return int(digest[:8], 16) % (2**31)


class SourceModels:
    """Trains each source model once per seed and keeps it in memory and on disk.

    Args:
        plan: Plan.
        cache_folder: str or None. Where trained source models are saved as
            `.keras` files (written to a temporary name, then renamed).
        pool: ModelPool or None. Train on a pooled compiled model (a twin built
            with the same seed) and copy the weights out, so each seed's source
            does not compile its own training step.
    """

    def __init__(self, plan, cache_folder=None, pool=None):
        self.plan = plan
        self.cache_folder = cache_folder
        self.pool = pool
        self._trained = {}

    def _source(self, name):
        return self.plan.sources[name] if name else next(iter(self.plan.sources.values()))

    def _spec_hash(self, source):
        config = self.plan.experiment.config
        payload = {"source": source.config, "model": config["model"], "v": RESULT_VERSION}
        if config.get("precision"):  # Trained under a mixed policy; absent for float32.
            payload["precision"] = config["precision"]
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]

    def trained(self, seed, name=None):
        """Returns `(model, test_metrics)` of a source trained with `seed`.

        Args:
            seed: int.
            name: str or None. The source's name; None for the first source.
        """
        source = self._source(name)
        if (source.name, seed) in self._trained:
            return self._trained[(source.name, seed)]
        task = source.task
        path = None
        if self.cache_folder:
            path = os.path.join(
                self.cache_folder, f"source-{self._spec_hash(source)}-seed{seed}.weights.h5"
            )
        if source.config["pretrained"]:
            model = pretrained_model(
                source.config, source.network,
                *source.build_shape(self.plan.target_task), seed=seed,
            )
        else:
            model = None
            if path and os.path.isfile(path):
                model = self._load_cached(source, seed, path)
            if model is None and source.config["untrained"]:
                model = self.untrained(seed, source.name)
            elif model is None:
                model = self._train(source, seed)
                if path:
                    self._save_cached(model, path)
        result = (model, evaluate_split(model, task, "test") if task else None)
        self._trained[(source.name, seed)] = result
        return result

    def _load_cached(self, source, seed, path):
        """The cached source model at `path`, or None when the file cannot be loaded
        (empty, truncated, garbage): then it is deleted, with a warning, and the
        source is trained again."""
        task = source.task
        # Weights, not a whole .keras model: a subclassed network's class need not
        # be registered to be rebuilt.
        model = source.network.build(task.input_shape, task.num_outputs, seed)
        try:
            model.load_weights(path)
        except Exception as error:  # h5py's OSError, keras' ValueError, ...
            reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            logger.warning(
                "The cached source model %s cannot be loaded (%s); deleting it and "
                "training source %r (seed %d) again.", path, reason, source.name, seed,
            )
            try:
                os.remove(path)
            except FileNotFoundError:
                pass  # Another worker removed it first.
            except OSError as remove_error:
                logger.warning("Could not delete %s (%s); it is replaced once the source "
                               "is trained.", path, remove_error)
            return None
        return model

    def _save_cached(self, model, path):
        """Saves a trained source model to `path` through a temporary file and a rename
        (unique per process: workers may save the same source at once). A failure
        (a full disk, a read-only folder) only costs the cache: a warning, no file."""
        # Keras needs the `.weights.h5` ending.
        temporary = (f"{path[: -len('.weights.h5')]}.tmp-{os.getpid()}-"
                     f"{uuid.uuid4().hex[:8]}.weights.h5")
        try:
            os.makedirs(self.cache_folder, exist_ok=True)
            model.save_weights(temporary)
            os.replace(temporary, path)
        except Exception as error:
            logger.warning("Could not cache the source model in %s (%s: %s); it is "
                           "trained again when next needed.", path, type(error).__name__,
                           str(error).splitlines()[0] if str(error) else "")
            try:
                os.remove(temporary)
            except OSError:
                pass

    def _train(self, source, seed):
        task, stage = source.task, source.config
        settings = fit_settings(self.plan, stage)
        model = source.network.build(task.input_shape, task.num_outputs, seed)
        if self.pool is None:
            compile_model(model, task.kind, stage["optimizer"], stage["learning_rate"])
            fit(model, task, settings, seed)
            return model
        # The pooled model is shared with later trainings: train a same-seed twin
        # there and keep `model`, which no one else holds, as the source.
        twin = source.network.build(task.input_shape, task.num_outputs, seed)
        trainer = self.pool.compiled(twin, task.kind, stage["optimizer"], stage["learning_rate"])
        fit(trainer, task, settings, seed)
        model.set_weights(trainer.get_weights())
        return model

    def retention_probe(self, name):
        """A source-shaped network, built once, to load trained trunks into."""
        source = self._source(name)
        key = ("probe", source.name)
        if key not in self._trained:
            self._trained[key] = source.network.build(
                source.task.input_shape, source.task.num_outputs, seed=0
            )
        return self._trained[key]

    def random_init_metrics(self, seed, name=None):
        """Source-task test metrics of the untrained source network (for FWT)."""
        source = self._source(name)
        key = ("random", source.name, seed)
        if source.task is None:
            return None
        if key not in self._trained:
            self._trained[key] = evaluate_split(self.untrained(seed, name), source.task, "test")
        return self._trained[key]

    def untrained(self, seed, name=None):
        """A source network with random weights: the `random_transfer` control.

        A pretrained backbone is built with `weights=None`: its architecture
        without what it learned.
        """
        source = self._source(name)
        network = source.network
        if network.options.get("weights"):
            network = network.with_options(weights=None)
        return network.build(
            *source.build_shape(self.plan.target_task), _derived_seed(seed, "random_source")
        )
