"""LEEP and NCE: scores of the source model's predictions on the target inputs.

Part of `keras_tl.scores.transferability` (import it from there). Both read the
source's probabilities or predicted classes, never features; see
docs/scores-notes.md ("LEEP and NCE").
"""

import numpy as np

from keras_tl.scores._score_inputs import (
    class_labels,
    class_sums,
    probabilities,
    source_labels,
)


def leep(source_probabilities, labels):
    """Log expected empirical prediction of the source classifier.

    LEEP (Nguyen et al., "LEEP: A New Measure to Evaluate Transferability of
    Learned Representations", ICML 2020) builds the empirical conditional
    distribution of target labels given source classes, `P(y | z)`, from the
    source model's softmax outputs `theta` on the target inputs, and scores the
    average log-likelihood of the "dummy" classifier `sum_z P(y | z) theta_z`:
    `LEEP = 1/N sum_i ln sum_z P(y_i | z) theta_iz`.

    Higher is better; LEEP <= 0, and 0 means the source classes determine the
    target labels exactly.

    Args:
        source_probabilities: array-like or tensor of shape (N, Cs). The source
            model's class probabilities (softmax outputs, rows summing to 1) on
            the target inputs: predictions, not features.
        labels: array-like or tensor of shape (N,). Target class indices 0..C-1.

    Returns:
        The LEEP score, a Python float.

    Example:

    >>> probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]])
    >>> round(leep(probabilities, np.array([0, 0, 1, 1])), 4)
    -0.3426
    """
    theta = probabilities(source_probabilities)
    labels, num_classes = class_labels(labels, len(theta), "source_probabilities")
    joint = class_sums(theta, labels, num_classes) / len(theta)
    marginal = joint.sum(axis=0)
    conditional = np.divide(
        joint, marginal, out=np.zeros_like(joint), where=marginal > 0
    )
    expected_likelihood = np.einsum("iz,iz->i", theta, conditional[labels])
    return float(np.mean(np.log(expected_likelihood)))


def nce(source_predictions, labels):
    """Negative conditional entropy of the target labels given the source labels.

    NCE (Tran et al., "Transferability and Hardness of Supervised Classification
    Tasks", ICCV 2019) takes the source model's predicted class `z_i` for each
    target input and measures how well it determines the target label:
    `NCE = sum_{y,z} P(y, z) ln P(y | z) = -H(Y | Z)`, with empirical
    probabilities.

    Higher is better; `-ln C <= NCE <= 0`, and 0 means every source class maps to
    a single target class.

    Args:
        source_predictions: array-like or tensor. Either the source model's
            predicted class indices, shape (N,), or its probabilities or logits,
            shape (N, Cs), of which the argmax is taken: predictions, not features.
        labels: array-like or tensor of shape (N,). Target class indices 0..C-1.

    Returns:
        The NCE score, a Python float.

    Example:

    >>> source = np.array([0, 0, 1, 1])
    >>> nce(source, np.array([0, 0, 1, 1]))
    0.0
    """
    predicted = source_labels(source_predictions)
    labels, num_classes = class_labels(labels, len(predicted), "source_predictions")
    _, predicted = np.unique(predicted, return_inverse=True)
    num_source_classes = int(predicted.max()) + 1
    counts = np.bincount(
        labels * num_source_classes + predicted,
        minlength=num_classes * num_source_classes,
    ).reshape(num_classes, num_source_classes)
    joint = counts / len(labels)
    marginal = np.broadcast_to(joint.sum(axis=0), joint.shape)
    seen = joint > 0
    return float(np.sum(joint[seen] * np.log(joint[seen] / marginal[seen])))
