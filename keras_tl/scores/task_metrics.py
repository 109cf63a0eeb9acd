"""Task metrics, computed in NumPy from a model's outputs, with declared directions.

Keras trains with its own losses; reported numbers come from here so they are the
same code on every backend. Networks output logits (classification, binary) or
values (regression).
"""

import numpy as np

from keras_tl.errors import ConfigError

# Direction of every metric, declared once: every signed quantity uses it.
HIGHER_IS_BETTER = {
    "accuracy": True,
    "auc": True,
    "loss": False,
    "mae": False,
    "mse": False,
}

METRICS_BY_KIND = {
    "classification": ("accuracy", "loss"),
    "binary": ("accuracy", "auc", "loss"),
    "regression": ("mae", "mse", "loss"),
}

# The range a metric cannot leave; intervals are kept inside it. Unlisted: unbounded.
BOUNDS = {"accuracy": (0.0, 1.0), "auc": (0.0, 1.0)}

PRIMARY_METRIC = {"classification": "accuracy", "binary": "accuracy", "regression": "mae"}


def bounds_of(metric):
    """`(low, high)` for a bounded metric (accuracy, AUC), None for an unbounded one."""
    return BOUNDS.get(metric)


def higher_is_better(metric):
    """Whether larger values of `metric` are better."""
    if metric not in HIGHER_IS_BETTER:
        raise ConfigError(
            f"Unknown metric {metric!r}. Expected one of {', '.join(HIGHER_IS_BETTER)}."
        )
    return HIGHER_IS_BETTER[metric]


def _log_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _auc(labels, scores):
    """Area under the ROC curve by the rank (Mann-Whitney) formula, ties averaged."""
    from scipy.stats import rankdata

    positives = labels == 1
    num_positive, num_negative = positives.sum(), (~positives).sum()
    if num_positive == 0 or num_negative == 0:
        return None
    ranks = rankdata(scores)
    return float(
        (ranks[positives].sum() - num_positive * (num_positive + 1) / 2)
        / (num_positive * num_negative)
    )


def compute_metrics(kind, outputs, labels):
    """Computes every metric of a task kind from model outputs.

    Args:
        kind: str. `"classification"`, `"binary"` or `"regression"`.
        outputs: array. Logits `(N, C)` / `(N, 1)`, or regression outputs `(N, K)`.
        labels: array. Class indices `(N,)`, 0/1 `(N,)`, or targets `(N, K)`.

    Returns:
        A dict of metric name to float (`loss` is the training loss: mean cross
        entropy, or mean squared error for regression).
    """
    outputs = np.asarray(outputs, dtype="float64")
    if kind == "classification":
        labels = np.asarray(labels).astype(int).reshape(-1)
        log_probabilities = _log_softmax(outputs)
        return {
            "accuracy": float(np.mean(outputs.argmax(axis=1) == labels)),
            "loss": float(-np.mean(log_probabilities[np.arange(len(labels)), labels])),
        }
    if kind == "binary":
        labels = np.asarray(labels).astype(int).reshape(-1)
        logits = outputs.reshape(-1)
        # Numerically stable binary cross entropy from logits.
        loss = np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))
        return {
            "accuracy": float(np.mean((logits > 0).astype(int) == labels)),
            "auc": _auc(labels, logits),
            "loss": float(np.mean(loss)),
        }
    labels = np.asarray(labels, dtype="float64").reshape(outputs.shape)
    errors = outputs - labels
    mse = float(np.mean(errors**2))
    return {"mae": float(np.mean(np.abs(errors))), "mse": mse, "loss": mse}
