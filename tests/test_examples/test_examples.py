"""Every example experiment runs, in a reduced form, on the active backend."""

import pathlib

import pytest
import yaml

import keras_tl
from keras_tl.config import DEFAULT_EXPERIMENT, load_experiment

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
YAML_EXAMPLES = sorted(EXAMPLES.glob("*.yaml"))


def reduced(path):
    """The example with 1 epoch, 2 seeds and at most 2 small train sizes."""
    raw = yaml.safe_load(path.read_text())
    raw["seeds"] = 2
    for source in raw.get("sources", [raw.get("source")]):
        source["epochs"] = 1
    raw["target"]["epochs"] = 1
    sizes = raw["target"].get("train_sizes", [1.0])
    raw["target"]["train_sizes"] = [s if isinstance(s, int) else 20 for s in sizes][:2]
    raw["target"]["train_sizes"] = [min(s, 40) for s in raw["target"]["train_sizes"]]
    return raw


def test_parity_example_is_the_default_experiment():
    example = load_experiment(EXAMPLES / "parity.yaml")
    assert example.fingerprint() == load_experiment(DEFAULT_EXPERIMENT).fingerprint()
    assert example.fingerprint() == load_experiment(None).fingerprint()


def test_examples_folder_holds_the_documented_examples():
    names = {path.stem for path in YAML_EXAMPLES}
    assert {
        "parity", "split_digits", "freeze_sweep", "learning_curve", "source_selection"
    } <= names


@pytest.mark.parametrize("path", YAML_EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_in_reduced_form(path, tmp_path):
    raw = reduced(path)
    results = keras_tl.evaluate(raw, out=str(tmp_path / "run"))
    trials = results.trials
    assert trials and all(trial["status"] == "ok" for trial in trials)
    arms = {trial["arm"] for trial in trials}
    assert arms == set(raw["arms"])
    assert {gain["arm"] for gain in results.summary["gains"]} == arms - {"scratch"}
    assert (tmp_path / "run" / "results.json").is_file()
