"""A model from a user's own Keras script, saved to .keras, is a pretrained source."""

import json

import keras

import keras_tl
from keras_tl.tasks import load_task


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
