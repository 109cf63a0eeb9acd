"""One 40-trial sweep with the serial executor, `--workers 2` and Ray with 2 CPUs.

The sweep: per seed (8 seeds), train a `small_cnn` source on `digits:0-4`, then
on 100 training samples of `digits:5-9` train `scratch` and `fine_tune` with the
first k in {0, 1, 2, 3} transferred layers frozen: 8 x 5 = 40 trials and 8
source models, with `scores: []`. Each executor runs the same sweep in its own
fresh subprocess (`sys.executable`, `KERAS_BACKEND` set), into its own run
folder, and prints one JSON line that this script parses.

* `serial`: `keras_tl.evaluate(config, executor="serial")`.
* `process`: `executor="process", workers=2` (spawned worker processes).
* `ray`: `executor="ray"` on a local Ray instance started with `--ray-cpus`
  CPUs (one actor per CPU), or, with `--address`, on that cluster (one actor per
  CPU it has). The Ray start-up is timed apart from the sweep.

Printed: the wall time of each sweep (measured inside its subprocess, after the
imports; for Ray it includes starting the actors), of each whole subprocess,
the speed-up of each executor over the serial one, and whether every executor's
trials have the serial run's test accuracies (to 1e-6). Numbers, not a timed
test.

Run from the repository root:

    python benchmarks/bench_scale.py --backend torch --threads 1
    python benchmarks/bench_scale.py --backend jax --executors ray --address auto
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench_sweep import run_subprocess

RESULT_PREFIX = "BENCH_SCALE_RESULT "
EXECUTORS = ("serial", "process", "ray")
FREEZE_DEPTHS = (0, 1, 2, 3)
ROOT = Path(__file__).resolve().parents[1]


def experiment_config(args):
    stage = {"epochs": args.epochs, "batch_size": 32, "optimizer": "adam",
             "learning_rate": 1e-3}
    return {
        "name": "bench_scale",
        "model": {"builder": "small_cnn"},
        "sources": [{"task": "digits:0-4", **stage}],
        "target": {"task": "digits:5-9", "train_sizes": [args.train_size], **stage},
        "arms": ["scratch", "fine_tune"],
        "freeze_depths": list(FREEZE_DEPTHS),
        "seeds": args.seeds,
        "scores": [],
    }


def run_sweep(args):
    """Runs the sweep with one executor (in the child); prints timings and accuracies."""
    sys.path.insert(0, str(ROOT))
    import keras  # noqa: F401  (imported before the clock starts)

    import keras_tl
    import keras_tl.experiment.run  # noqa: F401

    options = {"executor": args.child}
    ray_start = None
    if args.child == "process":
        options["workers"] = 2
    elif args.child == "ray" and args.address:
        options["address"] = args.address
    elif args.child == "ray":
        import ray

        started = time.perf_counter()
        # Local workers import this checkout's keras_tl, as the driver does.
        ray.init(num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
        ray_start = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as folder:
        started = time.perf_counter()
        results = keras_tl.evaluate(
            experiment_config(args), out=os.path.join(folder, "run"), **options
        )
        work = time.perf_counter() - started
    accuracies = {
        trial["key"]: trial["test"]["accuracy"] if trial["status"] == "ok" else None
        for trial in results.trials
    }
    print(RESULT_PREFIX + json.dumps({
        "backend": keras.config.backend(), "work_seconds": work,
        "ray_start_seconds": ray_start, "accuracies": accuracies,
    }), flush=True)


def run_executor(executor, args):
    command = [
        sys.executable, os.path.abspath(__file__), "--child", executor,
        "--backend", args.backend, "--seeds", str(args.seeds),
        "--epochs", str(args.epochs), "--train-size", str(args.train_size),
        "--ray-cpus", str(args.ray_cpus),
    ]
    if args.address:
        command += ["--address", args.address]
    return run_subprocess(command, args, RESULT_PREFIX, f"the {executor} run")


def report(args, results):
    ray = f"--address {args.address}" if args.address else f"local, {args.ray_cpus} CPUs"
    print(f"bench_scale: backend={args.backend} trials={args.seeds * 5} "
          f"sources={args.seeds} epochs={args.epochs} train_size={args.train_size} "
          f"threads={args.threads or 'default'} cores={os.cpu_count()} "
          f"ray={ray}")
    print()
    serial = results.get("serial")
    print(f"{'executor':<10} {'sweep s':>8} {'process s':>10} {'speed-up':>9} "
          f"{'failed':>7} {'same accuracies as serial':>26}")
    for executor, result in results.items():
        accuracies = result["accuracies"]
        failed = sum(value is None for value in accuracies.values())
        speed_up = same = "-"
        if serial and executor != "serial":
            speed_up = f"{serial['work_seconds'] / result['work_seconds']:.2f}x"
            reference = serial["accuracies"]
            same = "yes" if accuracies.keys() == reference.keys() and all(
                value is not None and reference[key] is not None
                and abs(value - reference[key]) <= 1e-6
                for key, value in accuracies.items()
            ) else "NO"
        print(f"{executor:<10} {result['work_seconds']:>8.1f} "
              f"{result['process_seconds']:>10.1f} {speed_up:>9} {failed:>7} {same:>26}")
        if result["ray_start_seconds"] is not None:
            print(f"  {executor}: starting the local Ray instance took "
                  f"{result['ray_start_seconds']:.1f} s (not in the sweep time)")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND") or "jax",
                        choices=("jax", "torch", "tensorflow"))
    parser.add_argument("--seeds", type=int, default=8, help="5 trials per seed")
    parser.add_argument("--epochs", type=int, default=10,
                        help="epochs of the source and of every target trial")
    parser.add_argument("--train-size", type=int, default=100)
    parser.add_argument("--executors", default=",".join(EXECUTORS),
                        help="comma-separated, from: serial, process, ray")
    parser.add_argument("--address", default=None,
                        help="run the ray side on this cluster (auto, ray://HOST:PORT)")
    parser.add_argument("--ray-cpus", type=int, default=2,
                        help="CPUs of the local Ray instance (without --address)")
    parser.add_argument("--threads", type=int, default=0,
                        help="cap compute threads of every run (0: backend defaults)")
    parser.add_argument("--child", choices=EXECUTORS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.executors = [name.strip() for name in args.executors.split(",") if name.strip()]
    unknown = [name for name in args.executors if name not in EXECUTORS]
    if unknown or not args.executors:
        parser.error(f"--executors: expected names from {', '.join(EXECUTORS)}, "
                     f"received {unknown}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        run_sweep(args)
        return
    results = {executor: run_executor(executor, args) for executor in args.executors}
    report(args, results)


if __name__ == "__main__":
    main()
