"""Transferability scores of a source model on a target task."""

import keras
import numpy as np

from keras_tl.errors import ConfigError, DataError
from keras_tl.measure.features import feature_layer, layer_features, source_probabilities
from keras_tl.scores.transferability import SCORES

DEFAULT_SCORES = {
    "classification": ("logme", "leep", "nce", "h_score"),
    "binary": ("logme", "leep", "nce", "h_score"),
    "regression": ("logme",),
}


def default_scores(kind):
    return list(DEFAULT_SCORES[kind])


def score_transfer(source_model, source_kind, layer_name, x, y, target_kind, names):
    """Computes transferability scores of a source model for target data.

    Args:
        source_model: keras.Model. The source network with its own head.
        source_kind: str or None. The source task's kind (predictions scores need
            `"classification"` or `"binary"`; None: a backbone without a source
            task, whose head predicts nothing of its own).
        layer_name: str or None. The layer whose activations are the features;
            None: feature scores are None (e.g. a subclassed model, which has no
            layer graph to cut).
        x: array. Target inputs (the target train split).
        y: array. Target labels.
        target_kind: str. The target task's kind.
        names: list of str. Keys of `SCORES`.

    Returns:
        A dict of score name to float, or None where the score does not apply
        (prediction scores of a regression source or of one without a task;
        class scores of a regression target).

    Example:

    >>> score_transfer(source, "classification", "fc1", x, y, "binary", ["logme", "leep"])
    {'logme': -0.41, 'leep': -0.52}
    """
    features = probabilities = None
    labels = np.asarray(y).reshape(len(y), -1) if target_kind == "regression" else np.asarray(y).reshape(-1)
    results = {}
    for name in names:
        spec = SCORES[name]
        if target_kind == "regression" and name != "logme":
            results[name] = None
        elif spec.needs == "predictions":
            if source_kind not in ("classification", "binary"):
                results[name] = None
                continue
            if probabilities is None:
                probabilities = source_probabilities(source_model, source_kind, x)
            results[name] = spec.function(probabilities, labels)
        elif layer_name is None:
            results[name] = None
        else:
            if features is None:
                features = layer_features(source_model, layer_name, x)
            if name == "logme":
                kind = "regression" if target_kind == "regression" else "classification"
                results[name] = spec.function(features, labels, kind=kind)
            else:
                try:
                    results[name] = spec.function(features, labels)
                except DataError:
                    # Degenerate for these features (e.g. h_score when they span
                    # every sample direction): not a number to rank.
                    results[name] = None
    return results


def score_source(model, source_task, target_task, layer=None, names=None, epochs=10,
                 batch_size=64, learning_rate=0.003, seed=0, unsafe_load=False):
    """Scores a source model for a target task without any fine-tuning.

    Args:
        model: str or keras.Model. A `.keras` file or a trained model (used as
            is), or a builder name (`small_cnn`, `mlp`, `module:function`), which
            is trained on `source_task` first.
        source_task: str. The task the source model was (or is) trained on; its
            head width must match the model's output.
        target_task: str. The task to score for; its train split is scored.
        layer: str or None. The feature layer; default: the input of the head.
        names: list of str or None. Scores; default: every score the target's
            kind supports.
        epochs, batch_size, learning_rate, seed: training of a builder source.
        unsafe_load: bool. Load a `.keras` file that holds code; only for files
            you trust.

    Returns:
        A dict with `layer`, `num_samples` and `scores` (name -> float or None).

    Example:

    >>> keras_tl.measure.scoring.score_source("small_cnn", "digits", "digits:parity")["scores"]
    """
    from keras_tl.data.registry import load_task
    from keras_tl.networks.network import Network, load_model_file
    from keras_tl.training.fit import FitSettings, compile_model, fit

    source = load_task(source_task)
    target = load_task(target_task)
    if isinstance(model, str) and model.endswith(".keras"):
        model = load_model_file(model, unsafe_load)
    elif not isinstance(model, keras.Model):
        model = Network(model, unsafe_load=unsafe_load).build(source.input_shape, source.num_outputs, seed)
        compile_model(model, source.kind, "adam", learning_rate)
        fit(model, source, FitSettings(epochs=epochs, batch_size=batch_size), seed)
    width = int(model.outputs[0].shape[-1])
    if width != source.num_outputs:
        raise ConfigError(
            f"The model has {width} outputs but source task {source.name!r} has "
            f"{source.num_outputs}. Give the task the model was trained on."
        )
    if tuple(model.inputs[0].shape[1:]) != target.input_shape:
        raise ConfigError(
            f"The model takes inputs of shape {tuple(model.inputs[0].shape[1:])} but "
            f"task {target.name!r} has samples of shape {target.input_shape}."
        )
    names = default_scores(target.kind) if names is None else list(names)
    for name in names:
        if name not in SCORES:
            raise ConfigError(
                f"Unknown score {name!r}. Expected one of {', '.join(SCORES)}."
            )
    if layer is None:
        layer = feature_layer(model, [], 0)
    values = score_transfer(
        model, source.kind, layer, target.x_train, target.y_train, target.kind, names
    )
    return {"layer": layer, "num_samples": len(target.y_train), "scores": values}
