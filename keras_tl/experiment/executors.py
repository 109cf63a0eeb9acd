"""Executors: run trials one after another, in worker processes, or on Ray.

The driver (`keras_tl.experiment.run.evaluate`) alone writes the trial store; an
executor only turns trial specs into records. Workers (spawned processes or Ray
actors) set `KERAS_BACKEND` and their thread limits before importing keras, and
load source models from the run folder's cache, where they were trained once,
one job per (source, seed), before any trial starts.
"""

import concurrent.futures
import contextlib
import dataclasses
import functools
import importlib.util
import itertools
import logging
import multiprocessing
import os
import socket
import threading

from keras_tl.backend import threads_per_process, torch_threads
from keras_tl.config.paths import absolute_paths
from keras_tl.errors import ConfigError, DataError
from keras_tl.experiment.worker import (
    Worker,
    reference,
    start_worker,
    worker_ready,
    worker_source,
    worker_trial,
)

EXECUTORS = ("serial", "process", "ray")


# How often Ray runs a trial again on a restarted worker after its worker died.
RAY_TRIAL_RETRIES = 1


def resolve_executor(executor=None, workers=None, address=None, gpus_per_trial=0):
    """Checks the executor options of `evaluate`; returns the executor's name.

    Args:
        executor: str or None. `"serial"`, `"process"` or `"ray"`; None picks
            `"serial"` for one worker and `"process"` for more.
        workers: int or None. Worker processes (`"process"`) or Ray actors
            (`"ray"`); None: one per CPU (per `gpus_per_trial` GPUs on Ray).
        address: str or None. The Ray cluster (`"auto"`, `"ray://HOST:PORT"`).
        gpus_per_trial: float. GPUs each Ray actor holds (0: CPU only).

    Raises:
        ConfigError: an unknown executor, an option the executor does not take,
            or `"ray"` without the `ray` package installed.
    """
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ConfigError(f"workers: expected a positive integer, received {workers!r}")
    if (
        isinstance(gpus_per_trial, bool)
        or not isinstance(gpus_per_trial, (int, float))
        or gpus_per_trial < 0
    ):
        raise ConfigError(
            f"gpus_per_trial: expected a number >= 0, received {gpus_per_trial!r}"
        )
    if executor is None:
        executor = "serial" if workers in (None, 1) else "process"
    if executor not in EXECUTORS:
        raise ConfigError(
            f"executor: expected one of {', '.join(EXECUTORS)}, received {executor!r}"
        )
    if executor == "serial" and workers not in (None, 1):
        raise ConfigError(
            f"workers: the serial executor runs trials in this process, received "
            f"workers={workers}. Use executor 'process' or 'ray', or one worker."
        )
    if executor != "ray" and (address is not None or gpus_per_trial):
        raise ConfigError(
            f"address and gpus_per_trial apply to the ray executor only, received "
            f"executor={executor!r}, address={address!r}, "
            f"gpus_per_trial={gpus_per_trial!r}. Use executor 'ray' or drop them."
        )
    if executor == "ray" and importlib.util.find_spec("ray") is None:
        raise ConfigError(
            "executor 'ray' needs the ray package, which is not installed. Install "
            "it with: pip install 'keras-tl[ray]'"
        )
    return executor


def _needed_sources(specs):
    """The (source, seed) pairs the trials use, each once, in a stable order."""
    return sorted(
        {(spec.source, spec.seed) for spec in specs if spec.source is not None}, key=str
    )


class SerialExecutor:
    """Runs trials in this process, reusing compiled models and prefix features.

    Args:
        plan: Plan.
        cache_folder: str or None. Where source models are saved.
        run_one: callable. Runs one trial (see `keras_tl.experiment.worker.Worker`).
    """

    def __init__(self, plan, cache_folder, run_one):
        self.plan = plan
        self._worker = Worker(plan, cache_folder, run_one)

    def run(self, specs):
        for spec in specs:
            yield self._worker.trial(spec)

    def close(self):
        self._worker.close()


def condition_groups(specs):
    """The specs grouped by condition (everything but the seed), largest group
    first, in a stable order: the unit a worker takes whole, so its compiled
    training steps are reused across the condition's seeds."""
    groups = {}
    for spec in specs:
        condition = dataclasses.replace(spec, seed=0)
        groups.setdefault(condition, []).append(spec)
    return sorted(groups.values(), key=len, reverse=True)


class ProcessExecutor:
    """Runs trials in this process and `workers - 1` spawned processes, each
    condition's trials in one of them.

    The spawned processes start when the executor is made (they import keras
    and plan the experiment while the driver plans it too); the driver, which
    has done both already, is a worker as well (`plan_ready`), so none of its
    time goes to waiting. A spawned worker gets jobs only once it has started,
    and gets them the moment it starts or finishes one (from the pool's thread,
    while the driver runs a job of its own). Every process computes with
    `threads` threads (the driver's torch threads too, for the executor's
    life). Source models are trained first, one job per (source, seed), and
    saved to the cache folder; each condition's trials (its seeds) go to one
    worker, so a worker compiles a condition's training step once and reuses
    it for every seed, and a trial starts as soon as its own source is
    trained; a worker that has run all of its own takes the last seeds of the
    busiest one. Each trial is still its own job: its record
    comes back (and is stored) as soon as it finishes, a spawned worker's while
    the driver runs one of its own trials at the latest when that trial ends.

    Args:
        experiment: Experiment.
        cache_folder: str. Shared with the workers (the run folder's `cache/`).
        workers: int or None. Workers, the driver included (None: one per core).
        backend: str. The Keras backend the workers use.
        run_one: callable. A module-level function that runs one trial; each
            worker imports it by name after choosing its backend.
        unsafe_load: bool. Let the workers load `.keras` files that hold code.
        threads: int. Threads per process, the driver's torch threads included
            (default: cores // workers, at least 1).
    """

    def __init__(self, experiment, cache_folder, workers, backend, run_one,
                 unsafe_load=False, threads=None):
        workers = workers or os.cpu_count() or 1
        threads = threads or threads_per_process(workers)
        context = multiprocessing.get_context("spawn")
        arguments = (backend, experiment.to_dict(), cache_folder, threads,
                     reference(run_one), unsafe_load)
        self._cache_folder, self._run_one = cache_folder, run_one
        # One single-process pool per spawned worker, so a condition's jobs can
        # be sent to one worker.
        self._workers = [
            concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=context, initializer=start_worker,
                initargs=arguments,
            )
            for _ in range(workers - 1)
        ]
        # Spawns the processes now (pools start them at the first job); a
        # worker that cannot start says why in the result of its first job.
        self._watch_starts([worker.submit(worker_ready) for worker in self._workers])
        self._local = None
        # The driver trains too: on torch it shares the cores from now on (the
        # CLI caps every backend's threads before importing keras).
        self._threads = contextlib.ExitStack()
        self._threads.enter_context(torch_threads(threads))

    def _watch_starts(self, started):
        """Hands out jobs from the pools' threads too (`_on_event`), one
        `_dispatch` at a time, as each worker's `started` future completes."""
        self._lock = threading.RLock()
        self._dispatch, self._dispatching, self._again, self._error = None, False, False, None
        self._up = [False] * len(started)  # Changed only under the lock.
        for index, future in enumerate(started):
            future.add_done_callback(functools.partial(self._on_start, index))

    def plan_ready(self, plan):
        """Makes the driver a worker too, once it has planned the experiment."""
        self._local = Worker(plan, self._cache_folder, self._run_one)

    def run(self, specs):
        specs = list(specs)
        yield from self._jobs(_needed_sources(specs), condition_groups(specs))

    def _ready(self, index):
        """Whether spawned worker `index` has started (or failed to start: its
        jobs then fail with the reason). Read under the lock, it stays the same
        until the lock is released."""
        return self._up[index]

    def _on_start(self, index, future):
        with self._lock:
            self._up[index] = True
        self._on_event(future)

    def _submit(self, index, function, *job):
        """Sends a job to spawned worker `index`; its end hands out the next."""
        future = self._workers[index].submit(function, *job)
        future.add_done_callback(self._on_event)
        return future

    @staticmethod
    def _wait(futures):
        """Waits until one of `futures` is done."""
        concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_COMPLETED)

    def _on_event(self, _future):
        """A spawned worker started or finished a job: hand out jobs now, not
        when the driver's own job ends. An error is raised in the driver."""
        try:
            self._hand_out()
        except Exception as error:  # Raised by the driver's next `_hand_out`.
            with self._lock:
                self._error = self._error or error

    def _hand_out(self):
        """Runs `_dispatch` (if a phase has one); again if a job ended meanwhile."""
        with self._lock:
            if self._dispatching:  # A job that ended inside `_dispatch` (on this thread).
                self._again = True
                return
            self._dispatching = True
            try:
                self._again = True
                while self._again and self._dispatch is not None:
                    self._again = False
                    self._dispatch()
            finally:
                self._dispatching = False
            if self._error is not None:
                error, self._error = self._error, None
                raise error

    @contextlib.contextmanager
    def _phase(self, dispatch):
        """Makes `dispatch` the way jobs are handed out while the block runs."""
        with self._lock:
            self._dispatch = dispatch
        try:
            yield
        finally:
            with self._lock:
                self._dispatch = None

    def _jobs(self, pairs, groups):
        """Trains each (source, seed) once and runs the trials.

        Sources come first: the driver takes them from the start of the list,
        a spawned worker that has started and holds no job one at a time from
        the end (a worker still importing keras takes none, so the driver never
        waits for a source queued behind a start-up). A trial is given out once
        its own source is trained, the others' meanwhile. Each spawned worker
        that has started holds two jobs (one running, one queued, so it never
        waits for the driver) and the driver runs one at a time between
        collecting theirs; each takes trials from its own conditions, and one
        that runs out takes the last seeds of the worker with the most left
        (all of them from a worker still starting).
        """
        spawned = len(self._workers)
        pending = list(pairs)  # Sources nobody has taken yet.
        driver_source = None  # The source the driver is training.
        queues = [[] for _ in range(spawned + 1)]  # The driver's is the last.
        for group in groups:  # Largest first, each to the least loaded worker.
            min(queues, key=len).extend(group)
        sources = {}  # future -> ((source, seed), worker index), until collected
        running = {}  # future -> (submission number, worker index), until collected
        numbers = itertools.count()

        def ready(spec):
            """Whether the trial's source, if it has one, is trained."""
            if spec.source is None:
                return True
            pair = (spec.source, spec.seed)
            return (pair not in pending and pair != driver_source
                    and not any(trained == pair and not future.done()
                                for future, (trained, _) in sources.items()))

        def spare(other):
            """How many of `other`'s queued trials another worker may take: all
            ready ones of a worker still starting, else all but the one it
            takes next."""
            count = sum(1 for spec in queues[other] if ready(spec))
            if other < spawned and not self._ready(other):
                return count
            return count - 1

        def take(index):
            """The first ready trial of worker `index`'s queue, else the last
            ready one of the worker with the most to spare."""
            spec = next((spec for spec in queues[index] if ready(spec)), None)
            if spec is None:
                donor = max(range(spawned + 1), key=spare)
                if spare(donor) < 1:
                    return None
                index = donor
                spec = next(spec for spec in reversed(queues[donor]) if ready(spec))
            queues[index].remove(spec)
            return spec

        def dispatch():
            for index in range(spawned):
                held = sum(1 for jobs in (running, sources)
                           for future, (_, worker) in jobs.items()
                           if worker == index and not future.done())
                while self._ready(index) and held < 2:
                    if pending and not held:
                        pair = pending.pop()
                        sources[self._submit(index, worker_source, *pair)] = (pair, index)
                    else:
                        spec = take(index)
                        if spec is None:
                            break
                        number = next(numbers)
                        running[self._submit(index, worker_trial, spec)] = (number, index)
                    held += 1

        def finished():
            """The records of the spawned workers' finished trials, in order."""
            with self._lock:
                trained = [future for future in sources if future.done()]
                for future in trained:
                    del sources[future]
                done = sorted((future for future in running if future.done()),
                              key=lambda future: running[future][0])
                for future in done:
                    del running[future]
            for future in done:
                yield future.result()
            for future in trained:  # After the records: finished trials are kept.
                future.result()  # A worker that could not train a source says why.

        with self._phase(dispatch):
            while True:
                spec = None
                with self._lock:  # Handing out, taking and the end: one state.
                    self._hand_out()
                    if pending:
                        driver_source = pending.pop(0)
                    else:
                        spec = take(spawned)
                    waiting = list(running) + list(sources)
                if driver_source is not None:
                    self._local.source(*driver_source)
                    with self._lock:
                        driver_source = None
                elif spec is not None:
                    yield self._local.trial(spec)
                elif waiting:
                    # Nothing the driver may run now: what is left waits for a
                    # source, or for a started worker that is running trials.
                    self._wait(waiting)
                else:
                    return
                yield from finished()

    def close(self):
        with self._lock:
            self._dispatch = None
        # Not waiting for the spawned processes to exit (a TensorFlow process
        # takes about a second): they end while the driver writes the results,
        # and Python waits for them before this process exits.
        for worker in self._workers:
            worker.shutdown(wait=False, cancel_futures=True)
        if self._local is not None:
            self._local.close()
        self._threads.close()


class WorkerStartError(RuntimeError):
    """A Ray worker could not import its backend or plan the experiment."""


class _RayWorker:
    """One Ray actor: a worker that keeps its plan, sources and compiled models.

    Start-up errors (e.g. the backend is not installed on its node, or a task
    file is missing there) are kept and raised by every call, so each trial
    fails with the reason, rather than the actor dying at creation with the
    reason buried in Ray's error.
    """

    def __init__(self, backend, experiment_config, cache_folder, run_one, unsafe_load):
        from keras_tl.backend import require

        self.start_error = None
        try:
            require(backend)
            start_worker(backend, experiment_config, cache_folder, 1, run_one, unsafe_load)
        except Exception as error:  # Reported with every trial (see the class docstring).
            reason = f"{type(error).__name__}: {error}".splitlines()[0]
            self.start_error = (
                f"the Ray worker on {socket.gethostname()} could not start: {reason}"
            )

    def source(self, name, seed):
        if self.start_error:
            raise WorkerStartError(self.start_error)
        return worker_source(name, seed)

    def trial(self, fields):
        """Runs the trial `TrialSpec(**fields)` (plain fields: unpickling a spec
        would import keras before the start error could be reported)."""
        if self.start_error:
            raise WorkerStartError(self.start_error)
        from keras_tl.experiment.spec import TrialSpec

        return worker_trial(TrialSpec(**fields))


def _user_error(error):
    """The `ConfigError` or `DataError` a worker raised, from a Ray error, or None.

    The driver raises these again, as the other executors do.
    """
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, (ConfigError, DataError)) else None


def _failure(error):
    """The one-line reason and the details of a trial whose Ray call raised `error`."""
    import ray

    if isinstance(error, ray.exceptions.RayActorError):
        reason = f"the Ray worker running this trial died {RAY_TRIAL_RETRIES + 1} times"
        return reason, str(error)
    cause = getattr(error, "cause", None) or error
    if isinstance(cause, WorkerStartError):
        return str(cause), None
    return f"{type(cause).__name__}: {cause}".splitlines()[0], str(error)


def _num_actors(workers, resources, gpus_per_trial):
    """How many actors to start: `workers`, checked against the cluster's room.

    More actors than the cluster holds would wait for resources forever.
    """
    resource, each = ("GPU", gpus_per_trial) if gpus_per_trial else ("CPU", 1)
    held = resources.get(resource, 0)
    room = int(held // each)
    if room < 1 or (workers or 0) > room:
        raise ConfigError(
            f"workers: the Ray cluster has room for {room} workers ({held:g} "
            f"{resource}s, {each:g} per worker), received workers={workers}, "
            f"gpus_per_trial={gpus_per_trial:g}. Use fewer workers, a smaller "
            f"gpus_per_trial, or a larger cluster."
        )
    return workers or room


class RayExecutor:
    """Runs trials on a Ray cluster, one actor per worker.

    Each actor keeps its plan, its source models and its `ModelPool` for the
    whole run, so compiled models are reused as in a local worker process. The
    source models are trained first, one job per (source, seed), and saved to
    `cache_folder`, which every node must see (a shared filesystem on a
    multi-node cluster). An actor whose process dies mid-trial is restarted and
    the trial runs again on it, up to `RAY_TRIAL_RETRIES` times; after that the
    trial is returned as failed. Each actor reserves one CPU (and
    `gpus_per_trial` GPUs) and runs its backend with one compute thread.

    If Ray is not initialised yet, this connects to `address` (None: start a
    local Ray instance, or join the cluster named by `RAY_ADDRESS`) and ships the
    `keras_tl` package to the workers through the job's `runtime_env`; the
    workers still need keras and the backend installed, and import
    `module:function` builders from their own Python path. An already
    initialised Ray (e.g. `ray.init(...)` in a notebook) is used as it is, and
    left running. Relative task and model files in the experiment are sent as
    absolute paths, so they resolve as for the driver wherever its folder is
    shared.

    Args:
        plan: Plan.
        cache_folder: str. The run folder's `cache/`, seen by every worker.
        workers: int or None. Number of actors (None: as many as the cluster's
            CPUs, or its GPUs divided by `gpus_per_trial`, allow).
        backend: str. The Keras backend the workers use.
        run_one: callable. A module-level function that runs one trial.
        unsafe_load: bool. Let the workers load `.keras` files that hold code.
        address: str or None. `"auto"` or `"ray://HOST:PORT"`.
        gpus_per_trial: float. GPUs each actor holds; fractions share a GPU.
    """

    def __init__(self, plan, cache_folder, workers, backend, run_one, unsafe_load=False,
                 address=None, gpus_per_trial=0):
        import ray

        from keras_tl.backend import thread_limits

        self.plan = plan
        self._actors = []
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            try:
                ray.init(address=address, runtime_env={"py_modules": [package]},
                         include_dashboard=False, log_to_driver=False,
                         logging_level=logging.WARNING)
            except ConnectionError as error:
                raise ConfigError(
                    f"address: cannot connect to a Ray cluster at {address!r} "
                    f"({str(error).splitlines()[0]}). Start one with `ray start "
                    f"--head`, or leave out the address to start a local one."
                ) from None
        try:
            workers = _num_actors(workers, ray.cluster_resources(), gpus_per_trial)
        except ConfigError:
            self.close()
            raise
        env = {"KERAS_BACKEND": backend, **thread_limits(1)}
        actor = ray.remote(_RayWorker).options(
            num_cpus=1, num_gpus=gpus_per_trial, max_restarts=-1,
            max_task_retries=RAY_TRIAL_RETRIES, runtime_env={"env_vars": env},
        )
        self._actors = [
            actor.remote(backend, absolute_paths(plan.experiment.to_dict(), os.getcwd()),
                         cache_folder, reference(run_one), unsafe_load)
            for _ in range(workers)
        ]

    def _dispatch(self, method, jobs):
        """Runs the actors' `method(*arguments)` for each `(job, arguments)` in
        `jobs`, one job per actor at a time.

        Yields `(job, result, error)` in the order the jobs finish; `error` is the
        exception `ray.get` raised (then `result` is None).
        """
        import ray

        waiting = list(reversed(jobs))
        running = {}

        def submit(actor):
            if waiting:
                job, arguments = waiting.pop()
                running[getattr(actor, method).remote(*arguments)] = (actor, job)

        for actor in self._actors:
            submit(actor)
        while running:
            (done,), _ = ray.wait(list(running), num_returns=1)
            actor, job = running.pop(done)
            result = error = None
            try:
                result = ray.get(done)
            except ray.exceptions.RayError as raised:
                error = raised
            submit(actor)
            yield job, result, error

    def run(self, specs):
        from keras_tl.experiment.spec import base_record

        specs = list(specs)
        # A source that fails to train here fails again, recorded, in its trials.
        sources = [(pair, pair) for pair in _needed_sources(specs)]
        for _, _, error in self._dispatch("source", sources):
            if _user_error(error):
                raise _user_error(error) from None
        trials = [(spec, (dataclasses.asdict(spec),)) for spec in specs]
        for spec, result, error in self._dispatch("trial", trials):
            if error is None:
                yield result
                continue
            if _user_error(error):
                raise _user_error(error) from None
            message, details = _failure(error)
            record = base_record(self.plan, spec)
            record.update(status="failed", error=message, wall_time=None)
            yield record, details

    def close(self):
        import ray

        for actor in self._actors:
            ray.kill(actor)
        if self._owns_ray:
            ray.shutdown()
