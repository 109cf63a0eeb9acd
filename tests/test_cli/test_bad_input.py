"""Each user mistake: one `Error:` line on stderr, exit 2, no traceback, --out intact.

Each case sets up the mistake in a temporary folder the way a user would make it and
runs the CLI. Training is disabled for the whole module, so every case must fail while
planning (fast), before the first model is fitted.
"""

import os
import random
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
    monkeypatch.chdir(tmp_path)


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
}


def snapshot(path):
    """Every file under `path` with its bytes, or None when `path` does not exist."""
    if not os.path.lexists(path):
        return None
    if not os.path.isdir(path):
        with open(path, "rb") as file:
            return file.read()
    files = {}
    for folder, _, names in os.walk(path):
        for name in names:
            full = os.path.join(folder, name)
            with open(full, "rb") as file:
                files[os.path.relpath(full, path)] = file.read()
    return files


@pytest.mark.parametrize(
    "case", [pytest.param(case, id=case) for case in CASES]
)
def test_bad_input_gives_one_error_line_and_exit_2(case, monkeypatch):
    setup, expected, *patches = CASES[case]
    args = setup()
    for target_path, value in patches[0] if patches else []:
        monkeypatch.setattr(target_path, value)
    before = snapshot("run")

    result = CliRunner().invoke(cli, args, prog_name="keras-tl")
    exit_code, exception_type = result.exit_code, type(result.exception)
    stdout, stderr, output = result.stdout, result.stderr, result.output
    after = snapshot("run")

    lines = stderr.splitlines()
    assert exit_code == 2, output
    assert exception_type is SystemExit
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: ")
    for fragment in (expected,) if isinstance(expected, str) else expected:
        assert fragment in lines[0]
    assert stdout == ""
    assert "Traceback" not in output
    assert after == before


def test_refused_run_folder_is_released_at_once():
    args = another_experiment_in_run_folder()

    result = CliRunner().invoke(cli, args, prog_name="keras-tl")

    assert result.exit_code == 2
    assert sorted(os.listdir("run")) == ["trials.sqlite"]
