"""The default `keras-tl evaluate` on two checkouts of keras-tl, side by side.

Runs the CLI's default evaluation (`keras-tl evaluate --out DIR`, the README's
quickstart) once with the code of `--before` (a checkout of an earlier commit,
e.g. made with `git worktree add`) and once with this repository's code, each
in a fresh subprocess on the same backend, one after the other, and prints the
wall time of each command as a user sees it (Python start, imports, the run,
the reports), their ratio, and what each run concluded (seeds run, the best
condition's gain and verdict from its results.json), so a speed-up that changed
the answer shows. This repository's code then runs a second time: on jax the
CLI keeps compiled programs for later runs (`keras_tl.backend.keep_jax_compilations`),
so the first run shows a first use and the second every later one. Both sides
use one fresh keras-tl cache folder (`KERAS_TL_CACHE_DIR`), removed afterwards.
`--workers N` runs this repository's code with `--workers N` (the earlier code
serially, its default).

    git worktree add /tmp/keras-tl-before 8775218
    python benchmarks/bench_default.py --before /tmp/keras-tl-before --backend jax
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

# The CLI of the checkout on PYTHONPATH (installed, its package is keras_tl_cli).
CHILD = """
import importlib, sys
sys.modules["keras_tl_cli"] = importlib.import_module("cli")
from keras_tl_cli.main import main
sys.argv = ["keras-tl", "evaluate", "--quiet", "--out", *sys.argv[1:]]
main()
"""


def run(code_root, backend, cache, options=()):
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(code_root),
           "KERAS_TL_CACHE_DIR": cache}
    env = {name: value for name, value in env.items() if not name.startswith("JAX_")}
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "run")
        started = time.perf_counter()
        completed = subprocess.run([sys.executable, "-c", CHILD, out, *options], env=env,
                                   cwd=code_root, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if completed.returncode != 0:
            sys.stderr.write(completed.stdout[-3000:] + completed.stderr[-6000:])
            raise SystemExit(f"the run with {code_root} failed ({completed.returncode})")
        with open(os.path.join(out, "results.json")) as file:
            summary = json.load(file)["summary"]
    best = summary["best"] or {}
    return {"seconds": seconds, "seeds": summary["seeds"]["run"],
            "gain": best.get("mean"), "verdict": best.get("verdict")}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, type=Path,
                        help="a checkout of the code to compare against")
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND") or "jax",
                        choices=("jax", "torch", "tensorflow"))
    parser.add_argument("--workers", type=int, default=1,
                        help="run this repository's code with --workers N")
    args = parser.parse_args(argv)
    options = ("--workers", str(args.workers)) if args.workers > 1 else ()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as cache:
        results = {"before": run(args.before.resolve(), args.backend, cache),
                   "now": run(HERE, args.backend, cache, options),
                   "again": run(HERE, args.backend, cache, options)}
    print(f"bench_default: backend={args.backend} cores={os.cpu_count()} "
          f"workers (now)={args.workers} load before={load:.2f} "
          f"after={os.getloadavg()[0]:.2f}")
    for name, result in results.items():
        print(f"{name:<7} {result['seconds']:>7.1f} s  seeds {result['seeds']}  "
              f"gain {result['gain']:+.4f}  verdict {result['verdict']}")
    for name in ("now", "again"):
        ratio = results["before"]["seconds"] / results[name]["seconds"]
        print(f"speed-up before / {name}: {ratio:.2f}x (target >= 2x: "
              f"{'met' if ratio >= 2 else 'NOT met'})")


if __name__ == "__main__":
    main()
