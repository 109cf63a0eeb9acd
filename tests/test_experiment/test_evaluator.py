"""End-to-end tests of keras_tl.evaluate: results, run folders, pairing, failures."""

import csv
import hashlib
import inspect
import json
import os
import sqlite3

import keras
import numpy as np
import pytest

import keras_tl
import keras_tl.experiment.run
import keras_tl.experiment.trial
from keras_tl.config.schema import load_experiment
from keras_tl.data.registry import load_task
from keras_tl.errors import StoreError
from keras_tl.results.results import SCHEMA_VERSION
from keras_tl.results.summary import rebuild
from keras_tl.store import STORE_NAME

# Trains models end to end: the full suite (tox, CI) runs it; `-m "not slow"` skips it.
pytestmark = pytest.mark.slow

SEEDS = [0, 1]


@pytest.fixture(scope="module")
def tiny(tiny_experiment):
    """The tiny experiment of tests/conftest.py on a small CNN (3 arms, seeds 0 and 1:
    6 trials), with a source learning rate of 0.003 and a target one of 0.01."""
    return tiny_experiment(
        "tiny", model={"builder": "small_cnn"}, source={"learning_rate": 0.003},
        target={"learning_rate": 0.01},
    )


def _digest(array):
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny):
    """One tiny evaluation, recording what every target fit started from."""
    out = tmp_path_factory.mktemp("evaluate") / "run"
    fits, progress = [], []
    original = keras_tl.experiment.trial.train_target
    signature = inspect.signature(original)

    def recording_train_target(*args, **kwargs):
        arguments = signature.bind(*args, **kwargs).arguments
        task, model = arguments["task"], arguments["model"]
        fits.append(
            {
                "recipe": arguments["recipe"],
                "seed": arguments["seed"],
                "x_train": _digest(task.x_train),
                "y_train": task.y_train.tolist(),
                "head": [_digest(w) for w in model.get_layer("head").get_weights()],
            }
        )
        return original(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keras_tl.experiment.trial, "train_target", recording_train_target)
        results = keras_tl.evaluate(
            tiny,
            out=str(out),
            on_trial=lambda done, total, record: progress.append((done, total)),
        )
    keras.backend.clear_session()
    return {"out": out, "results": results, "fits": fits, "progress": progress}


def _read_json(path):
    with open(path) as file:
        return json.load(file)


def _finished_at(out):
    connection = sqlite3.connect(os.path.join(out, STORE_NAME))
    try:
        return dict(connection.execute("SELECT key, finished_at FROM trials"))
    finally:
        connection.close()


# What a run writes


def test_evaluate_writes_results_json_with_schema_config_and_provenance(tiny_run, tiny):
    data = _read_json(tiny_run["out"] / "results.json")
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["config"] == load_experiment(tiny).to_dict()
    provenance = data["provenance"]
    assert provenance["backend"] == keras.config.backend()
    assert provenance["keras_version"] == keras.__version__
    assert provenance["seeds"] == SEEDS
    assert provenance["keras_tl_version"] == keras_tl.__version__
    assert provenance["timestamp"]


def test_every_trial_finishes_ok_with_its_metrics(tiny_run, tiny):
    trials = _read_json(tiny_run["out"] / "results.json")["trials"]
    assert sorted((t["arm"], t["seed"]) for t in trials) == sorted(
        (arm, seed) for arm in tiny["arms"] for seed in SEEDS
    )
    for trial in trials:
        assert trial["status"] == "ok" and trial["error"] is None
        assert trial["epochs"] == 2
        assert trial["train_size"] == 20
        assert set(trial["test"]) == {"accuracy", "auc", "loss"}
        assert set(trial["val"]) == {"accuracy", "auc", "loss"}
        assert 0.0 <= trial["test"]["accuracy"] <= 1.0
        assert trial["wall_time"] >= 0
    depths = {t["arm"]: t["freeze_depth"] for t in trials}
    assert depths == {"scratch": 0, "fine_tune": 0, "linear_probe": 3}


def test_transfer_trials_record_what_was_copied_and_the_source_retention(tiny_run):
    trials = tiny_run["results"].trials
    for trial in trials:
        if trial["arm"] == "scratch":
            assert trial["transfer"] is None
            continue
        assert trial["source"] == "digits"
        assert trial["transfer"]["copied"] == ["conv1", "conv2", "fc1"]
        assert set(trial["source_metrics"]["before"]) == {"accuracy", "loss"}
        assert set(trial["source_metrics"]["after"]) == {"accuracy", "loss"}
    # A linear probe never changes the trunk: the source task is not forgotten at all.
    for trial in trials:
        if trial["arm"] == "linear_probe":
            assert trial["source_metrics"]["after"] == trial["source_metrics"]["before"]


def test_summary_has_gains_against_scratch_with_adjusted_p_values_and_verdicts(
    tiny_run, tiny,
):
    summary = _read_json(tiny_run["out"] / "results.json")["summary"]
    assert summary["primary_metric"] == "accuracy"
    assert summary["num_trials"] == 6 and summary["num_failed"] == 0
    gains = summary["gains"]
    assert [g["arm"] for g in gains] == ["fine_tune", "linear_probe"]
    for gain in gains:
        assert gain["seeds"] == SEEDS
        assert "p_value_adjusted" in gain
        # Two paired seeds: the exact sign-flip test gives p = 1 (differences of
        # mixed sign or one zero) or at least 2 / 2**2 = 0.5, so never a decision.
        assert gain["p_value"] >= 0.5
        assert gain["p_value"] <= gain["p_value_adjusted"] <= 1.0
        assert gain["verdict"] == "inconclusive"
        assert "ruled out" in gain["explanation"]
    conditions = {c["arm"]: c for c in summary["conditions"]}
    assert set(conditions) == set(tiny["arms"])
    assert all(c["n"] == 2 for c in conditions.values())


def test_gain_means_are_paired_differences_to_scratch(tiny_run):
    results = tiny_run["results"]
    accuracy = {(t["arm"], t["seed"]): t["test"]["accuracy"] for t in results.trials}
    for gain in results.summary["gains"]:
        differences = [
            accuracy[(gain["arm"], s)] - accuracy[("scratch", s)] for s in SEEDS
        ]
        assert gain["mean"] == pytest.approx(np.mean(differences), abs=1e-12)


def test_trials_csv_has_one_row_per_trial(tiny_run, tiny):
    with open(tiny_run["out"] / "trials.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 6
    assert sorted((row["arm"], int(row["seed"])) for row in rows) == sorted(
        (arm, seed) for arm in tiny["arms"] for seed in SEEDS
    )
    assert all(row["status"] == "ok" for row in rows)
    assert all(0.0 <= float(row["test_accuracy"]) <= 1.0 for row in rows)


def test_progress_is_reported_after_every_trial(tiny_run):
    assert tiny_run["progress"] == [(done, 6) for done in range(1, 7)]


# Pairing by seed


def test_arms_with_the_same_seed_train_on_the_same_subset_from_the_same_head(
    tiny_run, tiny
):
    fits = tiny_run["fits"]
    assert sorted((f["recipe"], f["seed"]) for f in fits) == sorted(
        (arm, seed) for arm in tiny["arms"] for seed in SEEDS
    )
    for seed in SEEDS:
        same_seed = [f for f in fits if f["seed"] == seed]
        assert len({f["x_train"] for f in same_seed}) == 1
        assert len({json.dumps(f["y_train"]) for f in same_seed}) == 1
        assert len({json.dumps(f["head"]) for f in same_seed}) == 1
    # Different seeds draw different subsets.
    assert len({f["x_train"] for f in fits}) == len(SEEDS)


def test_the_training_subset_is_the_tasks_subsample_for_the_seed(tiny_run):
    task = load_task("digits:parity")
    for fit_record in tiny_run["fits"]:
        subset = task.subsample(20, seed=fit_record["seed"])
        assert fit_record["x_train"] == _digest(subset.x_train)
        assert fit_record["y_train"] == subset.y_train.tolist()
    for trial in tiny_run["results"].trials:
        assert trial["train_size"] == len(
            task.subsample(20, seed=trial["seed"]).y_train
        )


# Run folders: resume, refuse, rebuild


def test_rerunning_in_the_same_folder_resumes_without_training(tiny_run, tiny, monkeypatch):
    out = tiny_run["out"]
    finished_before = _finished_at(out)
    calls = []

    def must_not_run(*args, **kwargs):
        calls.append(args)
        raise AssertionError("training on resume")

    monkeypatch.setattr(keras_tl.experiment.run, "run_trial", must_not_run)
    monkeypatch.setattr(keras_tl.experiment.sources, "fit", must_not_run)  # no source training
    resumed = keras_tl.evaluate(tiny, out=str(out))
    assert calls == []
    assert _finished_at(out) == finished_before
    assert len(finished_before) == 6
    assert sorted(resumed.trials, key=lambda t: t["key"]) == sorted(
        tiny_run["results"].trials, key=lambda t: t["key"]
    )
    assert resumed.summary == tiny_run["results"].summary


def test_a_different_experiment_in_the_same_folder_raises_store_error(tiny_run, tiny):
    out = tiny_run["out"]
    results_before = (out / "results.json").read_bytes()
    finished_before = _finished_at(out)
    other = {**tiny, "name": "other", "seeds": 3}
    with pytest.raises(
        StoreError, match="holds results of another experiment \\('tiny'"
    ):
        keras_tl.evaluate(other, out=str(out))
    assert (out / "results.json").read_bytes() == results_before
    assert _finished_at(out) == finished_before


def test_rebuild_reproduces_the_summary_from_the_store(tiny_run):
    rebuilt = rebuild(str(tiny_run["out"]))
    assert rebuilt.summary == tiny_run["results"].summary
    assert rebuilt.config == tiny_run["results"].config
    assert _read_json(tiny_run["out"] / "results.json")["summary"] == rebuilt.summary


def test_rebuild_of_a_folder_without_a_store_raises_store_error(tmp_path):
    with pytest.raises(StoreError, match=f"holds no {STORE_NAME}"):
        rebuild(str(tmp_path))


def test_a_non_empty_folder_without_a_store_is_refused(tmp_path, tiny):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="exists and is not empty"):
        keras_tl.evaluate(tiny, out=str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


# Failures are recorded, not fatal


@pytest.fixture(scope="module")
def digit_value_task(tmp_path_factory):
    """A regression task on the digits images: predict the digit's value."""
    digits = load_task("digits")
    path = tmp_path_factory.mktemp("tasks") / "digit_value.npz"
    np.savez(
        path,
        kind=np.array("regression"),
        **{
            f"{array}_{split}": values.astype("float32")
            for split in ("train", "val", "test")
            for array, values in zip("xy", digits.split(split))
        },
    )
    return f"npz:{path}"


def test_a_diverging_trial_is_recorded_as_failed_and_the_run_finishes(
    tmp_path, digit_value_task, tiny
):
    # Squared error at learning rate 1e6 grows geometrically (even through dead
    # ReLUs, via the head's bias), so the loss overflows within the first epoch.
    diverging = {
        **tiny,
        "name": "diverging",
        "target": {
            **tiny["target"],
            "task": digit_value_task,
            "train_sizes": [100],
            "epochs": 2,
            "optimizer": "sgd",
            "learning_rate": 1e6,
        },
        "arms": ["scratch"],
        "seeds": 2,
    }
    out = tmp_path / "run"
    results = keras_tl.evaluate(diverging, out=str(out))
    assert len(results.trials) == 2
    for trial in results.trials:
        assert trial["status"] == "failed"
        assert trial["error"] == "non-finite loss at epoch 1"
    data = _read_json(out / "results.json")
    assert data["summary"]["num_failed"] == 2
    (condition,) = data["summary"]["conditions"]
    assert condition["n"] == 0
    assert condition["failures"] == [
        {"seed": seed, "error": "non-finite loss at epoch 1"} for seed in SEEDS
    ]
    with open(out / "trials.csv", newline="") as file:
        assert [row["status"] for row in csv.DictReader(file)] == ["failed"] * 2


def test_a_trial_whose_model_outputs_nan_is_recorded_as_failed(tmp_path, tiny, monkeypatch):
    # A huge learning rate can leave a finite training loss but a model whose
    # outputs are inf / NaN (e.g. two batches at lr 1e6). Simulated exactly here:
    # the second seed's trained head gets a NaN bias.
    original = keras_tl.experiment.trial.train_target
    signature = inspect.signature(original)

    def train_then_break_seed_1(*args, **kwargs):
        model, epochs = original(*args, **kwargs)
        if signature.bind(*args, **kwargs).arguments["seed"] == 1:
            kernel, bias = model.get_layer("head").get_weights()
            model.get_layer("head").set_weights([kernel, np.full_like(bias, np.nan)])
        return model, epochs

    monkeypatch.setattr(keras_tl.experiment.trial, "train_target", train_then_break_seed_1)
    out = tmp_path / "run"
    results = keras_tl.evaluate({**tiny, "arms": ["scratch"], "seeds": 3}, out=str(out))
    status = {t["seed"]: t["status"] for t in results.trials}
    assert status == {0: "ok", 1: "failed", 2: "ok"}
    failed = next(t for t in results.trials if t["seed"] == 1)
    assert "non-finite" in failed["error"]
    summary = _read_json(out / "results.json")["summary"]
    assert summary["num_failed"] == 1
    assert summary["conditions"][0]["n"] == 2


def test_sources_trained_through_a_pool_equal_sources_trained_alone(tiny):
    from keras_tl.experiment.plan import plan
    from keras_tl.experiment.sources import SourceModels
    from keras_tl.training.cache import ModelPool

    the_plan = plan(load_experiment({**tiny, "scores": []}))
    alone = SourceModels(the_plan)
    pooled = SourceModels(the_plan, pool=ModelPool())
    first, first_metrics = pooled.trained(0)
    first_weights = [w.copy() for w in first.get_weights()]
    second, _ = pooled.trained(1)  # Trains on the same pooled model as seed 0.
    for seed, model in ((0, first), (1, second)):
        expected, _ = alone.trained(seed)
        for received, wanted in zip(model.get_weights(), expected.get_weights()):
            np.testing.assert_allclose(received, wanted, rtol=1e-6, atol=1e-7)
    assert first_metrics == pytest.approx(alone.trained(0)[1], rel=1e-6)
    # The seed-0 source kept its own weights after the pool trained seed 1.
    for received, wanted in zip(first.get_weights(), first_weights):
        np.testing.assert_array_equal(received, wanted)


FREEZE_BY_NAME = {
    "name": "freeze_by_name",
    "model": {"builder": "small_cnn"},
    "source": {"task": "digits:0-4", "epochs": 1, "batch_size": 64},
    "target": {"task": "digits:5-9", "train_sizes": [20], "epochs": 2, "batch_size": 10,
               "learning_rate": 0.01},
    "arms": ["scratch", "fine_tune"],
    "freeze": {"layers": "conv.*"},
    "seeds": [1],
    "scores": [],
}


def test_freeze_layers_regex_freezes_exactly_the_matching_layers(tmp_path):
    """`freeze: {layers: REGEX}`: conv1 and conv2 keep the source's weights, fc1 trains."""
    original_transfer = keras_tl.experiment.trial.transfer_weights
    original_train = keras_tl.experiment.trial.train_target
    signature = inspect.signature(original_train)
    source_weights, fits = {}, []

    def recording_transfer(source, target, *args, **kwargs):
        names = [layer.name for layer in source.layers]
        source_weights.clear()
        source_weights.update({
            name: [np.array(w) for w in source.get_layer(name).get_weights()]
            for name in ("conv1", "conv2", "fc1") if name in names
        })
        return original_transfer(source, target, *args, **kwargs)

    def recording_train_target(*args, **kwargs):
        recipe = signature.bind(*args, **kwargs).arguments["recipe"]
        source = {name: list(w) for name, w in source_weights.items()}
        model, epochs = original_train(*args, **kwargs)
        trained = {name: [np.array(w) for w in model.get_layer(name).get_weights()]
                   for name in ("conv1", "conv2", "fc1")}
        fits.append({"recipe": recipe, "source": source, "trained": trained})
        return model, epochs

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keras_tl.experiment.trial, "transfer_weights", recording_transfer)
        patch.setattr(keras_tl.experiment.trial, "train_target", recording_train_target)
        results = keras_tl.evaluate(FREEZE_BY_NAME, out=str(tmp_path / "run"))
    keras.backend.clear_session()

    fine_tune = next(fit for fit in fits if fit["recipe"] == "fine_tune")
    for name in ("conv1", "conv2"):
        for source, trained in zip(fine_tune["source"][name], fine_tune["trained"][name]):
            np.testing.assert_array_equal(trained, source)
    assert any(not np.array_equal(trained, source) for source, trained
               in zip(fine_tune["source"]["fc1"], fine_tune["trained"]["fc1"]))

    trials = {t["arm"]: t for t in results.trials}
    assert all(t["status"] == "ok" for t in results.trials)
    assert trials["fine_tune"]["frozen"] == ["conv1", "conv2"]
    assert trials["fine_tune"]["freeze_depth"] == 2
    assert trials["scratch"]["frozen"] == []
    assert results.config["freeze"] == {"layers": "conv.*"}
    assert results.config["freeze_depths"] is None
    # The report must not claim a depth sweep happened.
    assert results.summary["best_freeze_depth"] == []
    assert results.summary["curves"]["freeze_depth"] == []
    assert any("no depth was swept" in note for note in results.context["notes"])


def test_freeze_layers_regex_is_part_of_the_trial_key_and_checked_at_plan_time():
    from keras_tl.errors import ConfigError
    from keras_tl.experiment.plan import plan
    from keras_tl.experiment.spec import TrialSpec

    spec = TrialSpec("fine_tune", 2, 20, 1, "source")
    conv = load_experiment(FREEZE_BY_NAME)
    other = load_experiment({**FREEZE_BY_NAME, "freeze": {"layers": "conv1"}})
    assert spec.key(conv) != spec.key(other)
    scratch = TrialSpec("scratch", 0, 20, 1)
    assert scratch.key(conv) == scratch.key(other)

    nothing = load_experiment({**FREEZE_BY_NAME, "freeze": {"layers": "conv"}})
    with pytest.raises(ConfigError) as raised:
        plan(nothing)
    keras.backend.clear_session()
    message = str(raised.value)
    assert message.startswith("freeze.layers: 'conv' matches none of the layers")
    assert "['conv1', 'conv2', 'fc1']" in message
