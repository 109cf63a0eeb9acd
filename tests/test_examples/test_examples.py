"""Every example experiment runs, in a reduced form, on the active backend."""

import pathlib

import numpy as np
import pytest
import yaml

import keras_tl
from keras_tl.config.schema import DEFAULT_EXPERIMENT, load_experiment
from keras_tl.report.markdown import render_markdown

# Trains models end to end: the full suite (tox, CI) runs it; `-m "not slow"` skips it.
pytestmark = pytest.mark.slow

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
YAML_EXAMPLES = sorted(EXAMPLES.glob("*.yaml"))
# Examples that download ImageNet weights and CIFAR-10: run offline, reduced, below.
IMAGENET_EXAMPLES = sorted(EXAMPLES.glob("imagenet_to_cifar10*.yaml"))
OFFLINE_EXAMPLES = [path for path in YAML_EXAMPLES if path not in IMAGENET_EXAMPLES]


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


@pytest.mark.parametrize("path", OFFLINE_EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_in_reduced_form(path, tmp_path):
    raw = reduced(path)
    results = keras_tl.evaluate(raw, out=str(tmp_path / "run"))
    trials = results.trials
    assert trials and all(trial["status"] == "ok" for trial in trials)
    arms = {trial["arm"] for trial in trials}
    assert arms == set(raw["arms"])
    assert {gain["arm"] for gain in results.summary["gains"]} == arms - {"scratch"}
    assert (tmp_path / "run" / "results.json").is_file()


def _tiny_images(path, num_classes=10, per_class=3, seed=0):
    """A CIFAR-10-shaped npz task: 32x32 RGB noise images, `per_class` per class."""
    rng = np.random.default_rng(seed)

    def split(count):
        labels = np.repeat(np.arange(num_classes), count)
        return rng.random((len(labels), 32, 32, 3), dtype="float32"), labels

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
        split(per_class), split(1), split(1)
    )
    np.savez(path, x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
             x_test=x_test, y_test=y_test)
    return f"npz:{path}"


def offline(path, tmp_path):
    """An ImageNet example made offline and small: random-init backbones
    (`weights: null`), generated 32x32 images instead of keras:cifar10, one seed,
    the largest train size only, one epoch, and two arms: scratch and the linear
    probe (a transfer arm that also takes the feature-cache path). The other
    recipes run on small networks in tests/test_training."""
    raw = yaml.safe_load(path.read_text())
    raw["model"]["weights"] = None
    raw["source"]["model"]["weights"] = None
    raw["target"].update(task=_tiny_images(tmp_path / "tiny.npz"), train_sizes=[1.0],
                         epochs=1, batch_size=16)
    raw["early_stopping"] = None
    raw["seeds"] = 1
    raw["arms"] = ["scratch", "linear_probe"]
    return raw


def test_imagenet_examples_are_the_documented_study():
    vgg16, mobilenet = (yaml.safe_load(p.read_text()) for p in IMAGENET_EXAMPLES)
    for raw, application in ((vgg16, "VGG16"), (mobilenet, "MobileNetV3Small")):
        experiment = load_experiment(raw).config
        assert experiment["model"]["application"] == application
        source = experiment["sources"][0]
        assert source["pretrained"] and source["task"] is None
        assert source["model"]["weights"] == "imagenet"
        assert experiment["model"]["weights"] is None
        assert experiment["target"]["task"] == "keras:cifar10"
        assert experiment["target"]["train_sizes"] == [0.01, 0.1, 1.0]
        assert experiment["arms"] == ["scratch", "linear_probe", "fine_tune", "lp_ft"]
        assert experiment["seeds"] == [0, 1, 2]


@pytest.mark.parametrize("path", IMAGENET_EXAMPLES, ids=lambda p: p.stem)
def test_imagenet_example_runs_offline(path, tmp_path):
    raw = offline(path, tmp_path)
    results = keras_tl.evaluate(raw, out=str(tmp_path / "run"))

    trials = results.trials
    assert [(t["arm"], t["status"]) for t in trials] == [
        ("scratch", "ok"), ("linear_probe", "ok")
    ]
    transfer = trials[1]["transfer"]
    assert len(transfer["copied"]) > 10  # the backbone's layers, head excluded
    assert "head" not in transfer["copied"]
    # The backbone has no source task: source-side metrics are not made up.
    assert all(t["source_metrics"] is None for t in trials)
    assert results.summary["retention"] == [] and results.summary["stream"] == []
    assert results.context["sources"][0]["task"] is None
    assert any("not applicable" in note for note in results.context["notes"])
    assert "not applicable" in render_markdown(results)
