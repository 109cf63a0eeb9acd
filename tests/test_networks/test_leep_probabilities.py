"""LEEP of a source whose head already outputs probabilities is not squashed twice.

The same weights are built with a linear head (logits, softmax applied by keras-tl)
and with every way Keras has of ending in a softmax or sigmoid; all must give the
LEEP of a NumPy oracle written from the paper, whatever KERAS_BACKEND runs them.
"""

import keras
import numpy as np
import pytest

from keras_tl.measure.features import output_activation, source_probabilities
from keras_tl.measure.scoring import score_transfer

NUM_SAMPLES, NUM_INPUTS, NUM_HIDDEN, NUM_SOURCE_CLASSES = 150, 6, 12, 5


# ---------------------------------------------------------------------------------
# Oracle, written from Nguyen et al. (2020) independently of keras_tl


def paper_leep(theta, labels):
    """LEEP (Nguyen, Hassner, Seeger and Archambeau, ICML 2020), Section 3.

    theta[i, z]: the source model's probability of source class z on target input
    x_i. P(y, z) = 1/n sum_{i: y_i = y} theta[i, z]; P(z) = sum_y P(y, z);
    P(y | z) = P(y, z) / P(z); LEEP = 1/n sum_i log(sum_z P(y_i | z) theta[i, z]).
    """
    n, num_source = theta.shape
    target_classes = sorted(set(int(label) for label in labels))
    joint = {(y, z): 0.0 for y in target_classes for z in range(num_source)}
    for i in range(n):
        for z in range(num_source):
            joint[int(labels[i]), z] += theta[i, z] / n
    marginal = [sum(joint[y, z] for y in target_classes) for z in range(num_source)]
    total = 0.0
    for i in range(n):
        expected = sum(
            joint[int(labels[i]), z] / marginal[z] * theta[i, z]
            for z in range(num_source)
            if marginal[z] > 0
        )
        total += np.log(expected)
    return total / n


def numpy_softmax(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def numpy_sigmoid(logits):
    return 1.0 / (1.0 + np.exp(-logits))


# ---------------------------------------------------------------------------------
# One set of weights, many heads


def weights(num_outputs, seed=0):
    rng = np.random.default_rng(seed)
    return [
        rng.normal(size=(NUM_INPUTS, NUM_HIDDEN)).astype("float32") / np.sqrt(NUM_INPUTS),
        rng.normal(scale=0.1, size=NUM_HIDDEN).astype("float32"),
        (3.0 * rng.normal(size=(NUM_HIDDEN, num_outputs)) / np.sqrt(NUM_HIDDEN)).astype(
            "float32"
        ),
        rng.normal(scale=0.1, size=num_outputs).astype("float32"),
    ]


def numpy_logits(x, values):
    w1, b1, w2, b2 = (v.astype("float64") for v in values)
    return np.maximum(x.astype("float64") @ w1 + b1, 0.0) @ w2 + b2


def target_data(num_outputs, seed=1):
    """Inputs and 3-class target labels that follow the source's argmax, with noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(NUM_SAMPLES, NUM_INPUTS)).astype("float32")
    logits = numpy_logits(x, weights(num_outputs))
    source_class = (logits[:, 0] > 0).astype(int) if num_outputs == 1 else logits.argmax(1)
    noise = rng.integers(0, 3, NUM_SAMPLES)
    labels = np.where(rng.random(NUM_SAMPLES) < 0.8, source_class % 3, noise)
    return x, labels


class SubclassedSoftmax(keras.Model):
    """A subclassed model: no graph to read, its outputs must speak for it."""

    def __init__(self, num_outputs):
        super().__init__()
        self.hidden = keras.layers.Dense(NUM_HIDDEN, activation="relu")
        self.out = keras.layers.Dense(num_outputs)

    def call(self, inputs):
        return keras.ops.softmax(self.out(self.hidden(inputs)), axis=-1)


def build(head, num_outputs, tmp_path=None):
    """The same two dense layers ending in `head`; the weights of `weights()`."""
    if head == "subclassed":
        model = SubclassedSoftmax(num_outputs)
        model(np.zeros((1, NUM_INPUTS), "float32"))
        model.hidden.set_weights(weights(num_outputs)[:2])
        model.out.set_weights(weights(num_outputs)[2:])
        return model
    if head == "sequential":
        model = keras.Sequential([
            keras.Input((NUM_INPUTS,)),
            keras.layers.Dense(NUM_HIDDEN, activation="relu"),
            keras.layers.Dense(num_outputs, activation="softmax"),
        ])
        model.set_weights(weights(num_outputs))
        return model
    if head == "nested":
        inner = build("sequential", num_outputs)
        inputs = keras.Input((NUM_INPUTS,))
        return keras.Model(inputs, inner(inputs))
    inputs = keras.Input((NUM_INPUTS,))
    hidden = keras.layers.Dense(NUM_HIDDEN, activation="relu")(inputs)
    dense_activation = {
        "dense_softmax": "softmax",
        "dense_sigmoid": "sigmoid",
        "dense_log_softmax": "log_softmax",
        "saved_dense_softmax": "softmax",
    }.get(head)
    outputs = keras.layers.Dense(num_outputs, activation=dense_activation)(hidden)
    if head == "activation_softmax":
        outputs = keras.layers.Activation("softmax")(outputs)
    elif head == "activation_sigmoid":
        outputs = keras.layers.Activation("sigmoid")(outputs)
    elif head == "softmax_layer":
        outputs = keras.layers.Softmax()(outputs)
    elif head == "lambda_softmax":
        outputs = keras.layers.Lambda(lambda t: keras.ops.softmax(t, axis=-1))(outputs)
    model = keras.Model(inputs, outputs)
    model.set_weights(weights(num_outputs))
    if head == "saved_dense_softmax":
        path = tmp_path / "pretrained.keras"
        model.save(path)
        model = keras.models.load_model(path)
    return model


def keras_tl_leep(model, x, labels, source_kind="classification"):
    return score_transfer(model, source_kind, None, x, labels, "classification", ["leep"])[
        "leep"
    ]


SOFTMAX_HEADS = [
    "dense_softmax",
    "activation_softmax",
    "softmax_layer",
    "dense_log_softmax",
    "sequential",
    "nested",
    "saved_dense_softmax",
    "lambda_softmax",
    "subclassed",
]


# ---------------------------------------------------------------------------------
# Multi-class sources


@pytest.mark.parametrize("head", SOFTMAX_HEADS)
def test_a_softmax_head_scores_the_same_leep_as_its_logits(head, tmp_path):
    x, labels = target_data(NUM_SOURCE_CLASSES)
    with_logits = keras_tl_leep(build("logits", NUM_SOURCE_CLASSES), x, labels)
    with_softmax = keras_tl_leep(build(head, NUM_SOURCE_CLASSES, tmp_path), x, labels)

    assert with_softmax == pytest.approx(with_logits, abs=1e-6)


@pytest.mark.parametrize("head", ["logits", "dense_softmax", "softmax_layer", "subclassed"])
def test_leep_agrees_with_the_paper_formula_on_the_networks_own_probabilities(head):
    x, labels = target_data(NUM_SOURCE_CLASSES)
    theta = numpy_softmax(numpy_logits(x, weights(NUM_SOURCE_CLASSES)))
    expected = paper_leep(theta, labels)

    assert keras_tl_leep(build(head, NUM_SOURCE_CLASSES), x, labels) == pytest.approx(
        expected, abs=1e-6
    )
    # The bug this guards against: a second softmax over the probabilities flattens
    # them and moves LEEP well away from the paper's value on these data.
    assert paper_leep(numpy_softmax(theta), labels) < expected - 0.05


@pytest.mark.parametrize(
    "head, expected",
    [
        ("logits", None),
        ("dense_softmax", "softmax"),
        ("activation_softmax", "softmax"),
        ("softmax_layer", "softmax"),
        ("dense_log_softmax", "log_softmax"),
        ("dense_sigmoid", "sigmoid"),
        ("activation_sigmoid", "sigmoid"),
        ("sequential", "softmax"),
        ("nested", "softmax"),
        ("lambda_softmax", None),
        ("subclassed", None),
    ],
)
def test_output_activation_reads_the_head_from_the_graph(head, expected):
    assert output_activation(build(head, NUM_SOURCE_CLASSES)) == expected


def test_logits_that_happen_to_be_small_are_still_logits():
    # Logits in [0, 1] whose rows do not sum to 1 are not mistaken for probabilities.
    x, _ = target_data(NUM_SOURCE_CLASSES)
    model = build("logits", NUM_SOURCE_CLASSES)
    model.set_weights([w * 0.01 for w in weights(NUM_SOURCE_CLASSES)])
    probabilities = source_probabilities(model, "classification", x)
    logits = numpy_logits(x, [w * 0.01 for w in weights(NUM_SOURCE_CLASSES)])

    np.testing.assert_allclose(probabilities, numpy_softmax(logits), atol=1e-6)


def test_a_multi_column_sigmoid_head_gives_rows_that_sum_to_one():
    x, _ = target_data(NUM_SOURCE_CLASSES)
    probabilities = source_probabilities(
        build("dense_sigmoid", NUM_SOURCE_CLASSES), "classification", x
    )
    independent = numpy_sigmoid(numpy_logits(x, weights(NUM_SOURCE_CLASSES)))

    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-12)
    # Same ratios between classes as the independent sigmoid probabilities.
    np.testing.assert_allclose(
        probabilities / probabilities[:, :1], independent / independent[:, :1], rtol=1e-5
    )


# ---------------------------------------------------------------------------------
# Binary sources: one output column


@pytest.mark.parametrize("head", ["dense_sigmoid", "activation_sigmoid"])
def test_a_sigmoid_head_scores_the_same_leep_as_its_logit(head):
    x, labels = target_data(1)
    with_logit = keras_tl_leep(build("logits", 1), x, labels, "binary")
    with_sigmoid = keras_tl_leep(build(head, 1), x, labels, "binary")
    positive = numpy_sigmoid(numpy_logits(x, weights(1))[:, 0])
    expected = paper_leep(np.stack([1.0 - positive, positive], axis=1), labels)

    assert with_sigmoid == pytest.approx(with_logit, abs=1e-6)
    assert with_sigmoid == pytest.approx(expected, abs=1e-6)
