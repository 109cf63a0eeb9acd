"""A CIFAR-10-sized GPU study: keras-tl against a hand-written `Model.fit`.

The data are generated, nothing is downloaded: 32x32x3 images of 10 classes (a
smooth random template per class plus noise, so the models learn something),
45,000 train / 5,000 val / 10,000 test. Two networks at random init
(`weights: null`): MobileNetV3Small and VGG16, each through keras-tl
(`keras_tl.evaluate` on a task made with `keras_tl.register_task`; arms
`scratch`, `linear_probe`, `fine_tune`; 1 epoch; 2 seeds; the source is the
same application at random init, `pretrained: true`) and through a hand-written
loop on the same device (the same network, `compile` + `Model.fit` for one
epoch: all layers trainable for fine-tuning, the backbone frozen for the linear
probe). Each backend (torch, jax) runs in its own subprocess.

Measured, per backend, network, arm and seed:

* images per second: train images x epochs over the training time. For keras-tl
  that is from the trial's start (build, copy of the source, frozen-prefix
  features for a linear probe, compile or a pooled model) to the end of its last
  epoch; `trial_images_per_s` divides by the whole trial instead (val and test
  evaluation and layer CKA too). For `Model.fit`, the `fit` call (its first
  call traces / compiles the step).
* peak GPU memory: `torch.cuda.max_memory_allocated` (reset before each trial)
  on torch; `peak_bytes_in_use` of `jax.devices()[0].memory_stats()` on jax
  (since the start of the process; jax runs with XLA_PYTHON_CLIENT_PREALLOCATE
  =false so that its allocator holds only what is used).
* GPU memory in use after each trial and after the run (after `gc.collect()`):
  whether memory is released between trials.

Writes `bench_gpu.md` (a Markdown table), `bench_gpu.json` (every number) and
each backend's `<backend>.json` and `<backend>.log` into `--out`, nothing else.
A backend's subprocess that runs past its share of `--budget-s` (what is left,
over the backends still to run) is stopped, and what it measured until then
(saved after each training) is still reported.

Run from the repository root:

    python benchmarks/bench_gpu.py --smoke --backends jax --out /tmp/bench_gpu
    python benchmarks/bench_gpu.py --out runs/bench_gpu            # on a GPU

On the device machine (Python 3.12, torch and jax preinstalled, no keras):
`--wheels DIR` first installs the wheels in DIR (keras and what it needs
that the machine lacks: namex, optree) into a temporary folder with
`pip install --no-index --no-deps`, and puts that folder on the subprocesses'
PYTHONPATH. docs/performance.md has the exact command.

`--smoke` checks the script on a CPU in well under a minute per backend: 192 /
64 / 64 images and keras-tl's `small_cnn` in place of the applications (its
source a `small_cnn` saved to a `.keras` file); `--smoke --models
MobileNetV3Small` runs an application on a CPU too, in minutes.
"""

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("MobileNetV3Small", "VGG16")
SMOKE_MODELS = ("small_cnn",)
BUILDERS = ("small_cnn", "mlp")
ARMS = ("scratch", "linear_probe", "fine_tune")
NUM_CLASSES = 10
FULL_SIZES = {"train": 45_000, "val": 5_000, "test": 10_000}
SMOKE_SIZES = {"train": 192, "val": 64, "test": 64}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the table and JSON")
    parser.add_argument("--backends", default="torch,jax",
                        help="comma-separated Keras backends (default: torch,jax)")
    parser.add_argument("--models", default=None,
                        help="comma-separated keras.applications names (or small_cnn, "
                             "mlp); default: MobileNetV3Small,VGG16 (small_cnn with "
                             "--smoke)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="default: 128 (32 with --smoke)")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--precision", default="float32",
                        choices=("float32", "mixed_bfloat16", "mixed_float16"))
    parser.add_argument("--smoke", action="store_true",
                        help="a few hundred images: checks the script on a CPU")
    parser.add_argument("--budget-s", type=float, default=450.0,
                        help="seconds for all backends together; each gets its share")
    parser.add_argument("--wheels", default=None,
                        help="install the wheels in this folder first (offline)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.batch_size is None:
        args.batch_size = 32 if args.smoke else 128
    if args.models is None:
        args.models = ",".join(SMOKE_MODELS if args.smoke else MODELS)
    return args


# --- the parent: installs wheels, runs one subprocess per backend, writes the table.


def install_wheels(folder):
    """`pip install --no-index --no-deps` of every wheel in `folder` into a
    temporary folder; returns that path (for PYTHONPATH)."""
    folder = Path(folder).resolve()
    wheels = sorted(str(path) for path in folder.glob("*.whl"))
    if not wheels:
        raise SystemExit(f"--wheels {folder}: no .whl files there")
    site = Path(tempfile.gettempdir()) / "keras-tl-bench-site"
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
               "--no-compile", "--no-cache-dir", "--upgrade", "--target", str(site),
               *wheels]
    print("installing:", " ".join(Path(w).name for w in wheels), flush=True)
    subprocess.run(command, check=True)
    return str(site)


def run_backend(backend, args, out, site, timeout, scratch):
    """Runs the child for `backend`; returns what it wrote (partial if stopped)."""
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONUNBUFFERED": "1",
           "KERAS_HOME": str(Path(scratch) / "keras-home"), "BENCH_GPU_SCRATCH": scratch}
    paths = [str(ROOT)] + ([site] if site else [])
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if backend == "jax":
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    command = [
        sys.executable, str(Path(__file__).resolve()), "--child", backend,
        "--out", str(out), "--models", args.models, "--seeds", str(args.seeds),
        "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
        "--learning-rate", str(args.learning_rate), "--precision", args.precision,
        *(["--smoke"] if args.smoke else []),
    ]
    started = time.perf_counter()
    status = "ok"
    with open(out / f"{backend}.log", "w") as log:
        try:
            completed = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                       timeout=timeout)
            if completed.returncode != 0:
                status = f"failed (exit status {completed.returncode}; see {backend}.log)"
        except subprocess.TimeoutExpired:
            status = f"stopped after {timeout:.0f} s (its share of --budget-s)"
    path = out / f"{backend}.json"
    result = json.loads(path.read_text()) if path.is_file() else {"backend": backend, "rows": []}
    result["status"] = status
    result["process_seconds"] = time.perf_counter() - started
    return result


def _mib(value):
    return "-" if value is None else f"{value / 2**20:,.0f}"


def _rate(value):
    return "-" if value is None else f"{value:,.0f}"


def markdown(results, args):
    sizes = SMOKE_SIZES if args.smoke else FULL_SIZES
    lines = [
        "# GPU study: keras-tl against Model.fit",
        "",
        f"Generated 32x32x3 images, {sizes['train']:,} train / {sizes['val']:,} val / "
        f"{sizes['test']:,} test, 10 classes; {args.epochs} epoch(s), batch "
        f"{args.batch_size}, {args.seeds} seed(s), precision {args.precision}"
        f"{' (smoke run)' if args.smoke else ''}.",
        "",
        "| backend | device | model | arm | path | seed | images/s | trial images/s "
        "| peak MiB | in use after MiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for row in result["rows"]:
            lines.append(
                f"| {result['backend']} | {result.get('device', '-')} | {row['model']} | "
                f"{row['arm']} | {row['path']} | {row['seed']} | "
                f"{_rate(row['images_per_s'])} | {_rate(row.get('trial_images_per_s'))} | "
                f"{_mib(row.get('peak_bytes'))} | {_mib(row.get('bytes_after'))} |"
            )
    lines += ["", "| backend | status | memory released between trials | after the run MiB "
              "| seconds |", "|---|---|---|---|---|"]
    for result in results:
        lines.append(
            f"| {result['backend']} | {result['status']} | "
            f"{result.get('memory_released', '-')} | "
            f"{_mib(result.get('bytes_after_run'))} | {result['process_seconds']:.0f} |"
        )
    lines += ["", "Ratios (mean images/s over seeds; keras-tl / Model.fit):", ""]
    for result in results:
        for model, ratios in result.get("ratios", {}).items():
            text = ", ".join(f"{arm} {value:.2f}x" for arm, value in ratios.items()
                             if value is not None)
            lines.append(f"* {result['backend']} {model}: {text or '-'}")
    return "\n".join(lines) + "\n"


def main_parent(args):
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    site = install_wheels(args.wheels) if args.wheels else None
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    results = []
    scratch = tempfile.mkdtemp(prefix="bench-gpu-")  # Nothing but the table goes to --out.
    started = time.perf_counter()
    for index, backend in enumerate(backends):
        # What a backend leaves of its share goes to the ones after it.
        left = args.budget_s - (time.perf_counter() - started)
        share = max(left / (len(backends) - index), 1.0)
        print(f"== {backend} (up to {share:.0f} s)", flush=True)
        results.append(run_backend(backend, args, out, site, share, scratch))
        print(f"   {results[-1]['status']}, {results[-1]['process_seconds']:.0f} s",
              flush=True)
    table = markdown(results, args)
    (out / "bench_gpu.md").write_text(table)
    (out / "bench_gpu.json").write_text(json.dumps(
        {"arguments": {k: v for k, v in vars(args).items() if k != "child"},
         "results": results}, indent=2))
    print(table)


# --- the child: one backend, in its own process.


def make_data(sizes, seed=0):
    """Images of 10 classes: a smooth random template per class, plus noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    coarse = rng.normal(size=(NUM_CLASSES, 4, 4, 3)).astype("float32")
    templates = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)  # 32x32x3
    splits = {}
    for split, count in sizes.items():
        labels = np.arange(count) % NUM_CLASSES
        rng.shuffle(labels)
        images = np.empty((count, 32, 32, 3), dtype="float32")
        for start in range(0, count, 4096):
            rows = labels[start:start + 4096]
            noise = rng.normal(scale=1.0, size=(len(rows), 32, 32, 3)).astype("float32")
            images[start:start + 4096] = 127.5 + 40.0 * (templates[rows] + noise)
        splits[split] = (np.clip(images, 0, 255), labels.astype("int64"))
    return splits


class Memory:
    """GPU memory of this process's backend (None on a CPU)."""

    def __init__(self, backend):
        self.backend = backend
        self.device = "cpu"
        if backend == "torch":
            import torch

            self.torch = torch
            if torch.cuda.is_available():
                self.device = torch.cuda.get_device_name(0)
        elif backend == "jax":
            import jax

            self.jax_device = jax.devices()[0]
            if self.jax_device.platform != "cpu":
                self.device = getattr(self.jax_device, "device_kind", self.jax_device.platform)

    @property
    def gpu(self):
        return self.device != "cpu"

    def reset_peak(self):
        if self.gpu and self.backend == "torch":
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()

    def _jax_stats(self):
        return self.jax_device.memory_stats() or {}

    def peak(self):
        if not self.gpu:
            return None
        if self.backend == "torch":
            self.torch.cuda.synchronize()
            return int(self.torch.cuda.max_memory_allocated())
        return self._jax_stats().get("peak_bytes_in_use")

    def in_use(self):
        """Bytes allocated now, after a garbage collection."""
        if not self.gpu:
            return None
        gc.collect()
        if self.backend == "torch":
            self.torch.cuda.synchronize()
            return int(self.torch.cuda.memory_allocated())
        return self._jax_stats().get("bytes_in_use")


def model_config(model_name):
    """`model:` of a network: a keras-tl builder (`small_cnn`, `mlp`: the smoke
    run's cheap stand-in) or a keras.applications name at random init."""
    if model_name in BUILDERS:
        return {"builder": model_name}
    return {"application": model_name, "weights": None, "image_shape": [32, 32, 3],
            "pooling": "avg"}


def source_model_config(model_name):
    """The source: the application at random init (`pretrained: true` builds it
    as is); a builder's network is saved to a `.keras` file once, as a stand-in."""
    if model_name not in BUILDERS:
        return model_config(model_name)
    from keras_tl.networks.network import Network

    path = Path(os.environ.get("BENCH_GPU_SCRATCH") or tempfile.mkdtemp()) / (
        f"source-{model_name}-{os.getpid()}.keras")
    Network(model_name).build((32, 32, 3), NUM_CLASSES, seed=1234).save(path)
    return {"file": str(path)}


def experiment_config(model_name, args, source_model):
    return {
        "name": f"bench_gpu_{model_name}",
        "model": model_config(model_name),
        "source": {"name": f"{model_name} (random init)", "model": source_model,
                   "pretrained": True},
        "target": {"task": "bench_cifar", "train_sizes": [1.0], "epochs": args.epochs,
                   "batch_size": args.batch_size, "optimizer": "adam",
                   "learning_rate": args.learning_rate},
        "arms": list(ARMS),
        "freeze_depths": [0],
        "seeds": args.seeds,
        "scores": [],
        **({"precision": args.precision} if args.precision != "float32" else {}),
    }


def model_fit_rows(model_name, args, data, memory, emit):
    """The hand-written reference: the same network, compile + Model.fit; calls
    `emit(row)` after each training."""
    import keras

    from keras_tl.networks.network import Network
    from keras_tl.training.precision import precision_scope

    x, y = data["train"]
    network = Network.from_config(model_config(model_name))
    for arm in ("linear_probe", "fine_tune"):
        for seed in range(args.seeds):
            memory.reset_peak()
            with precision_scope(args.precision):
                model = network.build((32, 32, 3), NUM_CLASSES, seed)
                if arm == "linear_probe":
                    for layer in model.layers:
                        layer.trainable = layer.name == "head"
                model.compile(
                    optimizer=keras.optimizers.Adam(args.learning_rate),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                )
                started = time.perf_counter()
                model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0,
                          shuffle=True)
                seconds = time.perf_counter() - started
            peak = memory.peak()
            del model
            keras.backend.clear_session()
            emit({
                "model": model_name, "arm": arm, "path": "Model.fit", "seed": seed,
                "seconds": seconds, "images_per_s": len(y) * args.epochs / seconds,
                "peak_bytes": peak, "bytes_after": memory.in_use(),
            })


def keras_tl_rows(model_name, args, memory, emit):
    """`keras_tl.evaluate` of the three arms, timed from each trial's start to the
    end of its last epoch; calls `emit(row)` after each trial."""
    import keras_tl

    marks = {}

    def on_trial_start(done, total, spec):
        memory.reset_peak()
        marks["start"] = time.perf_counter()
        marks["epoch_end"] = None

    def on_epoch(epoch, epochs):
        marks["epoch_end"] = time.perf_counter()

    def on_trial(done, total, record):
        end = marks.get("epoch_end") or time.perf_counter()
        images = (record.get("train_size") or 0) * (record.get("epochs") or 0)
        seconds = end - marks["start"]
        wall = record.get("wall_time")
        row = {
            "model": model_name, "arm": record["arm"], "path": "keras-tl",
            "seed": record["seed"], "status": record["status"], "error": record.get("error"),
            "seconds": seconds, "images_per_s": images / seconds if images else None,
            "trial_images_per_s": images / wall if images and wall else None,
            "test_accuracy": (record.get("test") or {}).get("accuracy"),
            "precision": record.get("precision"),
            "peak_bytes": memory.peak(), "bytes_after": memory.in_use(),
        }
        print(f"  keras-tl {model_name} {record['arm']} seed {record['seed']}: "
              f"{record['status']} {row['images_per_s'] or 0:,.0f} images/s", flush=True)
        emit(row)

    config = experiment_config(model_name, args, source_model_config(model_name))
    keras_tl.evaluate(config, executor="serial", workers=1,
                      on_trial=on_trial, on_trial_start=on_trial_start, on_epoch=on_epoch)


def _mean(values):
    values = [value for value in values if value]
    return sum(values) / len(values) if values else None


def summarize(result):
    """Ratios keras-tl / Model.fit and whether memory came back between trials."""
    ratios = {}
    for model in {row["model"] for row in result["rows"]}:
        ratios[model] = {}
        for arm in ("linear_probe", "fine_tune"):
            ours = _mean([r["images_per_s"] for r in result["rows"]
                          if r["model"] == model and r["arm"] == arm and r["path"] == "keras-tl"])
            theirs = _mean([r["images_per_s"] for r in result["rows"]
                            if r["model"] == model and r["arm"] == arm
                            and r["path"] == "Model.fit"])
            ratios[model][arm] = ours / theirs if ours and theirs else None
    result["ratios"] = ratios
    after = [row["bytes_after"] for row in result["rows"] if row["path"] == "keras-tl"
             and row.get("bytes_after") is not None]
    if after:
        # Released: what stays after the last trial is within 25% (+ 64 MiB) of
        # what stayed after the first one, instead of growing with every trial.
        result["memory_released"] = after[-1] <= 1.25 * after[0] + 64 * 2**20
    else:
        result["memory_released"] = "n/a (no GPU)"


def main_child(args):
    backend = args.child
    os.environ["KERAS_BACKEND"] = backend
    import keras

    import keras_tl

    out = Path(args.out).resolve()
    memory = Memory(backend)
    result = {"backend": keras.config.backend(), "device": memory.device,
              "keras": keras.__version__, "precision": args.precision, "rows": []}
    path = out / f"{backend}.json"

    def save():
        summarize(result)
        path.write_text(json.dumps(result, indent=2))

    def emit(row):  # Saved at once: a backend stopped at its budget keeps its rows.
        result["rows"].append(row)
        save()

    started = time.perf_counter()
    data = make_data(SMOKE_SIZES if args.smoke else FULL_SIZES)
    result["data_seconds"] = time.perf_counter() - started
    keras_tl.register_task("bench_cifar", train=data["train"], val=data["val"],
                           test=data["test"])
    print(f"{backend} on {memory.device}: data in {result['data_seconds']:.1f} s", flush=True)
    save()
    for model_name in [name.strip() for name in args.models.split(",") if name.strip()]:
        model_fit_rows(model_name, args, data, memory, emit)
        keras_tl_rows(model_name, args, memory, emit)
    gc.collect()
    keras.backend.clear_session()
    result["bytes_after_run"] = memory.in_use()
    save()


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.child:
        main_child(arguments)
    else:
        main_parent(arguments)
