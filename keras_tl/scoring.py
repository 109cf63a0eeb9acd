"""Transferability scores of a source model for a target task.

Glue between models and the pure scores of `keras_tl.scores.transferability`:
feature scores (LogME, H-score, GBC, TransRate) read a source layer's activations
on the target inputs; prediction scores (LEEP, NCE) read the source model's class
probabilities on them. Regression targets support LogME only.
"""

import math

import keras
import numpy as np

from keras_tl.applications import transfer_units
from keras_tl import tasks
from keras_tl.errors import ConfigError, DataError
from keras_tl.models import HEAD
from keras_tl.scores.transferability import SCORES
from keras_tl.training import predict

DEFAULT_SCORES = {
    "classification": ("logme", "leep", "nce", "h_score"),
    "binary": ("logme", "leep", "nce", "h_score"),
    "regression": ("logme",),
}


def default_scores(kind):
    return list(DEFAULT_SCORES[kind])


def feature_layer(model, transferred, depth):
    """The layer whose outputs feed the scores for a trial frozen to `depth`.

    It is where the frozen part ends: the last layer of the `depth`-th transferred
    unit; with nothing or everything frozen, the input of the head (the whole
    trunk).
    """
    units = transfer_units(transferred)
    if 0 < depth < len(units):
        return units[depth - 1][1][-1]
    names = [layer.name for layer in model.layers]
    output_layer = model.get_layer(HEAD) if HEAD in names else model.layers[-1]
    head_input = output_layer.input
    for layer in reversed(model.layers):
        if layer is not output_layer and layer.output is head_input:
            return layer.name
    return model.layers[-2].name


def layer_features(model, layer_name, x):
    """Activations of `layer_name` on `x`, flattened per sample, as float64."""
    if layer_name not in [layer.name for layer in model.layers]:
        raise ConfigError(
            f"Unknown layer {layer_name!r}. Layers: "
            f"{[layer.name for layer in model.layers]}."
        )
    extractor = keras.Model(model.inputs[0], model.get_layer(layer_name).output)
    width = math.prod(extractor.outputs[0].shape[1:])
    if len(x) * width * 8 > tasks.MAX_IN_MEMORY_BYTES:
        raise DataError(
            f"Scores at layer {layer_name!r} need {len(x)} x {width} float64 features "
            f"({len(x) * width * 8 / 2**30:.1f} GiB), more than the "
            f"{tasks.MAX_IN_MEMORY_BYTES / 2**30:.1f} GiB keras-tl holds in memory. "
            f"Score a later layer (a deeper freeze depth, or --layer), fewer rows "
            f"(smaller train_sizes), or leave feature scores out (scores: [leep, nce])."
        )
    features = predict(extractor, x)
    return features.reshape(len(x), -1).astype("float64")


def source_probabilities(model, source_kind, x):
    """Class probabilities of a classification or binary source model on `x`."""
    logits = predict(model, x).astype("float64")
    if source_kind == "binary":
        positive = 1.0 / (1.0 + np.exp(-logits.reshape(-1)))
        return np.stack([1.0 - positive, positive], axis=1)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


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
                results[name] = spec.function(features, labels)
    return results


def score_source(model, source_task, target_task, layer=None, names=None, epochs=10,
                 batch_size=64, learning_rate=0.003, seed=0):
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

    Returns:
        A dict with `layer`, `num_samples` and `scores` (name -> float or None).

    Example:

    >>> keras_tl.scoring.score_source("small_cnn", "digits", "digits:parity")["scores"]
    """
    from keras_tl.models import Network, load_model_file
    from keras_tl.tasks import load_task
    from keras_tl.training import FitSettings, compile_model, fit

    source = load_task(source_task)
    target = load_task(target_task)
    if isinstance(model, str) and model.endswith(".keras"):
        model = load_model_file(model)
    elif not isinstance(model, keras.Model):
        model = Network(model).build(source.input_shape, source.num_outputs, seed)
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
