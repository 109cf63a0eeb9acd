"""Each user mistake: one `Error:` line on stderr, exit 2, no traceback, nothing written.

Each case sets up the mistake in a temporary folder the way a user would make it and
runs the CLI. Training is disabled for the whole module, so every case must fail while
planning (fast), before the first model is fitted. The whole temporary folder is
snapshot before and after: a refused command writes and changes nothing in it.

`CASES` are the cases written one by one; `GENERATED` puts every numeric setting
of an experiment through each kind of wrong value (a string, a bool, null, a list,
NaN, infinity, a negative number, ...).
"""

import json
import math
import os
import random
import stat
import sys
import textwrap
import types

import keras
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from keras_tl_cli.main import cli

VALID_EXPERIMENT = {
    "name": "tiny",
    "model": {"builder": "mlp"},
    "source": {"task": "digits", "epochs": 1},
    "target": {"task": "digits:parity", "train_sizes": [20], "epochs": 1},
    "arms": ["scratch", "fine_tune"],
    "seeds": 2,
}


class TrainingStarted(BaseException):
    """Raised if a bad-input case gets as far as training (not an `Exception`, so
    neither the evaluator nor click can swallow it)."""


def _no_training(*args, **kwargs):
    raise TrainingStarted("a bad-input case reached training")


@pytest.fixture(autouse=True)
def _forbid_training(monkeypatch, tmp_path):
    monkeypatch.setattr("keras_tl.experiment.run.run_trial", _no_training)
    monkeypatch.setattr("keras_tl.experiment.sources.fit", _no_training)
    monkeypatch.setattr("keras_tl.experiment.trial.train_target", _no_training)
    monkeypatch.setattr("keras_tl.training.fit.fit", _no_training)
    monkeypatch.chdir(tmp_path)
    # Builders written by a case (user_nets_*.py) import from this folder.
    monkeypatch.syspath_prepend(str(tmp_path))


def experiment(**changes):
    """The valid experiment with top-level keys replaced (None removes a key)."""
    config = {key: value for key, value in VALID_EXPERIMENT.items()}
    for key, value in changes.items():
        if value is None:
            config.pop(key)
        else:
            config[key] = value
    return config


def target(**changes):
    return {**VALID_EXPERIMENT["target"], **changes}


def write_yaml(config):
    with open("experiment.yaml", "w") as file:
        yaml.safe_dump(config, file)
    return "experiment.yaml"


def evaluate_config(config, *options):
    return ["evaluate", write_yaml(config), "--out", "run", *options]


def write_npz(name="data.npz", **arrays):
    rng = np.random.default_rng(0)
    data = {
        "x_train": rng.random((40, 4), dtype=np.float32),
        "y_train": np.arange(40) % 2,
        "x_test": rng.random((10, 4), dtype=np.float32),
        "y_test": np.arange(10) % 2,
    }
    data.update(arrays)
    np.savez(name, **{key: value for key, value in data.items() if value is not None})
    return f"npz:{name}"


def npz_experiment(task):
    return experiment(target=target(task=task, train_sizes=[10]))


def write_bytes(path, size=2048):
    with open(path, "wb") as file:
        file.write(random.Random(0).randbytes(size))
    return path


# Each case: (setup, expected[, patches]). setup() makes the mistake in the current
# folder and returns the CLI arguments; expected is the text (or a tuple of texts) the
# error line must contain; patches are (attribute path, value) pairs applied while the
# CLI runs.


def unknown_backend():
    return evaluate_config(experiment(), "--backend", "nope")


def backend_not_installed():
    return evaluate_config(experiment(), "--backend", keras.config.backend())


def unknown_task():
    return evaluate_config(experiment(target=target(task="digits:primes")))


def npz_file_missing():
    return evaluate_config(npz_experiment("npz:missing.npz"))


def images_size_too_large():
    from PIL import Image

    for label in ("a", "b"):
        os.makedirs(f"images/{label}")
        Image.new("RGB", (8, 8)).save(f"images/{label}/0.png")
    return evaluate_config(npz_experiment("images:images?size=100000x100000"))


def npz_unreadable():
    write_bytes("data.npz")
    return evaluate_config(npz_experiment("npz:data.npz"))


def npz_missing_key():
    return evaluate_config(npz_experiment(write_npz(y_test=None)))


def npz_labels_not_integers():
    labels = np.linspace(0, 1, 40).astype("float32")
    return evaluate_config(npz_experiment(write_npz(y_train=labels)))


def npz_empty_split():
    empty = write_npz(
        x_test=np.zeros((0, 4), "float32"), y_test=np.zeros((0,), "int64")
    )
    return evaluate_config(npz_experiment(empty))


def unknown_builder():
    return evaluate_config(experiment(model={"builder": "resnet_tiny"}))


def builder_not_importable():
    return evaluate_config(experiment(model={"builder": "no_such_package.nets:cnn"}))


def model_file_missing():
    return evaluate_config(experiment(model={"file": "missing.keras"}))


def model_file_is_a_folder():
    os.makedirs("model.keras")
    return evaluate_config(experiment(model={"file": "model.keras"}))


def model_file_is_a_pipe():
    os.mkfifo("pipe.keras")
    return evaluate_config(experiment(model={"file": "pipe.keras"}))


def model_file_not_a_keras_archive():
    write_bytes("model.keras")
    return evaluate_config(experiment(model={"file": "model.keras"}))


def zero_seeds():
    return evaluate_config(experiment(), "--seeds", "0")


def executor_ray_without_ray():
    return evaluate_config(experiment(), "--executor", "ray")


def address_without_ray_executor():
    return evaluate_config(experiment(), "--address", "auto")


def serial_executor_with_workers():
    return evaluate_config(experiment(), "--executor", "serial", "--workers", "2")


def unknown_distribution():
    return evaluate_config(experiment(distribution="model_parallel"))


def out_folder_not_empty():
    os.mkdir("run")
    with open(os.path.join("run", "notes.txt"), "w") as file:
        file.write("my notes\n")
    return evaluate_config(experiment())


def out_is_a_file():
    with open("run", "w") as file:
        file.write("not a folder\n")
    return evaluate_config(experiment())


def config_is_a_folder():
    os.mkdir("experiment.yaml")
    return ["evaluate", "experiment.yaml", "--out", "run"]


def seeds_not_a_number():
    return evaluate_config(experiment(), "--seeds", "three")


def config_file_missing():
    return ["evaluate", "missing.yaml", "--out", "run"]


def invalid_yaml():
    with open("experiment.yaml", "w") as file:
        file.write("name: tiny\narms: [scratch, fine_tune\nseeds: 2\n")
    return ["evaluate", "experiment.yaml", "--out", "run"]


def empty_yaml():
    open("experiment.yaml", "w").close()
    return ["evaluate", "experiment.yaml", "--out", "run"]


def unknown_config_key():
    config = experiment(seeds=None)
    config["seed"] = 2
    return evaluate_config(config)


def wrong_type():
    return evaluate_config(experiment(target=target(epochs="ten")))


def empty_arms():
    return evaluate_config(experiment(arms=[]))


def freeze_depth_beyond_network():
    return evaluate_config(experiment(freeze_depths=[9]))


def train_size_beyond_split():
    return evaluate_config(experiment(target=target(train_sizes=[5000])))


def negative_train_size():
    return evaluate_config(experiment(target=target(train_sizes=[-5])))


def unknown_arm():
    return evaluate_config(experiment(arms=["scratch", "fine_tuning"]))


def unknown_optimizer():
    return evaluate_config(experiment(target=target(optimizer="adamax")))


def arms_without_scratch():
    return evaluate_config(experiment(arms=["fine_tune", "linear_probe"]))


def metric_not_for_task():
    return evaluate_config(experiment(metrics=["mae"]))


def another_experiment_in_run_folder():
    from keras_tl.config.schema import load_experiment
    from keras_tl.store import TrialStore

    os.mkdir("run")
    store = TrialStore(os.path.join("run", "trials.sqlite"))
    store.bind(load_experiment(experiment(name="earlier", seeds=3)))
    store.close()
    return evaluate_config(experiment())


def report_without_store():
    os.mkdir("run")
    with open(os.path.join("run", "results.json"), "w") as file:
        file.write("{}\n")
    return ["report", "run"]


def report_missing_folder():
    return ["report", "run"]


def report_corrupt_store():
    os.mkdir("run")
    write_bytes(os.path.join("run", "trials.sqlite"), size=4096)
    return ["report", "run"]


def write_text(path, text):
    with open(path, "w") as file:
        file.write(text)
    return path


def evaluate_yaml(text):
    """`keras-tl evaluate` of an experiment file written as text."""
    return ["evaluate", write_text("experiment.yaml", text), "--out", "run"]


VALID_YAML = yaml.safe_dump(VALID_EXPERIMENT)


# Non-finite and out-of-range numbers


def learning_rate_nan_in_yaml():
    return evaluate_yaml(VALID_YAML.replace(
        "epochs: 1\n  task: digits:parity",
        "epochs: 1\n  learning_rate: .nan\n  task: digits:parity",
    ))


def learning_rate_beyond_float():
    return evaluate_config(experiment(target=target(learning_rate=10**400)))


def seeds_a_trillion():
    return evaluate_config(experiment(seeds=10**12))


def seeds_option_a_trillion():
    return evaluate_config(experiment(), "--seeds", str(10**12))


def seed_beyond_32_bits():
    return evaluate_config(experiment(seeds=[0, 2**32]))


def seed_beyond_31_bits():
    return evaluate_config(experiment(seeds=[2**31]))


def too_many_seeds_listed():
    return evaluate_config(experiment(seeds=list(range(1001))))


def duplicate_train_sizes():
    return evaluate_config(experiment(target=target(train_sizes=[20, 20])))


def duplicate_learning_rates():
    return evaluate_config(experiment(learning_rates=[0.01, 0.01]))


def duplicate_metrics():
    return evaluate_config(experiment(metrics=["accuracy", "accuracy"]))


def duplicate_scores():
    return evaluate_config(experiment(scores=["logme", "logme"]))


def workers_a_trillion():
    return evaluate_config(experiment(), "--workers", str(10**12))


def gpus_per_trial_nan():
    return evaluate_config(experiment(), "--executor", "ray", "--gpus-per-trial", "nan")


# The experiment's name names the run folder: runs/<name>-<time>.


def named(name):
    def setup():
        return ["evaluate", write_yaml(experiment(name=name))]

    return setup


# --out


def out_empty():
    return evaluate_config(experiment())[:-2] + ["--out", ""]


def out_under_a_file():
    write_text("notes.txt", "a file, not a folder\n")
    return evaluate_config(experiment())[:-2] + ["--out", os.path.join("notes.txt", "run")]


def out_not_writable():
    os.mkdir("readonly")
    return evaluate_config(experiment())[:-2] + ["--out", os.path.join("readonly", "run")]


# Every folder looks read-only (root may write anywhere, so a chmod would not do).
NOT_WRITABLE = (
    "keras_tl_cli.main.os.access",
    lambda path, mode, *args, _access=os.access, **kwargs: (
        not mode & os.W_OK and _access(path, mode, *args, **kwargs)
    ),
)


def out_in_proc():
    return evaluate_config(experiment())[:-2] + ["--out", "/proc/keras-tl-run"]


def out_in_sys():
    return evaluate_config(experiment())[:-2] + ["--out", "/sys/keras-tl/run"]


# Messages that named the wrong thing


def freeze_depths_all_in_a_list():
    return evaluate_config(experiment(freeze_depths=["all"]))


def source_task_is_the_target_task_with_fused():
    return evaluate_config(experiment(source={"task": "digits:parity", "epochs": 1},
                                      arms=["scratch", "fused"]))


# YAML


def billion_laughs():
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    lines.append("name: *a9")
    return evaluate_yaml("\n".join(lines) + "\n")


def deep_nesting():
    return evaluate_yaml("seeds: " + "[" * 5000 + "]" * 5000 + "\n")


def deep_alias_chain():
    lines = ["x0: &x0 [1]"] + [f"x{i}: &x{i} [*x{i - 1}]" for i in range(1, 200)]
    return evaluate_yaml("\n".join(lines) + "\nseeds: *x199\n")


def recursive_alias():
    return evaluate_yaml(VALID_YAML + "metrics: &loop [*loop]\n")


def duplicate_top_level_key():
    return evaluate_yaml(VALID_YAML + "seeds: 5\n")


def duplicate_nested_key():
    return evaluate_yaml(
        "name: tiny\ntarget:\n  task: digits:parity\n  epochs: 1\n  epochs: 100\n"
    )


def builder_option_a_date():
    write_module("user_nets_date", """
        def build(input_shape, num_outputs, since=None):
            raise AssertionError("never called")
    """)
    return evaluate_yaml(VALID_YAML.replace(
        "builder: mlp", "builder: user_nets_date:build\n  since: 2020-01-01"
    ))


def invalid_date():
    return evaluate_yaml(VALID_YAML.replace("name: tiny", "name: 2020-02-30"))


def integer_beyond_digit_limit():
    return evaluate_yaml(VALID_YAML.replace("seeds: 2", "seeds: " + "9" * 5000))


def config_is_a_fifo():
    os.mkfifo("experiment.yaml")
    return ["evaluate", "experiment.yaml", "--out", "run"]


def config_too_large():
    return evaluate_yaml(VALID_YAML + "# " + "x" * (2 << 20) + "\n")


# Builders and their options


def model_options(**options):
    def setup():
        builder = options.pop("builder", "small_cnn")
        return evaluate_config(experiment(model={"builder": builder, **options}))

    return setup


def write_module(name, source):
    write_text(f"{name}.py", textwrap.dedent(source))
    return name


def builder_returning_an_int():
    module = write_module("user_nets_int", """
        def build(input_shape, num_outputs):
            return 42
    """)
    return evaluate_config(experiment(model={"builder": f"{module}:build"}))


def builder_with_one_argument():
    module = write_module("user_nets_one_arg", """
        def build(input_shape):
            raise AssertionError("never called")
    """)
    return evaluate_config(experiment(model={"builder": f"{module}:build"}))


def builder_that_raises():
    module = write_module("user_nets_raises", """
        def build(input_shape, num_outputs):
            raise ValueError("my bug")
    """)
    return evaluate_config(experiment(model={"builder": f"{module}:build"}))


def builder_without_head():
    module = write_module("user_nets_no_head", """
        import keras

        def build(input_shape, num_outputs):
            inputs = keras.Input(shape=input_shape)
            x = keras.layers.Flatten(name="flat")(inputs)
            return keras.Model(inputs, keras.layers.Dense(num_outputs, name="out")(x))
    """)
    return evaluate_config(experiment(model={"builder": f"{module}:build"}))


def builder_module_with_syntax_error():
    module = write_module("user_nets_syntax", "def build(input_shape, num_outputs:\n")
    return evaluate_config(experiment(model={"builder": f"{module}:build"}))


def builder_option_not_taken():
    module = write_module("user_nets_options", """
        def build(input_shape, num_outputs, width=8):
            raise AssertionError("never called")
    """)
    return evaluate_config(experiment(model={"builder": f"{module}:build", "depth": 3}))


# npz files


def npz_case(kind=None, **arrays):
    def setup():
        extra = {"kind": np.array(kind)} if kind else {}
        return evaluate_config(npz_experiment(write_npz(**arrays, **extra)))

    return setup


def nan_at(shape, index, value=np.nan, dtype="float32"):
    array = np.random.default_rng(1).random(shape).astype(dtype)
    array[index] = value
    return array


def npz_at(path):
    def setup():
        return evaluate_config(npz_experiment(f"npz:{path}"))

    return setup


def npz_folder():
    os.mkdir("data.npz")
    return evaluate_config(npz_experiment("npz:data.npz"))


def npz_fifo():
    os.mkfifo("data.npz")
    return evaluate_config(npz_experiment("npz:data.npz"))


def csv_fifo():
    os.mkfifo("data.csv")
    return evaluate_config(npz_experiment("csv:data.csv?label=label"))


def csv_folder():
    os.mkdir("data.csv")
    return evaluate_config(npz_experiment("csv:data.csv?label=label"))


# keras-tl score


def score(*options):
    def setup():
        return ["score", "--model", "mlp", "--source-task", "digits",
                "--task", "digits:parity", *options]

    return setup


def score_nan_label_in_source_task():
    regression = write_npz(
        y_train=nan_at((40,), 3), y_test=np.zeros(10, "float32"), kind=np.array("regression")
    )
    return ["score", "--model", "mlp", "--source-task", regression, "--task", "digits:parity"]


# keras-tl compare


def compare_with_results(*texts):
    def setup():
        folders = []
        for index, text in enumerate(texts):
            folder = f"run{index}"
            os.mkdir(folder)
            write_text(os.path.join(folder, "results.json"), text)
            folders.append(folder)
        return ["compare", *folders]

    return setup


# Every backend looks uninstalled (keras_tl.backend reads versions from metadata).
NOT_INSTALLED = ("keras_tl.backend.installed_version", lambda name: None)

# The ray package looks uninstalled (the executors module finds it by its spec).
RAY_NOT_INSTALLED = (
    "keras_tl.experiment.executors.importlib",
    types.SimpleNamespace(util=types.SimpleNamespace(find_spec=lambda name: None)),
)

CASES = {
    "unknown backend": (unknown_backend, "Unknown backend 'nope'"),
    "backend not installed": (
        backend_not_installed,
        ("is not installed", f"pip install 'keras-tl[{keras.config.backend()}]'"),
        [NOT_INSTALLED],
    ),
    "unknown task": (unknown_task, "Unknown task 'digits:primes'"),
    "npz file missing": (npz_file_missing, "Task file not found: 'missing.npz'"),
    "images size too large": (images_size_too_large, "size must be at most 4096x4096"),
    "npz unreadable": (npz_unreadable, "Cannot read 'data.npz' as an .npz archive"),
    "npz missing key": (npz_missing_key, "lacks the key(s) y_test"),
    "npz labels not integers": (
        npz_labels_not_integers,
        "must hold integer class labels",
    ),
    "npz empty split": (npz_empty_split, "the test split is empty"),
    "unknown builder": (unknown_builder, "unknown builder 'resnet_tiny'"),
    "builder not importable": (builder_not_importable, "cannot import builder"),
    "model file missing": (model_file_missing, "file not found: 'missing.keras'"),
    "model file is a folder": (model_file_is_a_folder, "'model.keras' is a folder"),
    "model file is a pipe": (model_file_is_a_pipe, "'pipe.keras' is not a regular file"),
    "model file not a keras archive": (
        model_file_not_a_keras_archive,
        "is not a .keras (zip) archive",
    ),
    "--seeds 0": (zero_seeds, "seeds: expected a positive integer, received 0"),
    "--executor ray without ray": (
        executor_ray_without_ray,
        "needs the ray package, which is not installed. Install it with: "
        "pip install 'keras-tl[ray]'",
        [RAY_NOT_INSTALLED],
    ),
    "--address without --executor ray": (
        address_without_ray_executor,
        "address and gpus_per_trial apply to the ray executor only",
    ),
    "--executor serial with --workers 2": (
        serial_executor_with_workers,
        "workers: the serial executor runs trials in this process",
    ),
    "unknown distribution": (
        unknown_distribution,
        "distribution: expected one of data_parallel, received 'model_parallel'",
    ),
    "out folder not empty": (out_folder_not_empty, "exists and is not empty"),
    "out is a file": (out_is_a_file, "is a file"),
    "config is a folder": (config_is_a_folder, "experiment.yaml"),
    "--seeds not a number": (seeds_not_a_number, "three"),
    "config file missing": (
        config_file_missing,
        "Experiment file not found: 'missing.yaml'",
    ),
    "invalid yaml": (invalid_yaml, "not valid YAML"),
    "empty yaml": (empty_yaml, "the file is empty"),
    "unknown config key": (
        unknown_config_key,
        ("seed: unknown key. Allowed keys:", "Did you mean 'seeds'?"),
    ),
    "wrong type": (
        wrong_type,
        "target.epochs: expected a positive integer, received 'ten'",
    ),
    "empty arms": (empty_arms, "arms: expected a non-empty list, received []"),
    "freeze depth beyond network": (
        freeze_depth_beyond_network,
        "freeze_depths[0]: expected at most",
    ),
    "train size beyond split": (
        train_size_beyond_split,
        "target.train_sizes[0]: expected at most",
    ),
    "negative train size": (
        negative_train_size,
        "target.train_sizes[0]: expected a positive integer or a fraction in (0, 1], "
        "received -5",
    ),
    "unknown arm": (unknown_arm, "arms[1]: expected one of"),
    "unknown optimizer": (unknown_optimizer, "target.optimizer: expected one of"),
    "arms without scratch": (arms_without_scratch, "arms: must include 'scratch'"),
    "metric not for task": (metric_not_for_task, "metrics[0]: expected one of"),
    "another experiment in run folder": (
        another_experiment_in_run_folder,
        "holds results of another experiment",
    ),
    "report without store": (report_without_store, "holds no trials.sqlite"),
    "report missing folder": (report_missing_folder, "does not exist"),
    "report corrupt store": (report_corrupt_store, "is not a keras-tl trial store"),
    # Non-finite and out-of-range numbers
    "learning rate .nan in YAML": (
        learning_rate_nan_in_yaml,
        "target.learning_rate: expected a finite positive number (not NaN or infinity), "
        "received nan",
    ),
    "learning rate beyond float": (
        learning_rate_beyond_float, "target.learning_rate: expected a finite positive number"
    ),
    "seeds 10**12": (seeds_a_trillion, "seeds: expected a positive integer of at most 1000"),
    "--seeds 10**12": (
        seeds_option_a_trillion, "seeds: expected a positive integer of at most 1000"
    ),
    "seed 2**32": (seed_beyond_32_bits, "seeds[1]: expected an integer from 0 to 2147483647"),
    "seed 2**31": (seed_beyond_31_bits, "seeds[0]: expected an integer from 0 to 2147483647"),
    "1001 seeds listed": (too_many_seeds_listed, "seeds: expected a list of at most 1000"),
    "duplicate train sizes": (
        duplicate_train_sizes,
        "target.train_sizes: expected each train size once, received [20, 20]",
    ),
    "duplicate learning rates": (duplicate_learning_rates, "learning_rates: expected each"),
    "duplicate metrics": (duplicate_metrics, "metrics: expected each metric once"),
    "duplicate scores": (duplicate_scores, "scores: expected each score once"),
    "--workers 10**12": (
        workers_a_trillion,
        "workers: expected a positive integer of at most 4096, received 1000000000000",
    ),
    "--gpus-per-trial nan": (
        gpus_per_trial_nan, "gpus_per_trial: expected a finite number >= 0, received nan"
    ),
    # Names
    "name ../../x": (named("../../x"), ("name: expected a name", "received '../../x'")),
    "absolute name": (named("/tmp/keras-tl-x"), "name: expected a name of at most 100"),
    "name with NUL": (named("a\0b"), "name: expected a name"),
    "name with a newline": (named("a\nb"), "name: expected a name"),
    "name too long": (named("x" * 500), ("name: expected a name", "characters)")),
    "name ..": (named(".."), "name: expected a name"),
    "blank name": (named("   "), "name: expected a name"),
    # --out
    "--out empty": (out_empty, "--out: expected a folder path, received ''"),
    "--out under a file": (out_under_a_file, "'notes.txt' is a file, not a folder"),
    "--out not writable": (
        out_not_writable,
        "--out 'readonly/run': the folder 'readonly' is not writable (permissions or a "
        "read-only file system)",
        [NOT_WRITABLE],
    ),
    "--out in /proc": (out_in_proc, "is inside /proc, a virtual file system"),
    "--out in /sys": (out_in_sys, "is inside /sys, a virtual file system"),
    # Messages that named the wrong thing
    "freeze_depths [all]": (
        freeze_depths_all_in_a_list,
        ("freeze_depths[0]: 'all' stands alone", "freeze_depths: all"),
    ),
    "source task is the target task, with fused": (
        source_task_is_the_target_task_with_fused,
        ("arms: 'fused' trains a source task jointly",
         "source.task is the target task 'digits:parity'"),
    ),
    # YAML
    "billion laughs": (billion_laughs, ("aliases (*name) expand to", "alias bomb")),
    "nesting 5000 deep": (deep_nesting, "nesting deeper than 20 levels at line 1"),
    "alias chain 200 deep": (deep_alias_chain, "nesting deeper than 20 levels (aliases"),
    "recursive alias": (recursive_alias, "recursive alias"),
    "duplicate top-level key": (
        duplicate_top_level_key, "the key 'seeds' is given twice in one mapping"
    ),
    "duplicate nested key": (
        duplicate_nested_key, "the key 'epochs' is given twice in one mapping (lines 4 and 5)"
    ),
    "builder option a YAML date": (
        builder_option_a_date,
        "model.since: expected plain data: text, a number, true or false, a list or a "
        "mapping (quote it if it is text), received datetime.date(2020, 1, 1)",
    ),
    "builder option NaN": (
        model_options(builder="os.path:join", rate=math.nan),
        "model.rate: expected a finite number (not NaN or infinity), received nan",
    ),
    "invalid date": (
        invalid_date,
        "experiment.yaml: the value '2020-02-30' at line 6 cannot be read (ValueError: day "
        "is out of range for month). Quote it if it is text",
    ),
    "integer of 5000 digits": (
        integer_beyond_digit_limit, ("the value '9999", "at line 7 cannot be read")
    ),
    "config is a fifo": (config_is_a_fifo, "not a regular file"),
    "config too large": (config_too_large, "an experiment file holds at most"),
    # Builders and their options
    "filters: abc": (
        model_options(filters="abc"), "model.filters: expected a list of 2 positive integers"
    ),
    "filters: [-3, 4]": (
        model_options(filters=[-3, 4]),
        "model.filters[0]: expected a positive integer of at most 65536, received -3",
    ),
    "filters: null": (model_options(filters=None), "model.filters: expected a list of 2"),
    "filters: three of them": (
        model_options(filters=[4, 4, 4]), "model.filters: expected a list of 2"
    ),
    "filters: floats": (model_options(filters=[4.5, 4]), "model.filters[0]: expected"),
    "units: a string": (model_options(units="64"), "model.units: expected a positive integer"),
    "units: a billion": (
        model_options(units=10**9), "model.units: expected a positive integer of at most"
    ),
    "bogus: 1": (
        model_options(bogus=1),
        "model.bogus: unknown option for builder 'small_cnn'. Allowed options: filters, units, dropout.",
    ),
    "mlp units: 0": (
        model_options(builder="mlp", units=0),
        "model.units: expected a list of 1 to 100 positive integers",
    ),
    "mlp units: [0]": (
        model_options(builder="mlp", units=[0]), "model.units[0]: expected a positive integer"
    ),
    "mlp units: []": (model_options(builder="mlp", units=[]), "model.units: expected a list"),
    "mlp filters": (
        model_options(builder="mlp", filters=[4, 4]), "model.filters: unknown option for builder"
    ),
    "builder os:getcwd": (
        model_options(builder="os:getcwd"),
        ("builder 'os:getcwd' is a built-in function of Python, not a network builder",
         "A builder is a function (input_shape, num_outputs, **options)"),
    ),
    "builder os:sep": (model_options(builder="os:sep"), "builder 'os:sep' is not callable"),
    "builder os.path:join": (
        model_options(builder="os.path:join"),
        "builder 'os.path:join' failed for input_shape=(8, 8, 1), num_outputs=1 (TypeError",
    ),
    "builder returning an int": (
        builder_returning_an_int, "must return a keras.Model whose output layer is named"
    ),
    "builder taking one argument": (
        builder_with_one_argument,
        "cannot be called as builder(input_shape, num_outputs, **options)",
    ),
    "builder that raises": (builder_that_raises, ("failed for input_shape=", "ValueError: my bug")),
    "builder without a head": (
        builder_without_head, "Received: a keras.Model with layers"
    ),
    "builder module with a syntax error": (
        builder_module_with_syntax_error, "cannot import builder 'user_nets_syntax:build'"
    ),
    "builder without a module": (
        model_options(builder=":build"), "cannot import builder ':build'"
    ),
    "builder option it does not take": (
        builder_option_not_taken, "model.depth: unknown option for builder"
    ),
    # npz files
    "npz one-hot labels": (
        npz_case(y_train=np.eye(2, dtype="int64")[np.arange(40) % 2]),
        ("y_train has shape (40, 2)", "one-hot encoded: store y.argmax(axis=1)"),
    ),
    "npz string labels": (
        npz_case(y_train=np.array(["cat", "dog"] * 20)),
        ("y_train must hold integer class labels", "numpy.unique(y, return_inverse=True)"),
    ),
    "npz bytes labels": (
        npz_case(y_test=np.array([b"a", b"b"] * 5)), "y_test must hold integer class labels"
    ),
    "npz NaN in x_train": (
        npz_case(x_train=nan_at((40, 4), (3, 2))),
        "x_train holds 1 non-finite value(s) (NaN, infinity, or beyond float32's range), "
        "the first at index (3, 2)",
    ),
    "npz inf in x_test": (npz_case(x_test=nan_at((10, 4), (0, 0), np.inf)), "x_test holds 1"),
    "npz x beyond float32": (
        npz_case(x_train=nan_at((40, 4), (5, 1), 1e300, "float64")), "x_train holds 1"
    ),
    "npz NaN regression target": (
        npz_case(kind="regression", y_train=nan_at((40,), 7), y_test=np.zeros(10)),
        "y_train holds 1 non-finite target(s)",
    ),
    "npz string regression target": (
        npz_case(kind="regression", y_train=np.array(["1.5"] * 40)),
        "y_train must hold numbers for a regression task",
    ),
    "npz regression columns differ": (
        npz_case(kind="regression", y_train=np.zeros((40, 2)), y_test=np.zeros((10, 3))),
        "y_test has 3 target column(s) but y_train has 2",
    ),
    "npz x_test shape differs": (
        npz_case(x_test=np.zeros((10, 5), "float32")),
        "x_test has samples of shape (5,) but x_train has (4,)",
    ),
    "npz single class": (
        npz_case(y_train=np.zeros(40, "int64")), "y_train holds a single class (0)"
    ),
    "npz binary single class": (
        npz_case(kind="binary", y_train=np.ones(40, "int64")),
        "a binary task needs at least two classes",
    ),
    "npz zero features": (
        npz_case(x_train=np.zeros((40, 0), "float32"), x_test=np.zeros((10, 0), "float32")),
        "its samples have no features",
    ),
    "npz text features": (
        npz_case(x_train=np.array([["a"] * 4] * 40)), "x_train must hold numbers"
    ),
    "npz label a billion": (
        npz_case(y_train=np.arange(40) % 2 * 10**9), "must be integers from 0 to 99999"
    ),
    "npz scalar arrays": (
        npz_case(x_train=np.float32(1)), "must be arrays with one row per sample"
    ),
    "npz:/dev/zero": (
        npz_at("/dev/zero"), "'/dev/zero' (from task 'npz:/dev/zero') is not a regular file"
    ),
    "npz folder": (npz_folder, "'data.npz' (from task 'npz:data.npz') is a folder"),
    "npz fifo": (npz_fifo, "is not a regular file (a device, pipe or socket)"),
    "csv fifo": (
        csv_fifo,
        "CSV file 'data.csv' (from task 'csv:data.csv?label=label') is not a regular file",
    ),
    "csv folder": (
        csv_folder, "CSV file 'data.csv' (from task 'csv:data.csv?label=label') is a folder"
    ),
    # keras-tl score
    "score --seed -1": (
        score("--seed", "-1"),
        "--seed: expected an integer from 0 to 2147483647 (2**31 - 1), received -1",
    ),
    "score --seed 2**40": (score("--seed", str(2**40)), "--seed: expected an integer from 0"),
    "score --epochs 0": (score("--epochs", "0"), "--epochs: expected a positive integer"),
    "score NaN label in the source task": (
        score_nan_label_in_source_task, "y_train holds 1 non-finite target(s)"
    ),
    # keras-tl compare
    "compare: results.json not JSON": (
        compare_with_results("{not json"),
        ("run0/results.json cannot be read as keras-tl results (JSONDecodeError",
         "keras-tl report run0"),
    ),
    "compare: results.json a list": (
        compare_with_results("[1, 2]", "[]"), "run0/results.json cannot be read"
    ),
    "compare: results.json empty mapping": (
        compare_with_results("{}"), "run0/results.json cannot be read"
    ),
    "compare: results.json without a summary": (
        compare_with_results(json.dumps(
            {"config": {}, "context": {}, "provenance": {}, "trials": [], "summary": {}}
        )),
        ("run0/results.json cannot be read as keras-tl results (KeyError: "
         "'primary_metric')"),
    ),
    "compare: conditions not a list": (
        compare_with_results(json.dumps(
            {"config": {}, "context": {}, "provenance": {}, "trials": [],
             "summary": {"primary_metric": "accuracy", "conditions": 5}}
        )),
        "run0/results.json cannot be read as keras-tl results (TypeError",
    ),
}


# Every numeric setting, each with every kind of wrong value. A key ending in [0]
# is the first item of a list.
WRONG_VALUES = {
    "string": "abc",
    "bool": True,
    "null": None,
    "list": ["x"],
    "nan": math.nan,
    "inf": math.inf,
    "-inf": -math.inf,
    "negative": -1,
}
WRONG_FLOATS = {**WRONG_VALUES, "beyond float": 10**400}
WRONG_POSITIVE_FLOATS = {**WRONG_FLOATS, "zero": 0}
WRONG_INTS = {**WRONG_VALUES, "fraction": 1.5, "zero": 0, "10**40": 10**40}
NUMERIC_KEYS = {
    "target.epochs": WRONG_INTS,
    "target.batch_size": WRONG_INTS,
    "source.epochs": WRONG_INTS,
    "source.batch_size": WRONG_INTS,
    "early_stopping.patience": WRONG_INTS,
    "seeds": WRONG_INTS,
    "target.train_sizes[0]": WRONG_INTS,
    "freeze_depths[0]": {k: v for k, v in WRONG_INTS.items() if k != "zero"},
    "target.learning_rate": WRONG_POSITIVE_FLOATS,
    "source.learning_rate": WRONG_POSITIVE_FLOATS,
    "learning_rates[0]": WRONG_POSITIVE_FLOATS,
    "lp_ft.learning_rate_scale": WRONG_POSITIVE_FLOATS,
    "lp_ft.probe_fraction": WRONG_POSITIVE_FLOATS,
    "l2sp.alpha": WRONG_FLOATS,
    "l2sp.beta": WRONG_FLOATS,
    "feature_cache_mb": WRONG_FLOATS,
    "fused.loss_weights[0]": WRONG_FLOATS,
}


def with_setting(key, value):
    """The valid experiment with `key` (a dotted path, maybe ending in [0]) set."""
    config = json.loads(json.dumps(VALID_EXPERIMENT))
    path, _, item = key.partition("[")
    *sections, last = path.split(".")
    section = config
    for name in sections:
        section = section.setdefault(name, {})
    if item:
        value = [value, 1.0] if last == "loss_weights" else [value]
    section[last] = value
    return config


def generated_case(key, value):
    def setup():
        return evaluate_config(with_setting(key, value))

    return setup, f"{key.partition('[')[0]}"


GENERATED = {
    f"{key}: {label}": generated_case(key, value)
    for key, values in NUMERIC_KEYS.items()
    for label, value in values.items()
}


def snapshot(path):
    """Every entry under `path`: a file's bytes, 'folder', or the kind of a special
    file (never opened); None when `path` does not exist."""
    if not os.path.lexists(path):
        return None
    if not os.path.isdir(path):
        with open(path, "rb") as file:
            return file.read()
    entries = {}
    for folder, folders, names in os.walk(path):
        for name in folders:
            entries[os.path.relpath(os.path.join(folder, name), path)] = "folder"
        for name in names:
            full = os.path.join(folder, name)
            mode = os.lstat(full).st_mode
            if stat.S_ISREG(mode):
                with open(full, "rb") as file:
                    entries[os.path.relpath(full, path)] = file.read()
            else:
                entries[os.path.relpath(full, path)] = stat.filemode(mode)
    return entries


def check_refused(args, expected, monkeypatch, patches=()):
    """Runs the CLI: exit 2, one `Error:` line holding `expected`, no traceback,
    nothing on stdout, and the working folder exactly as it was."""
    for target_path, value in patches:
        monkeypatch.setattr(target_path, value)
    # Importing a case's builder module must not write __pycache__ here.
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    before = snapshot(".")

    result = CliRunner().invoke(cli, args, prog_name="keras-tl")
    exit_code, exception_type = result.exit_code, type(result.exception)
    stdout, stderr, output = result.stdout, result.stderr, result.output
    after = snapshot(".")

    lines = stderr.splitlines()
    assert exit_code == 2, output
    assert exception_type is SystemExit, output
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: ")
    for fragment in (expected,) if isinstance(expected, str) else expected:
        assert fragment in lines[0]
    assert stdout == ""
    assert "Traceback" not in output
    assert after == before


@pytest.mark.parametrize(
    "case", [pytest.param(case, id=case) for case in CASES]
)
def test_bad_input_gives_one_error_line_and_exit_2(case, monkeypatch):
    setup, expected, *patches = CASES[case]
    check_refused(setup(), expected, monkeypatch, patches[0] if patches else ())


@pytest.mark.parametrize(
    "case", [pytest.param(case, id=case) for case in GENERATED]
)
def test_every_numeric_setting_refuses_every_wrong_value(case, monkeypatch):
    setup, key = GENERATED[case]
    check_refused(setup(), f"Error: {key}", monkeypatch)


def test_the_battery_is_large():
    assert len(CASES) + len(GENERATED) > 200


def test_refused_run_folder_is_released_at_once():
    args = another_experiment_in_run_folder()

    result = CliRunner().invoke(cli, args, prog_name="keras-tl")

    assert result.exit_code == 2
    assert sorted(os.listdir("run")) == ["trials.sqlite"]
