"""The `keras-tl` command line as a user runs it: help, listings, evaluate, report."""

import csv
import importlib
import json
import os
import shutil
import subprocess
import sys

import keras
import pytest
import yaml
from click.testing import CliRunner

from keras_tl_cli.main import cli

# Trains models end to end: the full suite (tox, CI) runs it; `-m "not slow"` skips it.
pytestmark = pytest.mark.slow

BACKENDS = ("torch", "tensorflow", "jax")
BUILTIN_TASKS = (
    "digits",
    "digits:0-4",
    "digits:5-9",
    "digits:parity",
    "digits:inverted",
)
# scikit-learn's 8x8 digits: 1797 images, split 60 / 20 / 20 by keras-tl.
NUM_DIGITS = 1797


@pytest.fixture(scope="module")
def tiny(tiny_experiment):
    """The tiny experiment of tests/conftest.py with two arms (scratch, fine_tune:
    4 trials) and source batches of 128."""
    return tiny_experiment("tiny", source={"batch_size": 128}, arms=["scratch", "fine_tune"])


def invoke(args):
    return CliRunner().invoke(cli, args, prog_name="keras-tl")


def write_config(folder, experiment):
    path = folder / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment))
    return path


def read_csv(path):
    """The rows of a CSV file as dicts, sorted by trial key."""
    with open(path, newline="") as file:
        return sorted(csv.DictReader(file), key=lambda row: row["key"])


def subprocess_env(keras_home, **extra):
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["KERAS_HOME"] = str(keras_home)
    env.update(extra)
    return env


@pytest.mark.parametrize(
    "command",
    [[], ["backends"], ["tasks"], ["evaluate"], ["report"]],
    ids=["group", "backends", "tasks", "evaluate", "report"],
)
def test_every_command_has_help(command):
    result = invoke([*command, "--help"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: {' '.join(['keras-tl', *command])} ")


def test_group_help_lists_every_command():
    result = invoke(["--help"])

    commands = result.output.split("Commands:")[1].split()
    for command in ("backends", "tasks", "evaluate", "report"):
        assert command in commands


def test_evaluate_help_lists_its_options():
    result = invoke(["evaluate", "--help"])

    for option in ("--backend", "--out", "--seeds", "--overwrite", "--retry-failed",
                   "--executor", "--workers", "--address", "--gpus-per-trial"):
        assert option in result.output


def test_backends_lists_versions_and_marks_the_active_one():
    active = keras.config.backend()
    # keras has imported its backend already, so its version costs nothing here.
    active_version = importlib.import_module(active).__version__

    result = invoke(["backends"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line[2:].split()[0] for line in lines] == list(BACKENDS)
    assert [line[2:].split()[0] for line in lines if line.startswith("*")] == [active]
    assert f"* {active}" in result.output
    active_line = next(line for line in lines if line.startswith("*"))
    assert active_line.split()[2] == active_version
    for line in lines:
        name, rest = line[2:].split(maxsplit=1)
        assert (
            rest[0].isdigit()
            or rest == f"not installed (pip install 'keras-tl[{name}]')"
        )


def test_tasks_lists_the_builtin_tasks_with_sizes():
    result = invoke(["tasks"])

    assert result.exit_code == 0, result.output
    rows = {
        line.split()[0]: line.split() for line in result.output.splitlines() if line
    }
    for name in BUILTIN_TASKS:
        assert name in rows
    kind, outputs, train, val, test = rows["digits"][1:6]
    assert (kind, outputs) == ("classification", "10")
    assert int(train) + int(val) + int(test) == NUM_DIGITS
    assert rows["digits:parity"][1:3] == ["binary", "1"]
    assert "npz:PATH" in result.output


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny):
    """One in-process `keras-tl evaluate` of a tiny experiment, shared below."""
    folder = tmp_path_factory.mktemp("tiny_run")
    config = write_config(folder, tiny)
    out = folder / "run"
    result = invoke(["evaluate", str(config), "--out", str(out)])
    return result, out


def test_evaluate_runs_a_config_and_prints_a_summary(tiny_run):
    result, _ = tiny_run

    assert result.exit_code == 0, result.output
    assert "[4/4]" in result.output
    header = next(
        line for line in result.output.splitlines() if line.startswith("arm ")
    )
    for column in ("seeds", "test accuracy", "gain vs scratch", "verdict"):
        assert column in header
    rows = {line.split()[0] for line in result.output.splitlines() if line.strip()}
    assert {"scratch", "fine_tune@0"} <= rows


def test_evaluate_writes_results_json_and_trials_csv(tiny_run):
    _, out = tiny_run

    results = json.loads((out / "results.json").read_text())
    assert results["schema_version"] == 1
    assert results["provenance"]["backend"] == keras.config.backend()
    assert results["provenance"]["seeds"] == [0, 1]
    assert results["config"]["target"]["train_sizes"] == [20]
    trials = results["trials"]
    assert sorted((t["arm"], t["seed"]) for t in trials) == [
        ("fine_tune", 0),
        ("fine_tune", 1),
        ("scratch", 0),
        ("scratch", 1),
    ]
    assert {t["status"] for t in trials} == {"ok"}
    assert {t["train_size"] for t in trials} == {20}
    rows = read_csv(out / "trials.csv")
    assert sorted(row["key"] for row in rows) == sorted(t["key"] for t in trials)
    assert all(0 <= float(row["test_accuracy"]) <= 1 for row in rows)


def test_report_rebuilds_results_from_the_store(tiny_run, tmp_path):
    _, out = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    expected_results = json.loads((copy / "results.json").read_text())
    expected_rows = read_csv(copy / "trials.csv")
    (copy / "results.json").unlink()
    (copy / "trials.csv").unlink()

    result = invoke(["report", str(copy)])

    assert result.exit_code == 0, result.output
    assert "fine_tune@0" in result.output
    assert json.loads((copy / "results.json").read_text()) == expected_results
    assert read_csv(copy / "trials.csv") == expected_rows


def test_backend_option_is_honoured_before_keras_is_imported(tmp_path, tiny):
    active = keras.config.backend()
    # keras.json names another backend: only --backend can make the run use `active`.
    other = next(name for name in BACKENDS if name != active)
    keras_home = tmp_path / "keras_home"
    keras_home.mkdir()
    (keras_home / "keras.json").write_text(
        json.dumps(
            {
                "floatx": "float32",
                "epsilon": 1e-07,
                "backend": other,
                "image_data_format": "channels_last",
            }
        )
    )
    experiment = {**tiny, "arms": ["scratch"], "name": "subprocess"}
    config = write_config(tmp_path, experiment)
    out = tmp_path / "run"

    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_tl_cli",
            "evaluate",
            str(config),
            "--backend",
            active,
            "--out",
            str(out),
        ],
        env=subprocess_env(keras_home),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["provenance"]["backend"] == active
    assert len(results["trials"]) == 2


def test_a_run_with_a_worker_process_writes_nothing_to_stderr(tmp_path, tiny):
    # The spawned worker imports keras as quietly as the CLI does: TensorFlow's
    # start-up notices would otherwise fill the terminal.
    config = write_config(tmp_path, {**tiny, "name": "workers"})
    completed = subprocess.run(
        [sys.executable, "-m", "keras_tl_cli", "evaluate", str(config), "--backend",
         keras.config.backend(), "--workers", "2", "--quiet", "--out", str(tmp_path / "run")],
        env=subprocess_env(tmp_path / "keras_home"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stderr == ""
    assert len(json.loads((tmp_path / "run" / "results.json").read_text())["trials"]) == 4


def test_help_backends_and_tasks_do_not_import_keras_or_a_backend(tmp_path):
    script = (
        "import json, sys\n"
        "from click.testing import CliRunner\n"
        "from keras_tl_cli.main import cli\n"
        "runner = CliRunner()\n"
        "outputs = {}\n"
        "for args in (['--help'], ['backends'], ['tasks']):\n"
        "    result = runner.invoke(cli, args, prog_name='keras-tl')\n"
        "    outputs[args[0]] = [result.exit_code, result.output]\n"
        "heavy = {'keras', 'torch', 'tensorflow', 'jax'}\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "print(json.dumps({'outputs': outputs, 'loaded': loaded}))\n"
    )
    active = keras.config.backend()

    completed = subprocess.run(
        [sys.executable, "-c", script],
        env=subprocess_env(tmp_path / "keras_home", KERAS_BACKEND=active),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.splitlines()[-1])
    assert report["loaded"] == []
    assert [code for code, _ in report["outputs"].values()] == [0, 0, 0]
    assert "Usage: keras-tl" in report["outputs"]["--help"][1]
    assert f"* {active}" in report["outputs"]["backends"][1]
    assert "digits:parity" in report["outputs"]["tasks"][1]
