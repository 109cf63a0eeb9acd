"""A model from a user's own Keras script, saved to .keras, is a pretrained source."""

import json
import sys

import keras
import numpy as np
import pytest

import keras_tl
from keras_tl.data.registry import load_task
from keras_tl.report.markdown import render_markdown
from keras_tl.training.fit import FitSettings
from keras_tl.training.recipes import train_target

# Trains models end to end: the full suite (tox, CI) runs it; `-m "not slow"` skips it.
pytestmark = pytest.mark.slow


def _user_script_model(path):
    """What a user writes: a plain Keras CNN with BatchNormalization and Dropout."""
    keras.utils.set_random_seed(0)
    task = load_task("digits")
    model = keras.Sequential(
        [
            keras.Input(shape=(8, 8, 1)),
            keras.layers.Conv2D(8, 3, padding="same", name="conv"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.ReLU(name="relu"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dropout(0.3, name="drop"),
            keras.layers.Dense(32, activation="relu", name="dense"),
            keras.layers.Dense(10, name="logits"),
        ]
    )
    model.compile(
        "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    model.fit(task.x_train, task.y_train, epochs=2, batch_size=64, verbose=0)
    model.save(path)
    return model


def test_a_user_saved_model_is_a_pretrained_source(tmp_path):
    path = str(tmp_path / "user.keras")
    _user_script_model(path)
    experiment = {
        "name": "user_model",
        "model": {"file": path},
        "source": {"task": "digits", "model": {"file": path}, "pretrained": True},
        "target": {"task": "digits:parity", "train_sizes": [30], "epochs": 2,
                   "batch_size": 10},
        "arms": ["scratch", "fine_tune", "linear_probe"],
        "freeze_depths": [2],
        "seeds": 2,
    }
    results = keras_tl.evaluate(experiment, out=str(tmp_path / "run"))

    assert all(trial["status"] == "ok" for trial in results.trials)
    transfer = results.trials[-1]["transfer"]
    assert transfer["copied"] == ["conv", "bn", "dense"]
    retained = [t["source_metrics"] for t in results.trials if t["arm"] == "linear_probe"]
    before = retained[0]["before"]["accuracy"]
    # Everything transferred was frozen for the linear probe, BN statistics included,
    # so the source task's accuracy through the target trunk is unchanged.
    assert all(r["after"]["accuracy"] == before for r in retained)
    assert before > 0.5
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["config"]["sources"][0]["pretrained"] is True


USER_NETS = '''
import keras


class UserNet(keras.Model):
    """A subclassed model, as a user writes it: layers in __init__, wiring in call()."""

    def __init__(self, num_outputs, **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.Conv2D(8, 3, padding="same", name="conv")
        self.bn = keras.layers.BatchNormalization(name="bn")
        self.flatten = keras.layers.Flatten(name="flatten")
        self.drop = keras.layers.Dropout(0.2, name="drop")
        self.dense = keras.layers.Dense(16, activation="relu", name="dense")
        self.head = keras.layers.Dense(num_outputs, name="head")

    def call(self, inputs, training=False):
        x = keras.ops.relu(self.bn(self.conv(inputs), training=training))
        x = self.drop(self.flatten(x), training=training)
        return self.head(self.dense(x))


def build(input_shape, num_outputs):
    return UserNet(num_outputs, name="user_net")
'''


@pytest.fixture
def user_nets(tmp_path, monkeypatch):
    """A user's module `user_nets` (a subclassed keras.Model and its builder)."""
    (tmp_path / "user_nets.py").write_text(USER_NETS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "user_nets:build"
    sys.modules.pop("user_nets", None)


def test_a_subclassed_model_transfers_end_to_end_without_feature_cache(user_nets, tmp_path):
    experiment = {
        "name": "subclassed",
        "model": {"builder": user_nets},
        "source": {"task": "digits", "epochs": 2, "batch_size": 64},
        "target": {"task": "digits:parity", "train_sizes": [30], "epochs": 2,
                   "batch_size": 10},
        "arms": ["scratch", "fine_tune", "linear_probe"],
        "freeze_depths": [1],
        "scores": ["logme", "leep"],
        "seeds": 1,
    }
    results = keras_tl.evaluate(experiment, out=str(tmp_path / "run"))

    assert [(t["arm"], t["status"]) for t in results.trials] == [
        ("scratch", "ok"), ("fine_tune", "ok"), ("linear_probe", "ok")
    ]
    # Transferable layers come from model.layers order (the head excluded).
    assert results.context["transferable"] == ["conv", "bn", "dense"]
    assert any("subclassed" in note and "feature cache is disabled" in note
               and "prediction scores (LEEP, NCE) are" in note
               for note in results.context["notes"])
    assert "feature cache is disabled" in render_markdown(results)
    probe = results.trials[-1]
    # LEEP reads the source's predictions; LogME would read a layer's outputs.
    assert "feature scores need a layer graph" in probe["score_error"]
    assert probe["scores"]["logme"] is None and probe["scores"]["leep"] < 0
    # The linear probe froze every transferred layer, BN statistics included: the
    # source task's accuracy through the target trunk did not change.
    assert probe["source_metrics"]["after"] == probe["source_metrics"]["before"]


def test_frozen_layers_of_a_subclassed_model_do_not_move(user_nets):
    network = keras_tl.Network(user_nets)
    task = load_task("digits:parity").subsample(30, seed=0)
    model = network.build(task.input_shape, task.num_outputs, seed=0)
    before = {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers}
    settings = FitSettings(epochs=2, batch_size=10)
    trained, _ = train_target(model, task, "fine_tune", ["conv", "bn", "dense"], 2,
                              settings, seed=0)

    for name in ("conv", "bn"):  # the first two transferred units: frozen
        for old, new in zip(before[name], trained.get_layer(name).get_weights()):
            np.testing.assert_array_equal(old, new)
    for name in ("dense", "head"):
        assert any(not np.array_equal(old, new) for old, new in
                   zip(before[name], trained.get_layer(name).get_weights()))


def test_a_subclassed_model_instance_is_refused_with_the_fix(user_nets):
    import user_nets as module

    instance = module.build((8, 8, 1), 1)
    with pytest.raises(keras_tl.KerasTLError, match="Pass a function"):
        keras_tl.Network(instance)


def _model_with_code(path):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Lambda(lambda t: 2.0 * t, name="double")(inputs)
    x = keras.layers.Flatten(name="flat")(x)
    x = keras.layers.Dense(8, activation="relu", name="fc1")(x)
    keras.Model(inputs, keras.layers.Dense(10, name="logits")(x)).save(path)
    return str(path)


def test_a_model_holding_code_is_refused_unless_loading_is_unsafe(tmp_path, monkeypatch):
    path = _model_with_code(tmp_path / "lam.keras")
    with pytest.raises(keras_tl.ConfigError, match="contains code.*--unsafe-load"):
        keras_tl.Network(path)
    results = keras_tl.evaluate(
        {"model": path, "source": {"task": "digits", "epochs": 1},
         "target": {"task": "digits:parity", "train_sizes": [20], "epochs": 1},
         "arms": ["scratch", "fine_tune"], "seeds": 1, "scores": []},
        out=str(tmp_path / "run"), unsafe_load=True,
    )
    assert [trial["status"] for trial in results.trials] == ["ok", "ok"]
    built = keras_tl.Network(path, unsafe_load=True).build((8, 8, 1), 1, seed=0)
    assert built.get_layer("double").function(np.ones((1, 2))).tolist() == [[2.0, 2.0]]
