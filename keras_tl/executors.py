"""Executors: run trials one after another, or in worker processes.

The driver (`keras_tl.evaluator.evaluate`) alone writes the trial store; an
executor only turns trial specs into records. Workers are started with the
`spawn` method (never `fork` after a backend is loaded), set `KERAS_BACKEND` and
their thread limits before importing keras, and load source models from the run
folder's cache, where the driver had them trained once, before any trial starts.
"""

import concurrent.futures
import multiprocessing
import os
import time
import traceback

from keras_tl.errors import ConfigError, DataError

EXECUTORS = ("serial", "process")


def execute_trial(plan, spec, sources, pool, feature_cache=None):
    """Runs one trial, isolating its failure; returns `(record, traceback_or_None)`.

    A non-finite loss or any exception other than a user error (`ConfigError`,
    `DataError`) fails only this trial: its record has `status: "failed"` and the
    error text; the traceback is returned for the run log.
    """
    from keras_tl.evaluator import base_record, run_trial
    from keras_tl.training import TrialFailure

    record = base_record(plan, spec)
    started = time.perf_counter()
    details = None
    try:
        record.update(run_trial(plan, spec, sources, pool, feature_cache))
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
    from keras_tl.training import FeatureCache

    folder = None
    if cache_folder:
        folder = os.path.join(cache_folder, f"features-{os.getpid()}")
    return FeatureCache(plan.experiment.config["feature_cache_mb"], folder)


class SerialExecutor:
    """Runs trials in this process, reusing compiled models and prefix features."""

    def __init__(self, plan, cache_folder):
        from keras_tl.evaluator import SourceModels
        from keras_tl.training import ModelPool

        self.plan = plan
        self.pool = ModelPool()
        self.sources = SourceModels(plan, cache_folder, self.pool)
        self.feature_cache = feature_cache_for(plan, cache_folder)

    def run(self, specs):
        for spec in specs:
            yield execute_trial(self.plan, spec, self.sources, self.pool, self.feature_cache)

    def close(self):
        self.pool.clear()
        self.feature_cache.clear()


# State of a worker process, set once by `_start_worker`.
_WORKER = {}


def _start_worker(backend, experiment_config, cache_folder, threads):
    from keras_tl.backend import thread_limits

    os.environ["KERAS_BACKEND"] = backend
    os.environ.update(thread_limits(threads))
    from keras_tl.config import load_experiment
    from keras_tl.evaluator import SourceModels, plan
    from keras_tl.training import ModelPool

    the_plan = plan(load_experiment(experiment_config))
    pool = ModelPool()
    sources = SourceModels(the_plan, cache_folder, pool)
    _WORKER.update(
        plan=the_plan, sources=sources, pool=pool,
        feature_cache=feature_cache_for(the_plan, cache_folder),
    )


def _worker_trial(spec):
    worker = _WORKER
    return execute_trial(
        worker["plan"], spec, worker["sources"], worker["pool"], worker["feature_cache"]
    )


def _worker_source(name, seed):
    _WORKER["sources"].trained(seed, name)
    return name, seed


class ProcessExecutor:
    """Runs trials in `workers` spawned processes.

    Source models are trained first, one job per (source, seed), and saved to the
    cache folder; trial jobs start after that, so no source is trained twice.

    Args:
        plan: Plan.
        cache_folder: str. Shared with the workers (the run folder's `cache/`).
        workers: int. Number of processes.
        backend: str. The Keras backend the workers use.
        threads: int. Threads per worker (default: cores // workers, at least 1).
    """

    def __init__(self, plan, cache_folder, workers, backend, threads=None):
        self.plan = plan
        threads = threads or max(1, (os.cpu_count() or 1) // workers)
        self._executor = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(backend, plan.experiment.to_dict(), cache_folder, threads),
        )

    def run(self, specs):
        specs = list(specs)
        needed = sorted(
            {(spec.source, spec.seed) for spec in specs if spec.source is not None},
            key=str,
        )
        jobs = [self._executor.submit(_worker_source, name, seed) for name, seed in needed]
        for job in concurrent.futures.as_completed(jobs):
            job.result()
        jobs = [self._executor.submit(_worker_trial, spec) for spec in specs]
        for job in concurrent.futures.as_completed(jobs):
            yield job.result()

    def close(self):
        self._executor.shutdown(wait=True, cancel_futures=True)
