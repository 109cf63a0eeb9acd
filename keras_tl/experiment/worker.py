"""A worker: what one process keeps for a run (plan, source models, compiled models,
prefix features), and the failure isolation around each trial it runs.

The serial executor holds one `Worker` in the driver; spawned processes and Ray
actors each build one in `start_worker`, after setting `KERAS_BACKEND` and their
thread limits and before anything imports keras.
"""

import contextlib
import importlib
import os
import socket
import time
import traceback

from keras_tl.errors import ConfigError, DataError


@contextlib.contextmanager
def distributed(plan):
    """The context every trial and source training of `plan` runs in: its
    `keras.distribution` and its dtype policy (`precision`, restored on exit)."""
    from keras_tl.training.distribution import scope
    from keras_tl.training.precision import DEFAULT_PRECISION, precision_scope

    config = plan.experiment.config
    precision = config.get("precision", DEFAULT_PRECISION)
    with scope(config["distribution"]), precision_scope(precision):
        yield


def execute_trial(run_one, plan, spec, sources, pool, feature_cache=None):
    """Runs one trial with `run_one`, isolating its failure.

    A non-finite loss or any exception other than a user error (`ConfigError`,
    `DataError`) fails only this trial: its record has `status: "failed"` and the
    error text; the traceback is returned for the run log.

    Returns:
        `(record, traceback_or_None)`.
    """
    from keras_tl.experiment.spec import base_record
    from keras_tl.training.fit import TrialFailure

    record = base_record(plan, spec)
    started = time.perf_counter()
    details = None
    try:
        with distributed(plan):
            record.update(run_one(plan, spec, sources, pool, feature_cache))
        record["status"], record["error"] = "ok", None
    except TrialFailure as failure:
        record["status"], record["error"] = "failed", str(failure)
    except (ConfigError, DataError):
        raise
    except Exception as error:  # Any other trial error is isolated and recorded.
        record["status"] = "failed"
        record["error"] = f"{type(error).__name__}: {error}".splitlines()[0]
        details = traceback.format_exc()
    record["wall_time"] = time.perf_counter() - started
    return record, details


def feature_cache_for(plan, cache_folder):
    """The process's `FeatureCache`: `feature_cache_mb` of memory, then files in
    its own folder under the run's `cache/` (deleted when the run ends)."""
    from keras_tl.training.cache import FeatureCache

    folder = None
    if cache_folder:
        folder = os.path.join(cache_folder, f"features-{socket.gethostname()}-{os.getpid()}")
    return FeatureCache(plan.experiment.config["feature_cache_mb"], folder)


class Worker:
    """Runs trials and trains sources for one process, reusing what it built.

    Args:
        plan: Plan.
        cache_folder: str or None. Where source models are saved and shared.
        run_one: callable. `run_one(plan, spec, sources, pool, feature_cache)`
            returns a trial's record fields (`keras_tl.experiment.trial.run_trial`).
    """

    def __init__(self, plan, cache_folder, run_one):
        from keras_tl.experiment.sources import SourceModels
        from keras_tl.training.cache import ModelPool

        self.plan = plan
        self.run_one = run_one
        self.pool = ModelPool()
        self.sources = SourceModels(plan, cache_folder, self.pool)
        self.feature_cache = feature_cache_for(plan, cache_folder)

    def trial(self, spec):
        return execute_trial(
            self.run_one, self.plan, spec, self.sources, self.pool, self.feature_cache
        )

    def source(self, name, seed):
        with distributed(self.plan):
            self.sources.trained(seed, name)
        return name, seed

    def close(self):
        self.pool.clear()
        self.feature_cache.clear()


def reference(function):
    """`"module:qualname"` of a module-level function, for another process to import
    after it has chosen its backend (unpickling the function itself would import its
    module, and keras with it, first)."""
    return f"{function.__module__}:{function.__qualname__}"


def _resolve(name):
    module, _, attribute = name.partition(":")
    return getattr(importlib.import_module(module), attribute)


# This process's worker, set once by `start_worker`.
_WORKER = None


def start_worker(backend, experiment_config, cache_folder, threads, run_one, unsafe_load=False):
    """Sets the backend and thread limits, then plans the experiment in this process.

    Args:
        run_one: str. `reference()` of the function that runs one trial.
    """
    global _WORKER
    from keras_tl.backend import import_keras_quietly, thread_limits, without_tensorflow

    os.environ["KERAS_BACKEND"] = backend
    os.environ.update(thread_limits(threads))
    import_keras_quietly()  # TensorFlow's start-up notices would fill the CLI's stderr.
    without_tensorflow()  # This process is keras-tl's own.
    from keras_tl.config.schema import load_experiment
    from keras_tl.experiment.plan import plan

    the_plan = plan(load_experiment(experiment_config), unsafe_load)
    _WORKER = Worker(the_plan, cache_folder, _resolve(run_one))


def worker_ready():
    """A first job that makes a pool start its process now; does nothing."""


def worker_trial(spec):
    return _WORKER.trial(spec)


def worker_source(name, seed):
    return _WORKER.source(name, seed)
