"""A transfer sweep through keras-tl against the same sweep as a hand-written Keras loop.

The protocol (issue 7), identical on both sides: per seed, train a `small_cnn`
source on `digits:0-4`; then, on 100 stratified training samples of `digits:5-9`
(relabelled 0-4), train `scratch` and `fine_tune` with the first k in {0, 1, 2, 3}
transferred trunk layers (`conv1`, `conv2`, `fc1`) frozen; record the test
accuracy of every (arm, seed). Same epochs, batch size, optimizer, learning rate
and seeds on both sides.

* `plain`: the loop a typical user writes with Keras alone (no keras_tl import):
  build and compile a new model for every trial, copy the trunk with
  `set_weights`, set `trainable`, compile with a fresh Adam, `fit`, `evaluate`.
  It rebuilds keras-tl's fixed digits splits and its nested stratified training
  subsets with NumPy and scikit-learn, so both sides see the same data.
* `keras-tl`: `keras_tl.evaluate(config, out=<temporary folder>, workers=N)` with
  `scores: []`, so neither side computes transferability scores.

Each side runs in its own fresh subprocess (`sys.executable`, `KERAS_BACKEND`
set) and prints one JSON line that this script parses. Printed: the wall time of
the work (measured inside the subprocess, after the imports) and of the whole
subprocess, their ratios (plain / keras-tl), per-arm mean test accuracy with its
standard error on each side, whether every keras-tl arm mean lies within two
combined standard errors of the plain loop's, the peak RSS of each side and the
load average before and after each side. With `--repeats N` the sides run N
times in turn, and the times and ratios are each side's medians (the
accuracies are the first run's; each side trains the same seeds every run).
Numbers, not a timed test.

Run from the repository root:

    python benchmarks/bench_sweep.py --backend jax
    python benchmarks/bench_sweep.py --backend jax --repeats 3
    python benchmarks/bench_sweep.py --backend torch --workers 2
"""

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# keras_tl from this checkout (the plain side never imports it).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULT_PREFIX = "BENCH_SWEEP_RESULT "
SIDES = ("plain", "keras-tl")
TRUNK = ("conv1", "conv2", "fc1")
FREEZE_DEPTHS = (0, 1, 2, 3)
# issue 19: minimum speed-up of keras-tl (one worker) over the plain loop.
TARGETS = {(1, "jax"): 5.0, (1, "tensorflow"): 4.0, (1, "torch"): 2.0}


def arm_names():
    return ["scratch"] + [f"fine_tune@{depth}" for depth in FREEZE_DEPTHS]


def peak_rss_mb():
    """Peak resident set size of this process (ru_maxrss), in MB."""
    to_mb = 1 / 1024 if sys.platform != "darwin" else 1 / 1024**2  # Linux: KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * to_mb


class ChildPeaks:
    """Polls the peak RSS (VmHWM) of this process's descendants (keras-tl workers).

    `RUSAGE_CHILDREN` would count the parent's pages at fork time, so the workers'
    own peaks are read from `/proc/<pid>/status` while they run (Linux only).
    """

    def __init__(self, interval=0.5):
        import threading

        self.peaks = {}
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self):
        if os.path.isdir("/proc"):
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _descendants(self):
        parents = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as file:
                        parents[int(entry)] = int(file.read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
        found, frontier = [], [os.getpid()]
        while frontier:
            parent = frontier.pop()
            children = [pid for pid, ppid in parents.items() if ppid == parent]
            found += children
            frontier += children
        return found

    def _poll(self):
        while True:
            for pid in self._descendants():
                try:
                    with open(f"/proc/{pid}/status") as file:
                        for line in file:
                            if line.startswith("VmHWM:"):
                                megabytes = int(line.split()[1]) / 1024
                                self.peaks[pid] = max(self.peaks.get(pid, 0), megabytes)
                except (OSError, ValueError):
                    continue
            if self._stop.wait(self._interval):
                return


# The plain side: Keras, NumPy and scikit-learn only.


def stratified_split(labels, fractions, seed):
    """keras-tl's fixed split: per class, a seeded permutation cut by the fractions."""
    import numpy as np

    rng = np.random.default_rng(seed)
    parts = [[] for _ in fractions]
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        bounds = np.round(np.cumsum(fractions)[:-1] * len(members)).astype(int)
        for part, chunk in zip(parts, np.split(members, bounds)):
            part.extend(chunk.tolist())
    return [np.sort(np.asarray(part, dtype=np.int64)) for part in parts]


def _stratified_subset(labels, count, seed):
    """keras-tl's training subset: the `count` lowest per-class ranks, seeded."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ranks = np.empty(len(labels))
    for value in np.unique(labels):
        members = np.flatnonzero(labels == value)
        ranks[rng.permutation(members)] = (np.arange(len(members)) + 0.5) / len(members)
    order = np.lexsort((rng.random(len(labels)), ranks))
    return np.sort(order[:count])


def _digits_tasks():
    """`digits:0-4` and `digits:5-9` (relabelled 0-4) on the fixed 60/20/20 split."""
    import numpy as np
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype("float32")[..., np.newaxis]
    labels = bunch.target.astype("int64")
    parts = stratified_split(labels, (0.6, 0.2, 0.2), 0)
    splits = dict(zip(("train", "val", "test"), parts))
    source, target = {}, {}
    for split, indices in splits.items():
        x, y = images[indices], labels[indices]
        source[split] = (x[y < 5], y[y < 5])
        target[split] = (x[y >= 5], y[y >= 5] - 5)
    return source, target


def _small_cnn(keras, num_outputs):
    inputs = keras.Input(shape=(8, 8, 1), name="inputs")
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu",
                            data_format="channels_last", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(2, data_format="channels_last", name="pool1")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu",
                            data_format="channels_last", name="conv2")(x)
    x = keras.layers.Flatten(data_format="channels_last", name="flatten")(x)
    x = keras.layers.Dense(64, activation="relu", name="fc1")(x)
    outputs = keras.layers.Dense(num_outputs, name="head")(x)
    return keras.Model(inputs, outputs, name="small_cnn")


def _compile(keras, model, learning_rate):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def run_plain(args):
    """The hand-written loop; returns per-arm test accuracies and timings."""
    import keras

    started = time.perf_counter()
    source_data, target_data = _digits_tasks()
    x_source, y_source = source_data["train"]
    x_test, y_test = target_data["test"]
    accuracies = {arm: [] for arm in arm_names()}
    source_seconds = 0.0
    for seed in range(args.seeds):
        source_started = time.perf_counter()
        keras.utils.set_random_seed(seed)
        source = _small_cnn(keras, 5)
        _compile(keras, source, args.learning_rate)
        source.fit(x_source, y_source, batch_size=args.batch_size, epochs=args.epochs,
                   shuffle=True, verbose=0)
        source_seconds += time.perf_counter() - source_started

        x_all, y_all = target_data["train"]
        keep = _stratified_subset(y_all, args.train_size, seed)
        x_train, y_train = x_all[keep], y_all[keep]
        for depth in [None, *FREEZE_DEPTHS]:  # None: scratch.
            keras.utils.set_random_seed(seed)
            model = _small_cnn(keras, 5)
            if depth is not None:
                for index, name in enumerate(TRUNK):
                    layer = model.get_layer(name)
                    layer.set_weights(source.get_layer(name).get_weights())
                    layer.trainable = index >= depth
            _compile(keras, model, args.learning_rate)
            model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
                      shuffle=True, verbose=0)
            _, accuracy = model.evaluate(x_test, y_test, verbose=0)
            arm = "scratch" if depth is None else f"fine_tune@{depth}"
            accuracies[arm].append(float(accuracy))
    work = time.perf_counter() - started
    return {
        "accuracies": accuracies,
        "work_seconds": work,
        "breakdown": {"sources": source_seconds, "target trials": work - source_seconds},
    }


# The keras-tl side.


def experiment_config(args):
    stage = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": "adam",
        "learning_rate": args.learning_rate,
    }
    return {
        "name": "bench_sweep",
        "model": {"builder": "small_cnn"},
        "sources": [{"task": "digits:0-4", **stage}],
        "target": {"task": "digits:5-9", "train_sizes": [args.train_size], **stage},
        "arms": ["scratch", "fine_tune"],
        "freeze_depths": list(FREEZE_DEPTHS),
        "seeds": args.seeds,
        "scores": [],
    }


def run_keras_tl(args):
    """The same protocol through `keras_tl.evaluate`; returns the same fields."""
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as folder:
        return _keras_tl_side(args, folder)


def _keras_tl_side(args, folder):
    from keras_tl.backend import keep_jax_compilations, limit_threads, threads_per_process

    # As the CLI sets up its process: threads shared with the workers, and on
    # jax the compilation cache, here in a fresh folder (a first use: nothing
    # from earlier runs; the workers read what the driver compiled).
    os.environ["KERAS_TL_CACHE_DIR"] = os.path.join(folder, "cache")
    if args.backend == "jax":
        keep_jax_compilations()
    if args.workers > 1:
        limit_threads(threads_per_process(args.workers))
    import keras  # noqa: F401  (imported before the clock starts, like the plain side)

    import keras_tl
    import keras_tl.experiment.run  # noqa: F401

    with ChildPeaks() as peaks:
        started = time.perf_counter()
        results = keras_tl.evaluate(
            experiment_config(args), out=os.path.join(folder, "run"), workers=args.workers
        )
        work = time.perf_counter() - started
    accuracies = {arm: [] for arm in arm_names()}
    failed = 0
    trial_seconds = 0.0
    for trial in sorted(results.trials, key=lambda trial: trial["seed"]):
        if trial["status"] != "ok":
            failed += 1
            continue
        arm = trial["arm"]
        if arm == "fine_tune":
            arm = f"fine_tune@{trial['freeze_depth']}"
        accuracies[arm].append(float(trial["test"]["accuracy"]))
        trial_seconds += trial["wall_time"]
    return {
        "accuracies": accuracies,
        "work_seconds": work,
        "worker_peak_rss_mb": sorted(peaks.peaks.values(), reverse=True),
        "failed_trials": failed,
        "breakdown": {
            "sum of trial wall_time": trial_seconds,
            "rest (plan, sources, store, results)": work - trial_seconds,
        },
    }


def run_child(args):
    load_before = os.getloadavg()[0]
    result = run_plain(args) if args.child == "plain" else run_keras_tl(args)
    import keras

    result.update(
        backend=keras.config.backend(),
        peak_rss_mb=peak_rss_mb(),
        load_before=load_before,
        load_after=os.getloadavg()[0],
    )
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# The parent: one subprocess per side, then the comparison.


def run_side(side, args):
    command = [
        sys.executable, os.path.abspath(__file__), "--child", side,
        "--backend", args.backend, "--seeds", str(args.seeds),
        "--epochs", str(args.epochs), "--train-size", str(args.train_size),
        "--workers", str(args.workers), "--batch-size", str(args.batch_size),
        "--learning-rate", repr(args.learning_rate),
    ]
    return run_subprocess(command, args, RESULT_PREFIX, f"the {side} side")


def run_subprocess(command, args, prefix, name):
    """Runs one child process with `KERAS_BACKEND` (and `--threads`) set; returns
    the JSON it printed after `prefix`, plus `process_seconds`, its wall time."""
    env = {**os.environ, "KERAS_BACKEND": args.backend}
    if args.threads:
        from keras_tl.backend import thread_limits

        env.update(thread_limits(args.threads))
    started = time.perf_counter()
    completed = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    lines = [line for line in completed.stdout.splitlines() if line.startswith(prefix)]
    if completed.returncode != 0 or not lines:
        sys.stderr.write(completed.stdout[-4000:] + completed.stderr[-8000:])
        raise SystemExit(f"{name} failed (exit status {completed.returncode})")
    result = json.loads(lines[-1][len(prefix):])
    result["process_seconds"] = wall
    if result["backend"] != args.backend:
        raise SystemExit(f"{name} ran on {result['backend']}, not {args.backend}")
    return result


def mean_and_standard_error(values):
    if not values:
        return float("nan"), float("nan")
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, float("nan")
    variance = sum((value - mean) ** 2 for value in values) / (len(values) - 1)
    return mean, math.sqrt(variance / len(values))


def report(args, results):
    print(f"bench_sweep: backend={args.backend} seeds={args.seeds} epochs={args.epochs} "
          f"train_size={args.train_size} batch_size={args.batch_size} "
          f"learning_rate={args.learning_rate} workers={args.workers} (keras-tl side) "
          f"threads={args.threads or 'default'} cores={os.cpu_count()}")
    print()
    print(f"{'side':<10} {'work s':>8} {'process s':>10} {'peak RSS MB':>12} "
          f"{'load before/after':>18}")
    for side, result in results.items():
        print(f"{side:<10} {result['work_seconds']:>8.1f} {result['process_seconds']:>10.1f} "
              f"{result['peak_rss_mb']:>12.0f} "
              f"{result['load_before']:>13.2f}/{result['load_after']:.2f}")
    for side, result in results.items():
        if len(result["work_runs"]) > 1:
            runs = ", ".join(f"{seconds:.1f}" for seconds in result["work_runs"])
            print(f"  {side}: work s of each run {runs}; the table shows the medians")
    for side, result in results.items():
        parts = ", ".join(
            f"{name} {seconds:.1f} s" for name, seconds in result["breakdown"].items()
        )
        print(f"  {side}: {parts}")
        workers = [round(peak) for peak in result.get("worker_peak_rss_mb", []) if peak > 50]
        if workers:
            print(f"  {side}: peak RSS of its worker processes, MB: {workers}")
        if result.get("failed_trials"):
            print(f"  {side}: {result['failed_trials']} failed trial(s)")
    if len(results) == 2:
        plain, ours = results["plain"], results["keras-tl"]
        work_ratio = plain["work_seconds"] / ours["work_seconds"]
        process_ratio = plain["process_seconds"] / ours["process_seconds"]
        target = TARGETS.get((args.workers, args.backend))
        verdict = "" if target is None else (
            f" (target >= {target:.0f}x: {'met' if work_ratio >= target else 'NOT met'})"
        )
        print(f"speed-up plain / keras-tl: work {work_ratio:.2f}x{verdict}, "
              f"process {process_ratio:.2f}x")
    print()
    header = "".join(f" {side + ' mean ± se (n)':>26}" for side in results)
    compared = f" {'|diff| / combined se':>22}" if len(results) == 2 else ""
    print(f"{'arm':<13}{header}{compared}")
    all_within = True
    for arm in arm_names():
        stats = {side: mean_and_standard_error(result["accuracies"][arm])
                 for side, result in results.items()}
        counts = {side: len(result["accuracies"][arm]) for side, result in results.items()}
        cells = "".join(
            f" {f'{mean:.3f} ± {se:.3f} ({counts[side]})':>26}"
            for side, (mean, se) in stats.items()
        )
        comparison = ""
        if len(results) == 2:
            (mean_a, se_a), (mean_b, se_b) = stats["plain"], stats["keras-tl"]
            combined = math.sqrt(se_a**2 + se_b**2)
            if math.isnan(combined):
                all_within = False
                comparison = f" {'n/a (n < 2)':>17}"
            else:
                distance = abs(mean_a - mean_b) / combined if combined > 0 else (
                    0.0 if mean_a == mean_b else float("inf"))
                within = distance <= 2.0
                all_within &= within
                comparison = f" {distance:>14.2f} {'ok' if within else 'OUTSIDE'}"
        print(f"{arm:<13}{cells}{comparison:>22}" if comparison else f"{arm:<13}{cells}")
    if len(results) == 2:
        print(f"every keras-tl arm mean within 2 combined standard errors of the plain "
              f"loop's: {'yes' if all_within else 'NO'}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND") or "jax",
                        choices=("jax", "torch", "tensorflow"))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30,
                        help="epochs of the source and of every target trial")
    parser.add_argument("--train-size", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1,
                        help="workers of the keras-tl side (its process and N-1 spawned)")
    parser.add_argument("--sides", default=",".join(SIDES),
                        help="comma-separated, from: plain, keras-tl")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="source and target batch size (keras-tl's default)")
    parser.add_argument("--learning-rate", type=float, default=1e-3,
                        help="source and target Adam learning rate (keras-tl's default)")
    parser.add_argument("--threads", type=int, default=0,
                        help="cap compute threads of both sides (0: backend defaults); "
                             "torch on a busy 2-core machine is far steadier with 1")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run the sides N times, one after the other in turn; the "
                             "table and the ratios use each side's median times (run "
                             "to run, one side varies by up to 25%% on a shared machine)")
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.sides = [side.strip() for side in args.sides.split(",") if side.strip()]
    unknown = [side for side in args.sides if side not in SIDES]
    if unknown or not args.sides:
        parser.error(f"--sides: expected names from {', '.join(SIDES)}, received {unknown}")
    if args.repeats < 1:
        parser.error(f"--repeats: expected a positive integer, received {args.repeats}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        run_child(args)
        return
    runs = [{side: run_side(side, args) for side in args.sides} for _ in range(args.repeats)]
    report(args, medians(runs))


def medians(runs):
    """One result per side: the first run's, with the median work and process
    times of all runs (and every run's work time, for the report)."""
    results = {}
    for side in runs[0]:
        result = dict(runs[0][side])
        for key in ("work_seconds", "process_seconds"):
            result[key] = statistics.median(run[side][key] for run in runs)
        result["work_runs"] = [run[side]["work_seconds"] for run in runs]
        results[side] = result
    return results


if __name__ == "__main__":
    main()
