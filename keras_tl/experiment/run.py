"""`evaluate`: runs an experiment's pending trials and returns Results."""

import glob
import os
import shutil
import tempfile

import keras

from keras_tl.backend import tensorflow_hidden
from keras_tl.config.schema import load_experiment
from keras_tl.data.registry import is_registered
from keras_tl.errors import ConfigError
from keras_tl.experiment.executors import (
    ProcessExecutor,
    RayExecutor,
    SerialExecutor,
    resolve_executor,
)
from keras_tl.experiment.folder import append_run_log, check_same_data, prepare_run_folder
from keras_tl.experiment.plan import plan, plan_context
from keras_tl.experiment.trial import run_trial
from keras_tl.results.results import provenance
from keras_tl.results.summary import build_results, results_from_store
from keras_tl.scores import sequential


class _EpochReporter(keras.callbacks.Callback):
    """Calls `on_epoch(epoch, epochs)` at the end of every epoch of every fit."""

    def __init__(self, on_epoch):
        super().__init__()
        self._on_epoch = on_epoch

    def on_epoch_end(self, epoch, logs=None):
        self._on_epoch(epoch + 1, self.params.get("epochs"))


def _announced(specs, on_trial_start, done, total):
    """Yields `specs` to a serial executor, calling `on_trial_start(done, total,
    spec)` just before each is taken (the previous ones have finished by then)."""
    for index, spec in enumerate(specs):
        on_trial_start(done + index, total, spec)
        yield spec


def _seed_limits(experiment):
    """The seed counts the run stops at to decide: `[None]` (all seeds at once)
    for a fixed list of seeds, the planned looks for `seeds: {min, max}`."""
    if experiment.seed_range is None:
        return [None]
    return sequential.round_sizes(*experiment.seed_range)


def _undecided(experiment, context, the_plan, store, records):
    """Whether some gain still waits for more seeds, from every trial finished so
    far (stored by earlier runs of this folder too)."""
    keys = {spec.key(experiment) for spec in the_plan.trials}
    if store:
        results = results_from_store(store, keys)
    else:
        stored = [record for key, record in records.items() if key in keys]
        results = build_results(experiment.to_dict(), context, stored, {})
    return results.summary["seeds"]["undecided"]


def _start_executor(name, the_plan, cache_folder, workers, address, gpus_per_trial,
                    run_one, unsafe_load):
    backend = keras.config.backend()
    if name == "serial":
        return SerialExecutor(the_plan, cache_folder, run_one)
    return RayExecutor(the_plan, cache_folder, workers, backend, run_one, unsafe_load,
                       address, gpus_per_trial)


@tensorflow_hidden()
def evaluate(experiment=None, out=None, overwrite=False, retry_failed=False,
             on_trial=None, command=None, workers=None, verbose=False, executor=None,
             address=None, gpus_per_trial=0, on_trial_start=None, on_epoch=None,
             unsafe_load=False, trial_runner=None):
    """Runs an experiment's trials (those not yet finished in `out`) and returns Results.

    Whatever the executor, this process alone writes the trial store, so resuming
    and failure isolation work the same way with each of them.

    Args:
        experiment: an `Experiment`, a YAML path, a dict, or None for the default.
            With `seeds: {min, max}` the trials run in rounds of seeds (`min`,
            then about 1.5x more per round up to `max`), and the run stops after
            the first round at which every verdict is decided
            (`keras_tl.scores.sequential`).
        out: str or None. The run folder; it holds `trials.sqlite`, `results.json`,
            `trials.csv`, `run.log` and `cache/`. Re-running with the same folder
            resumes: finished trials are not run again.
        overwrite: bool. Replace a non-empty `out` that belongs to another run.
        retry_failed: bool. Run failed trials again.
        on_trial: callable or None. Called as `on_trial(done, total, record)` after
            each trial.
        on_trial_start: callable or None. Called as `on_trial_start(done, total,
            spec)` (`spec` a `TrialSpec`) just before each trial starts; only
            with the serial executor.
        on_epoch: callable or None. Called as `on_epoch(epoch, epochs)` after each
            training epoch (source or target); only with the serial executor.
        command: str or None. The command line, recorded in the provenance.
        workers: int or None. Workers (`"process"`: this process and
            `workers - 1` spawned ones) or Ray actors (`"ray"`); None: one per
            CPU (on Ray, one per `gpus_per_trial` GPUs when that is set). More
            than one picks `"process"` when `executor` is None.
        verbose: bool. Show Keras' per-epoch progress bars (in this process).
        executor: str or None. `"serial"` (in this process), `"process"`
            (spawned worker processes) or `"ray"` (actors on a Ray cluster, see
            `keras_tl.experiment.executors.RayExecutor`); None: `"serial"` for one worker,
            `"process"` for more.
        address: str or None. With `"ray"`: the cluster, `"auto"` or
            `"ray://HOST:PORT"`; None starts a local Ray (or uses `RAY_ADDRESS`).
        gpus_per_trial: float. With `"ray"`: GPUs each actor holds.
        unsafe_load: bool. Load `.keras` files that hold code (a `Lambda` layer),
            here and in every worker. Only for files you trust.
        trial_runner: callable or None. The function that runs one trial,
            `trial_runner(plan, spec, sources, pool, feature_cache)` -> record
            fields (default `keras_tl.experiment.trial.run_trial`); wrap it to
            observe or alter trials. Process and Ray workers import it by name,
            so there it must be a module-level function.

    Returns:
        `Results`.

    Example:

    >>> results = keras_tl.evaluate("examples/parity.yaml", out="runs/parity")
    >>> results.summary["best"]["verdict"]
    'positive'
    """
    executor = resolve_executor(executor, workers, address, gpus_per_trial)
    experiment = load_experiment(experiment)
    config = experiment.config
    registered = [
        name for name in [config["target"]["task"], *(s["task"] for s in config["sources"])]
        if name and is_registered(name)
    ]
    if registered and executor != "serial":
        raise ConfigError(
            f"executor: task(s) {registered} were registered in this process with "
            f"register_task, which {executor} workers cannot see. Received: "
            f"executor={executor!r}, workers={workers!r}. Use the serial executor "
            f"(workers=1), or save the data as an npz: task."
        )
    # Absolute: Ray workers may run in another folder.
    cache_folder = os.path.abspath(os.path.join(out, "cache")) if out else None
    scratch_folder = None
    if executor != "serial" and cache_folder is None:  # Workers share sources through files.
        cache_folder = scratch_folder = tempfile.mkdtemp(prefix="keras-tl-cache-")
    run_one = trial_runner or run_trial
    processes = None
    # Started before the run folder is touched: a Ray cluster that cannot be
    # reached leaves `out` as it was. Spawned workers start before planning, so
    # they import keras and plan while this process plans.
    try:
        if executor == "process":
            processes = ProcessExecutor(experiment, cache_folder, workers,
                                        keras.config.backend(), run_one, unsafe_load)
        the_plan = plan(experiment, unsafe_load)
        the_plan.verbose = 1 if verbose else 0
        if on_epoch and executor == "serial":
            the_plan.callbacks = (_EpochReporter(on_epoch),)
        context = plan_context(the_plan)
        if processes:
            processes.plan_ready(the_plan)
        executor = processes or _start_executor(
            executor, the_plan, cache_folder, workers, address, gpus_per_trial,
            run_one, unsafe_load,
        )
    except BaseException:
        if processes:
            processes.close()
        if scratch_folder:
            shutil.rmtree(scratch_folder, ignore_errors=True)
        raise
    records = {}
    store = None
    try:
        store = prepare_run_folder(out, experiment, overwrite) if out else None
        if store:
            check_same_data(store, context, out)
            store.set_meta("context", context)
        done = store.statuses() if store else {}
        rerun = {None, "failed"} if retry_failed else {None}
        pending = [
            spec for spec in the_plan.trials if done.get(spec.key(experiment)) in rerun
        ]
        total = len(the_plan.trials)
        finished = total - len(pending)
        for limit in _seed_limits(experiment):
            batch = [spec for spec in pending if limit is None or spec.seed < limit]
            pending = [spec for spec in pending if limit is not None and spec.seed >= limit]
            if on_trial_start and isinstance(executor, SerialExecutor):
                # The serial executor takes each spec just as it starts it.
                batch = _announced(batch, on_trial_start, finished, total)
            for record, details in executor.run(batch):
                if store:
                    store.put(record)
                if details and out:
                    append_run_log(out, f"trial {record['key']} ({record['arm']}, seed "
                                        f"{record['seed']}) failed:\n{details}\n")
                records[record["key"]] = record
                finished += 1
                if on_trial:
                    on_trial(finished, total, record)
            if limit is not None and not _undecided(
                experiment, context, the_plan, store, records
            ):
                break
    except BaseException:
        if store:
            store.close()  # Releases the run folder's lock now, not at garbage collection.
        raise
    finally:
        executor.close()
        keras.backend.clear_session()
        if cache_folder:  # Prefix features that workers' caches spilled to files.
            for folder in glob.glob(os.path.join(cache_folder, "features-*")):
                shutil.rmtree(folder, ignore_errors=True)
        if scratch_folder:
            shutil.rmtree(scratch_folder, ignore_errors=True)
    try:
        keys = {spec.key(experiment) for spec in the_plan.trials}
        run_provenance = provenance(experiment, command)
        if store:
            # From the store, exactly as `keras-tl report` builds them.
            store.set_meta("provenance", run_provenance)
            results = results_from_store(store, keys)
            results.write(out)
        else:
            stored = [record for key, record in records.items() if key in keys]
            results = build_results(experiment.to_dict(), context, stored, run_provenance)
        return results
    finally:
        if store:
            store.close()
