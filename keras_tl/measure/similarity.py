"""Layer similarity of two Keras models: linear CKA between their layers' outputs."""

from keras_tl.data import ondisk
from keras_tl.errors import ConfigError, DataError, KerasTLError
from keras_tl.measure.features import takes_inputs_of
from keras_tl.networks.units import is_graph_model, transfer_units
from keras_tl.scores.similarity import Activations, activations_cka


def _layer_names(model, names, argument):
    if isinstance(names, str):
        names = [names]
    try:
        names = list(names)
    except TypeError:
        names = None
    if not names or not all(isinstance(name, str) for name in names):
        raise ConfigError(
            f"{argument} must be a non-empty list of layer names. Received: "
            f"{argument}={names!r}. Pass e.g. {argument}=['dense_1', 'dense_2']."
        )
    available = [layer.name for layer in model.layers]
    unknown = [name for name in names if name not in available]
    if unknown:
        raise DataError(
            f"Model {model.name!r} has no layer named {unknown}. Expected one of "
            f"{available}. Fix {argument} (see model.summary() for names)."
        )
    return names


def _activations(model, names, inputs, batch_size, argument):
    import keras

    from keras_tl.training.fit import predict

    outputs = [model.get_layer(name).output for name in names]
    extractor = keras.Model(model.inputs, outputs)
    predictions = predict(extractor, inputs, batch_size)
    if not isinstance(predictions, (list, tuple)):
        predictions = [predictions]
    return [
        Activations(values, f"{argument}[{name!r}]")
        for name, values in zip(names, predictions)
    ]


def layer_similarity(
    model_a,
    model_b,
    inputs,
    layers_a,
    layers_b=None,
    debiased=False,
    batch_size=256,
):
    """Linear CKA between the layers of two models on the same inputs.

    Builds a feature extractor `keras.Model(model.inputs, [layer outputs])` for
    each model, runs it once over `inputs` in inference mode, batch by batch, and
    returns the `len(layers_a) x len(layers_b)` matrix of `linear_cka` values
    (Kornblith et al., 2019). Typical use: compare a fine-tuned network with its source to see
    which layers kept the source representation. Each layer's activations are
    flattened per sample and held in memory in float64, so use a few hundred to
    a few thousand inputs.

    Args:
        model_a: `keras.Model`. A functional (or built Sequential) model.
        model_b: `keras.Model`. A second model accepting the same `inputs`.
        inputs: array of N samples, the inputs both models are evaluated on.
        layers_a: list of str. Layer names in `model_a`.
        layers_b: list of str or None. Layer names in `model_b`; defaults to
            `layers_a`.
        debiased: bool. Use the debiased CKA estimator. Defaults to `False`.
        batch_size: int. Inputs per model call. Defaults to `256`.

    Returns:
        A dict with keys `layers_a` (list of str), `layers_b` (list of str) and
        `matrix` (list of lists of float or None, `matrix[i][j]` the CKA between
        `layers_a[i]` and `layers_b[j]`).

    Example:

    >>> import keras, numpy as np
    >>> from keras_tl.scores.similarity import layer_similarity
    >>> inputs = keras.Input((4,))
    >>> hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    >>> model = keras.Model(inputs, keras.layers.Dense(2, name="head")(hidden))
    >>> x = np.random.default_rng(0).normal(size=(64, 4))
    >>> result = layer_similarity(model, model, x, ["hidden", "head"])
    >>> round(result["matrix"][0][0], 6)
    1.0
    """
    is_integer = isinstance(batch_size, int) and not isinstance(batch_size, bool)
    if not is_integer or batch_size < 1:
        raise ConfigError(
            f"batch_size must be a positive integer. Received: "
            f"batch_size={batch_size!r}. Use e.g. batch_size=256."
        )
    layers_a = _layer_names(model_a, layers_a, "layers_a")
    if layers_b is None:
        layers_b = layers_a
    layers_b = _layer_names(model_b, layers_b, "layers_b")
    activations_a = _activations(model_a, layers_a, inputs, batch_size, "layers_a")
    activations_b = _activations(model_b, layers_b, inputs, batch_size, "layers_b")
    matrix = [[activations_cka(a, b, debiased) for b in activations_b] for a in activations_a]
    return {"layers_a": layers_a, "layers_b": layers_b, "matrix": matrix}


def transferred_layer_cka(source_model, target_model, transferred, task):
    """Linear CKA, source vs trained target, at the end of every transferred unit,
    on (at most 500 of) the target test inputs: where fine-tuning moved features."""
    if not (is_graph_model(source_model) and is_graph_model(target_model)):
        return None  # A subclassed model's layers have no graph to read from.
    if not takes_inputs_of(source_model, task):
        return None
    layers = [unit_layers[-1] for _, unit_layers in transfer_units(transferred)]
    try:
        similarity = layer_similarity(
            source_model, target_model, ondisk.take_rows(task.x_test, slice(0, 500)),
            layers, layers,
        )
    except KerasTLError:
        return None
    return {layer: similarity["matrix"][i][i] for i, layer in enumerate(layers)}
