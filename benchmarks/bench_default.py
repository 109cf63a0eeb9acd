"""The default evaluation (`keras_tl.evaluate(None)`) on two checkouts of keras-tl, side by side.

Runs the default experiment once with the code of `--before` (a checkout of an
earlier commit, e.g. made with `git worktree add`) and once with this
repository's code, each in a fresh subprocess on the same backend, one after the
other, and prints the wall time of each (measured inside the subprocess, after
`import keras`), their ratio, and what each run concluded (seeds run, the best
condition's gain and verdict), so a speed-up that changed the answer shows.

    git worktree add /tmp/keras-tl-before 8775218
    python benchmarks/bench_default.py --before /tmp/keras-tl-before --backend jax
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

PREFIX = "BENCH_DEFAULT_RESULT "
HERE = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, tempfile, time
import keras
started = time.perf_counter()
import keras_tl
with tempfile.TemporaryDirectory() as folder:
    results = keras_tl.evaluate(None, out=folder + "/run")
seconds = time.perf_counter() - started
best = results.summary["best"] or {}
print(%r + json.dumps({
    "seconds": seconds,
    "seeds": results.summary["seeds"].get("run"),
    "gain": best.get("mean"),
    "verdict": best.get("verdict"),
    "keras_tl": keras_tl.__file__,
}), flush=True)
""" % PREFIX


def run(code_root, backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(code_root)}
    completed = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=code_root,
                               capture_output=True, text=True)
    lines = [line for line in completed.stdout.splitlines() if line.startswith(PREFIX)]
    if completed.returncode != 0 or not lines:
        sys.stderr.write(completed.stdout[-3000:] + completed.stderr[-6000:])
        raise SystemExit(f"the run with {code_root} failed ({completed.returncode})")
    return json.loads(lines[-1][len(PREFIX):])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, type=Path,
                        help="a checkout of the code to compare against")
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND") or "jax",
                        choices=("jax", "torch", "tensorflow"))
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    results = {"before": run(args.before.resolve(), args.backend),
               "now": run(HERE, args.backend)}
    print(f"bench_default: backend={args.backend} cores={os.cpu_count()} "
          f"load before={load:.2f} after={os.getloadavg()[0]:.2f}")
    for name, result in results.items():
        print(f"{name:<7} {result['seconds']:>7.1f} s  seeds {result['seeds']}  "
              f"gain {result['gain']}  verdict {result['verdict']}  ({result['keras_tl']})")
    ratio = results["before"]["seconds"] / results["now"]["seconds"]
    print(f"speed-up before / now: {ratio:.2f}x (target >= 2x: "
          f"{'met' if ratio >= 2 else 'NOT met'})")


if __name__ == "__main__":
    main()
