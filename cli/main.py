"""The `keras-tl` command line.

Only click and the standard library are imported at module level: the backend must
be chosen (`--backend` sets `KERAS_BACKEND`) before anything imports keras. Every
command maps `KerasTLError` to one line on stderr and exit code 2.
"""

import datetime
import functools
import math
import os
import shlex
import signal
import sys

import click

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def _fail(message):
    click.echo(f"Error: {message}", err=True)
    sys.exit(EXIT_USER_ERROR)


def _one_line(error, limit=300):
    return " ".join(str(error).split())[:limit]


def user_errors(command):
    """Turns keras-tl's user errors into one line on stderr and exit 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from keras_tl.errors import KerasTLError

        try:
            return command(*args, **kwargs)
        except KerasTLError as error:
            _fail(str(error))

    return wrapper


def _select_backend(name):
    """Chooses the backend before keras is imported (on jax, with compiled
    programs kept for later runs); returns its name."""
    from keras_tl import backend

    if name is None:
        name = backend.active()
        backend.check_name(name)
    backend.require(name)
    if name == "jax":
        backend.keep_jax_compilations()
    # TensorFlow's C++ start-up chatter would bury a one-line error message.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return name


# More worker processes or Ray actors than this is a typo (and beyond what a process
# pool can count).
MAX_WORKERS = 4096

# Kernel file systems: a run folder can never be written there.
VIRTUAL_FILE_SYSTEMS = ("/proc", "/sys", "/dev")


def _check_out(out):
    """Refuses an --out folder that cannot be created or written, before anything
    is written: empty, inside /proc, /sys or /dev, under a regular file, or in a
    folder without write permission."""
    from keras_tl.errors import ConfigError

    if not out.strip() or "\0" in out:
        raise ConfigError(
            f"--out: expected a folder path, received {out!r}. Give a folder such as "
            f"runs/my-run, or leave --out out for runs/<name>-<time>."
        )
    full = os.path.realpath(out)
    for root in VIRTUAL_FILE_SYSTEMS:
        if full == root or full.startswith(root + os.sep):
            raise ConfigError(
                f"--out {out!r} is inside {root}, a virtual file system of the kernel "
                f"where no run folder can be written. Use a folder on disk, e.g. "
                f"runs/my-run."
            )
    existing = out
    while not os.path.lexists(existing):
        parent = os.path.dirname(os.path.normpath(existing))
        if parent in ("", existing):
            existing = "." if not os.path.isabs(out) else os.sep
            break
        existing = parent
    if not os.path.isdir(existing):
        raise ConfigError(
            f"--out {out!r}: {existing!r} is a file, not a folder, so the run folder "
            f"cannot be created there. Use a path whose parents are folders, e.g. "
            f"runs/my-run."
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"--out {out!r}: the folder {existing!r} is not writable (permissions or a "
            f"read-only file system). Use a folder you can write to, e.g. runs/my-run."
        )


def _check_int(value, option, low, high, expected):
    from keras_tl.errors import ConfigError

    if not low <= value <= high:
        raise ConfigError(f"{option}: expected {expected}, received {value}")


def _import_keras_quietly():
    from keras_tl.backend import import_keras_quietly, without_tensorflow

    import_keras_quietly()
    without_tensorflow()  # This process is keras-tl's own.


def _share_cores(executor, workers, address, gpus_per_trial):
    """With worker processes, caps this process's threads as the spawned ones'
    (before keras is imported): this process trains beside them."""
    from keras_tl.backend import limit_threads, threads_per_process
    from keras_tl.experiment.executors import resolve_executor

    if resolve_executor(executor, workers, address, gpus_per_trial) == "process":
        limit_threads(threads_per_process(workers or os.cpu_count() or 1))


backend_option = click.option(
    "--backend",
    type=str,
    default=None,
    help="Keras backend: torch, tensorflow or jax (default: $KERAS_BACKEND).",
)


class OneLineErrors(click.Group):
    """A command group whose usage errors are one `Error:` line and exit 2."""

    def main(self, *args, **kwargs):
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.UsageError as error:
            _fail(error.format_message())
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except click.exceptions.Exit as done:
            sys.exit(done.exit_code)
        except click.ClickException as error:
            _fail(error.format_message())


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="keras-tl", prog_name="keras-tl")
def cli():
    """Evidence for transfer learning in Keras 3: does it help, by how much, where?"""


@cli.command()
@user_errors
def backends():
    """List the Keras backends, their installed versions and the active one."""
    from keras_tl.backend import describe

    for row in describe():
        marker = "*" if row["active"] else " "
        version = row["version"] or f"not installed (pip install 'keras-tl[{row['name']}]')"
        click.echo(f"{marker} {row['name']:<11} {version}")


@cli.command()
@user_errors
def tasks():
    """List the built-in tasks with their sizes."""
    from keras_tl.data.registry import builtin_tasks
    from keras_tl.report.text import format_table

    rows = [
        [t["name"], t["kind"], t["num_outputs"], t["sizes"]["train"], t["sizes"]["val"],
         t["sizes"]["test"], t["description"]]
        for t in builtin_tasks()
    ]
    header = ["task", "kind", "outputs", "train", "val", "test", "description"]
    click.echo(format_table(header, rows))
    click.echo(
        "\nYour own data: npz:PATH (x_train, y_train, x_test, y_test; optional x_val, "
        "y_val, kind), csv:PATH?label=COLUMN[&kind=...], images:DIR[?size=HxW&mode=rgb|"
        "grayscale] (one sub-folder per class), keras:mnist, keras:fashion_mnist, "
        "keras:cifar10 (downloaded on first use)."
    )


@cli.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@backend_option
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder (default: runs/<name>-<timestamp>). Re-run to resume.")
@click.option("--seeds", type=int, default=None, help="Number of seeds (overrides the config).")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty --out folder.")
@click.option("--retry-failed", is_flag=True, help="Run failed trials again when resuming.")
@click.option("--executor", type=click.Choice(["serial", "process", "ray"]), default=None,
              help="Where trials run: in this process, in worker processes, or on a Ray "
                   "cluster (default: serial, or process with --workers > 1).")
@click.option("--workers", type=int, default=None,
              help="Workers: this process and N-1 spawned ones, each with cores/N "
                   "compute threads, or Ray actors with --executor ray (default: 1 "
                   "for serial, else one per CPU, or per --gpus-per-trial GPUs on "
                   "Ray).")
@click.option("--address", default=None,
              help="With --executor ray: the cluster, auto or ray://HOST:PORT (default: "
                   "$RAY_ADDRESS, else a local Ray).")
@click.option("--gpus-per-trial", type=float, default=0,
              help="With --executor ray: GPUs each Ray actor holds (fractions share one).")
@click.option("--quiet", is_flag=True, help="Print only the final summary.")
@click.option("--verbose", is_flag=True, help="Also show Keras' per-epoch progress bars.")
@click.option("--unsafe-load", is_flag=True,
              help="Allow .keras files that hold code (Lambda layers). Only for files you trust.")
@user_errors
def evaluate(config, backend, out, seeds, overwrite, retry_failed, executor, workers, address,
             gpus_per_trial, quiet, verbose, unsafe_load):
    """Run an experiment (default: digits -> digits:parity) and summarise it."""
    _select_backend(backend)
    from keras_tl.config.schema import load_experiment

    experiment = load_experiment(config, {"seeds": seeds} if seeds is not None else None)
    if out is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = os.path.join("runs", f"{experiment.name}-{stamp}")
    _check_out(out)
    if workers is not None and workers > MAX_WORKERS:
        _check_int(workers, "workers", 1, MAX_WORKERS,
                   f"a positive integer of at most {MAX_WORKERS}")
    if not math.isfinite(gpus_per_trial):
        from keras_tl.errors import ConfigError

        raise ConfigError(
            f"gpus_per_trial: expected a finite number >= 0, received {gpus_per_trial}"
        )
    _share_cores(executor, workers, address, gpus_per_trial)
    _import_keras_quietly()
    from keras_tl.experiment.run import evaluate as run
    from keras_tl.report.text import format_summary
    from keras_tl_cli.progress import progress_for

    # Keras' own bars (--verbose) would be torn by a redrawn status line.
    progress = None if quiet else progress_for(sys.stdout, live=not verbose)
    hooks = {}
    if progress:
        hooks = {"on_trial": progress.trial_finished,
                 "on_trial_start": progress.trial_started, "on_epoch": progress.epoch}
    command = "keras-tl " + " ".join(shlex.quote(arg) for arg in sys.argv[1:])
    # SIGTERM stops like Ctrl-C: the running trial is abandoned, finished ones stay.
    # The handler also remembers the signal: a KeyboardInterrupt raised inside a
    # garbage-collection callback (jax's) is printed and swallowed by Python.
    interrupts = []

    def interrupt(signum, frame):
        interrupts.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    resume = (f"Finished trials are saved in {out}. Resume with the same command and "
              f"--out {shlex.quote(out)}.")
    try:
        try:
            results = run(experiment, out=out, overwrite=overwrite,
                          retry_failed=retry_failed, command=command, workers=workers,
                          verbose=verbose, executor=executor, address=address,
                          gpus_per_trial=gpus_per_trial, unsafe_load=unsafe_load, **hooks)
        finally:
            if progress:
                progress.close()
    except KeyboardInterrupt:
        click.echo(f"\nInterrupted. {resume}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    from keras_tl.report import write_reports

    try:
        if interrupts:
            raise KeyboardInterrupt
        paths = write_reports(results, out)
        if interrupts:
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        click.echo(
            f"\nInterrupted while writing the reports. Every trial and results.json are "
            f"saved in {out}; `keras-tl report {shlex.quote(out)}` writes the reports.",
            err=True,
        )
        sys.exit(EXIT_INTERRUPTED)
    click.echo("")
    click.echo(format_summary(results))
    click.echo(f"\nResults: {os.path.join(out, 'results.json')}")
    click.echo(f"Report: {paths['html']}")


@cli.command()
@click.option("--model", "model", required=True,
              help="Source model: a .keras file, or a builder (small_cnn, mlp, module:function) to train on --source-task.")
@click.option("--source-task", required=True, help="The task the source model is trained on.")
@click.option("--task", "target_task", required=True, help="The target task to score for.")
@click.option("--layer", default=None, help="Feature layer (default: the input of the head).")
@click.option("--scores", default=None, help="Comma-separated scores (default: logme,leep,nce,h_score; "
                   "logme only for a regression target).")
@click.option("--epochs", type=int, default=10, help="Source training epochs for a builder.")
@click.option("--seed", type=int, default=0, help="Seed of a builder's source training.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--unsafe-load", is_flag=True,
              help="Allow .keras files that hold code (Lambda layers). Only for files you trust.")
@backend_option
@user_errors
def score(model, source_task, target_task, layer, scores, epochs, seed, as_json, unsafe_load,
          backend):
    """Score a source model for a target task, without fine-tuning."""
    _select_backend(backend)
    from keras_tl.config.checks import MAX_INT
    from keras_tl.config.schema import MAX_SEED

    _check_int(epochs, "--epochs", 1, MAX_INT, f"a positive integer of at most {MAX_INT}")
    _check_int(seed, "--seed", 0, MAX_SEED, f"an integer from 0 to {MAX_SEED} (2**31 - 1)")
    _import_keras_quietly()
    import json

    from keras_tl.measure.scoring import score_source
    from keras_tl.report.text import format_table

    names = [name.strip() for name in scores.split(",")] if scores else None
    result = score_source(model, source_task, target_task, layer=layer, names=names,
                          epochs=epochs, seed=seed, unsafe_load=unsafe_load)
    result = {"model": model, "source_task": source_task, "task": target_task, **result}
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{model} ({source_task}) -> {target_task}: features at {result['layer']}, "
               f"{result['num_samples']} target train samples (higher is better)")
    rows = [[name, "-" if value is None else f"{value:.4f}"] for name, value in result["scores"].items()]
    click.echo(format_table(["score", "value"], rows))


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--format", "formats", default="html,md,json,csv", show_default=True,
              help="Comma-separated: html, md, json, csv.")
@click.option("--open", "open_report", is_flag=True, help="Open report.html in a browser.")
@user_errors
def report(run_dir, formats, open_report):
    """Rebuild a run's results and reports from its trial store (no training)."""
    from keras_tl.report import write_reports
    from keras_tl.report.text import format_summary
    from keras_tl.results.summary import rebuild

    formats = [name.strip() for name in formats.split(",") if name.strip()]
    results = rebuild(run_dir)
    paths = write_reports(results, run_dir, formats)
    click.echo(format_summary(results))
    click.echo("")
    for name, path in paths.items():
        click.echo(f"{name}: {path}")
    if open_report and "html" in paths:
        import webbrowser

        webbrowser.open("file://" + os.path.abspath(paths["html"]))


@cli.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@user_errors
def compare(run_dirs):
    """Put several runs side by side (e.g. one experiment on each backend)."""
    from keras_tl.errors import KerasTLError, StoreError
    from keras_tl.report import compare_runs

    malformed = (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError)
    try:
        table = compare_runs(list(run_dirs))
    except KerasTLError:
        raise
    except malformed as error:
        # Which run is it? Each one alone must compare with itself.
        for folder in run_dirs:
            try:
                compare_runs([folder])
            except KerasTLError:
                raise
            except malformed as single:
                raise StoreError(
                    f"{os.path.join(folder, 'results.json')} cannot be read as keras-tl "
                    f"results ({type(single).__name__}: {_one_line(single)}). Rebuild "
                    f"it from the trial store with `keras-tl report {folder}`."
                ) from None
        raise StoreError(
            f"compare: the runs {list(run_dirs)} cannot be put side by side "
            f"({type(error).__name__}: {_one_line(error)}). Compare runs of the same "
            f"experiment, each rebuilt with `keras-tl report FOLDER`."
        ) from None
    click.echo(table)


def main():
    cli(prog_name="keras-tl")


if __name__ == "__main__":
    main()
