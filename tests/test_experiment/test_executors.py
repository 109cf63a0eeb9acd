"""The process executor: the serial numbers, each condition's seeds in one worker."""

import concurrent.futures
import importlib
import os
import pathlib

import pytest

import keras_tl
from keras_tl.experiment.executors import ProcessExecutor, condition_groups
from keras_tl.experiment.spec import TrialSpec


def test_condition_groups_hold_every_seed_of_a_condition_largest_first():
    specs = [
        TrialSpec("fine_tune", 1, 20, seed, "digits") for seed in (0, 1, 2)
    ] + [
        TrialSpec("scratch", 0, 20, seed) for seed in (0, 1)
    ] + [TrialSpec("fine_tune", 2, 20, 0, "digits"), TrialSpec("fine_tune", 1, 40, 0, "digits")]

    groups = condition_groups(specs)

    assert [[(spec.arm, spec.freeze_depth, spec.train_size, spec.seed) for spec in group]
            for group in groups] == [
        [("fine_tune", 1, 20, 0), ("fine_tune", 1, 20, 1), ("fine_tune", 1, 20, 2)],
        [("scratch", 0, 20, 0), ("scratch", 0, 20, 1)],
        [("fine_tune", 2, 20, 0)],
        [("fine_tune", 1, 40, 0)],
    ]


class _SpawnedWorker:
    """A spawned worker's pool stand-in: a job runs until `finish` is called."""

    def __init__(self, ran):
        self.ran, self.jobs = ran, []

    def submit(self, function, *job):
        self.ran.append(job[0].seed if len(job) == 1 else job)
        future = concurrent.futures.Future()
        self.jobs.append((future, job[0]))
        return future

    def finish(self):
        jobs, self.jobs = self.jobs, []
        for future, job in jobs:
            future.set_result((job, self))


class _Driver:
    """The driver's own worker, stood in for; `on_job` runs at the start of
    each of its jobs, while the spawned workers may be handed theirs."""

    def __init__(self, ran, on_job):
        self.ran, self.on_job = ran, on_job

    def trial(self, spec):
        self.on_job()
        self.ran.append(spec.seed)
        return spec, self

    def source(self, name, seed):
        self.on_job()
        self.ran.append((name, seed))


def _executor(spawned, ready=True, on_driver_job=lambda started: None,
              driver_ends_their_jobs=True):
    """A ProcessExecutor over stand-ins; `ran[i]` lists what worker i was given
    (the driver last). A spawned worker's jobs end while the driver runs its
    next job (unless `driver_ends_their_jobs=False`), or when the driver waits
    for them. With `ready=False` the spawned workers are still starting until
    `on_driver_job(started)` completes one of their `started` futures."""
    executor = ProcessExecutor.__new__(ProcessExecutor)
    ran = [[] for _ in range(spawned + 1)]
    executor._workers = [_SpawnedWorker(seeds) for seeds in ran[:-1]]
    started = [concurrent.futures.Future() for _ in range(spawned)]
    executor._watch_starts(started)
    if ready:
        for future in started:
            future.set_result(None)

    def finish_spawned_jobs(*_):
        for worker in executor._workers:
            worker.finish()

    def on_job():
        on_driver_job(started)
        if driver_ends_their_jobs:
            finish_spawned_jobs()

    executor._local = _Driver(ran[-1], on_job)
    executor._wait = finish_spawned_jobs
    return executor, ran


def _scheduled(groups, spawned=1, **options):
    executor, ran = _executor(spawned, **options)
    records = list(executor._jobs([], groups))
    return ran, [spec.seed for spec, _ in records]


def _group(arm, seeds):
    return [TrialSpec(arm, 0, 20, seed) for seed in seeds]


def test_each_worker_runs_whole_conditions_of_its_own():
    # Largest first, each to the worker with fewer trials: the spawned worker
    # [a a a, d], the driver [b b, c].
    ran, finished = _scheduled([_group("a", [0, 1, 2]), _group("b", [3, 4]),
                                _group("c", [5]), _group("d", [6])])
    assert ran == [[0, 1, 2, 6], [3, 4, 5]]
    assert sorted(finished) == [0, 1, 2, 3, 4, 5, 6]


def test_an_idle_worker_takes_the_last_seeds_of_the_busiest():
    # All five go to the spawned worker, which takes two at once; the driver,
    # with none of its own, takes the last seed while those run.
    ran, finished = _scheduled([_group("a", [0, 1, 2, 3, 4])])
    assert ran == [[0, 1, 2, 3], [4]]
    assert sorted(finished) == [0, 1, 2, 3, 4]


def test_the_driver_takes_every_trial_while_the_spawned_worker_starts():
    ran, finished = _scheduled([_group("a", [0, 1, 2]), _group("b", [3, 4])], ready=False)
    assert ran == [[], [3, 4, 2, 1, 0]]
    assert sorted(finished) == [0, 1, 2, 3, 4]


def test_a_worker_that_has_started_takes_its_own_conditions_again():
    # It starts while the driver runs its first trial: then it takes the rest
    # of its own condition, two at a time.
    def start_after_first_job(started):
        if not started[0].done():
            started[0].set_result(None)

    ran, finished = _scheduled([_group("a", [0, 1, 2]), _group("b", [3, 4])],
                               ready=False, on_driver_job=start_after_first_job)
    assert ran == [[0, 1, 2], [3, 4]]
    assert sorted(finished) == [0, 1, 2, 3, 4]


def test_a_worker_is_given_its_next_trial_while_the_driver_runs_one():
    # The spawned worker's first two end during the driver's first trial: it
    # is given the next two then, not when the driver's trial has ended.
    executor, ran = _executor(1)
    run_trial = executor._local.trial
    given_when_the_driver_finished = []

    def trial(spec):
        record = run_trial(spec)
        given_when_the_driver_finished.append(list(ran[0]))
        return record

    executor._local.trial = trial
    finished = [spec.seed for spec, _ in executor._jobs([], 
        [_group("a", [0, 1, 2, 3]), _group("b", [4, 5])])]

    assert given_when_the_driver_finished[0] == [0, 1, 2, 3]
    assert ran == [[0, 1, 2, 3], [4, 5]]
    assert sorted(finished) == [0, 1, 2, 3, 4, 5]


def test_sources_go_to_the_driver_while_the_spawned_worker_starts():
    pairs = [("digits", seed) for seed in range(4)]
    executor, ran = _executor(1, ready=False)
    list(executor._jobs(pairs, []))
    assert ran == [[], pairs]


def test_sources_are_shared_between_started_workers():
    pairs = [("digits", seed) for seed in range(4)]
    executor, ran = _executor(1)
    list(executor._jobs(pairs, []))
    # The spawned worker takes from the end, one at a time, the driver from
    # the start: every source once.
    assert ran == [[("digits", 3), ("digits", 2)], [("digits", 0), ("digits", 1)]]


def test_a_worker_that_starts_during_a_driver_source_is_given_one_at_once():
    pairs = [("digits", seed) for seed in range(4)]
    given_during_the_first = []

    def start_during_the_first(started):
        if not started[0].done():
            started[0].set_result(None)
            given_during_the_first.extend(ran[0])

    executor, ran = _executor(1, ready=False, on_driver_job=start_during_the_first)
    list(executor._jobs(pairs, []))

    assert given_during_the_first == [("digits", 3)]
    assert ran == [[("digits", 3), ("digits", 2)], [("digits", 0), ("digits", 1)]]


def test_trials_wait_for_their_own_source_only():
    # The spawned worker trains source seed 1 and, holding two jobs, is given
    # a scratch trial too (none of its own is ready). The driver trains seed 0
    # and runs the other scratch trial, then waits; seed 1's trial is given
    # out only once its source is trained.
    executor, ran = _executor(1, driver_ends_their_jobs=False)
    end_spawned_jobs = executor._wait
    given_when_the_driver_waited = []

    def wait(futures):
        given_when_the_driver_waited.append([list(jobs) for jobs in ran])
        end_spawned_jobs(futures)

    executor._wait = wait
    fine_tune = [TrialSpec("fine_tune", 0, 20, seed, "digits") for seed in (0, 1)]

    records = list(executor._jobs([("digits", 0), ("digits", 1)],
                                  [fine_tune, _group("scratch", [2, 3])]))

    assert given_when_the_driver_waited[0] == [[("digits", 1), 3], [("digits", 0), 2]]
    assert ran == [[("digits", 1), 3, 0, 1], [("digits", 0), 2]]
    assert sorted(spec.seed for spec, _ in records) == [0, 1, 2, 3]


def test_a_worker_with_no_source_left_is_given_a_trial_while_the_driver_trains_one():
    # The spawned worker trains seed 1 and ends during the driver's seed 0:
    # no source is left to take, so it is given the trial of the source it
    # trained at once, not once the driver's source is trained.
    executor, ran = _executor(1)
    fine_tune = [TrialSpec("fine_tune", 0, 20, seed, "digits") for seed in (0, 1)]
    given_when_the_driver_trained_seed_0 = []
    driver_source = executor._local.source

    def source(name, seed):
        driver_source(name, seed)
        given_when_the_driver_trained_seed_0.extend(ran[0])

    executor._local.source = source
    records = list(executor._jobs([("digits", 0), ("digits", 1)], [fine_tune]))

    assert given_when_the_driver_trained_seed_0 == [("digits", 1), 1]
    assert ran == [[("digits", 1), 1, 0], [("digits", 0)]]  # Its condition, both seeds.
    assert sorted(spec.seed for spec, _ in records) == [0, 1]


def test_a_source_collected_before_its_callback_ran_still_frees_its_trials():
    # The driver may see a spawned worker's source done before the pool's
    # thread has run the future's callbacks; here they never run.
    executor, ran = _executor(1, driver_ends_their_jobs=False)
    executor._on_event = lambda _future: None
    fine_tune = [TrialSpec("fine_tune", 0, 20, seed, "digits") for seed in (0, 1)]

    records = list(executor._jobs([("digits", 0), ("digits", 1)], [fine_tune]))

    assert ran == [[("digits", 1), 0, 1], [("digits", 0)]]
    assert sorted(spec.seed for spec, _ in records) == [0, 1]


def test_a_spawned_worker_that_could_not_train_a_source_stops_the_run():
    executor, ran = _executor(1, driver_ends_their_jobs=False)
    worker = executor._workers[0]

    def fail(*_):
        for future, _ in worker.jobs:
            future.set_exception(RuntimeError("the worker process died"))
        worker.jobs.clear()

    executor._wait = fail
    fine_tune = [TrialSpec("fine_tune", 0, 20, seed, "digits") for seed in (0, 1)]
    with pytest.raises(RuntimeError, match="the worker process died"):
        list(executor._jobs([("digits", 0), ("digits", 1)], [fine_tune]))


@pytest.mark.slow
def test_two_workers_give_the_serial_numbers(
    tiny_experiment, tmp_path, monkeypatch
):
    # The workers import the runner by name; spawned processes get this sys.path.
    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).parent))
    # The driver's first trial waits until the spawned worker has started.
    monkeypatch.setenv("PID_RUNNER_BARRIER", str(tmp_path))
    monkeypatch.setenv("PID_RUNNER_DRIVER", str(os.getpid()))
    run_trial_recording_pid = importlib.import_module("pid_runner").run_trial_recording_pid
    config = tiny_experiment("process", seeds=3)
    serial = keras_tl.evaluate(config, out=str(tmp_path / "serial"))
    parallel = keras_tl.evaluate(
        config, out=str(tmp_path / "process"), workers=2,
        trial_runner=run_trial_recording_pid,
    )

    expected = {trial["key"]: trial for trial in serial.trials}
    assert sorted(expected) == sorted(trial["key"] for trial in parallel.trials)
    for trial in parallel.trials:
        assert trial["status"] == "ok"
        # Worker processes run one thread each: sums may round differently.
        assert trial["test"]["loss"] == pytest.approx(
            expected[trial["key"]]["test"]["loss"], rel=1e-3)
    # The driver is one of the two workers.
    pids = {trial["worker_pid"] for trial in parallel.trials}
    assert len(pids) == 2 and os.getpid() in pids
