"""Continual-learning scores: average accuracy, backward / forward transfer, forgetting.

Tasks are learned one after another. `R` is the T x T matrix with `R[i, j]` the
metric on task `j` after training on task `i` (rows in training order). Following
GEM, every signed quantity is positive when transfer helps, except `forgetting`,
which is positive when the old (source) task got worse.

Reference:
    Lopez-Paz and Ranzato (2017), "Gradient Episodic Memory for Continual
        Learning", NeurIPS 2017.
"""

import math

import numpy as np

from keras_tl.errors import DataError

__all__ = [
    "average_accuracy",
    "backward_transfer",
    "forward_transfer",
    "forgetting",
]


def _as_matrix(R):
    """Returns `R` as a finite square float64 matrix with T >= 2, or raises."""
    try:
        matrix = np.asarray(R, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(
            f"R must be a square matrix of numbers. Received: R={R!r}. "
            "Pass R[i][j] = metric on task j after training on task i."
        ) from None
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2:
        raise DataError(
            f"R must be a T x T matrix with T >= 2. Received: shape {matrix.shape}. "
            "Pass one row per training stage and one column per task, for 2+ tasks."
        )
    if not np.all(np.isfinite(matrix)):
        raise DataError(
            f"R must contain finite numbers. Received: R={matrix.tolist()}. "
            "Re-run or drop the stages whose evaluation failed."
        )
    return matrix


def average_accuracy(R):
    """Average final metric over all tasks (ACC in GEM).

    `ACC = 1/T sum_j R[T-1, j]`: the metric on every task after the last training
    stage (Lopez-Paz and Ranzato, 2017). Despite the name, any metric works.

    Args:
        R: array-like of shape `(T, T)`. `R[i, j]` is the metric on task `j` after
            training on task `i`; `T >= 2`.

    Returns:
        The average as a float.

    Example:

    >>> from keras_tl.scores import continual
    >>> continual.average_accuracy([[0.9, 0.1], [0.8, 0.7]])
    0.75
    """
    matrix = _as_matrix(R)
    return float(np.mean(matrix[-1]))


def backward_transfer(R, higher_is_better=True):
    """Influence of later training on earlier tasks (BWT in GEM).

    `BWT = 1/(T-1) sum_{j < T-1} (R[T-1, j] - R[j, j])`: how the metric on each
    earlier task changed between right after learning it and the end (Lopez-Paz
    and Ranzato, 2017). Positive means later tasks improved earlier ones; negative
    means forgetting. For a lower-is-better metric (`higher_is_better=False`) the
    sign is flipped so positive still means improvement.

    Args:
        R: array-like of shape `(T, T)`. `R[i, j]` is the metric on task `j` after
            training on task `i`; `T >= 2`.
        higher_is_better: bool. Direction of the metric. Defaults to `True`.

    Returns:
        The backward transfer as a float.

    Example:

    >>> from keras_tl.scores import continual
    >>> round(continual.backward_transfer([[0.9, 0.1], [0.8, 0.7]]), 6)
    -0.1
    """
    matrix = _as_matrix(R)
    num_tasks = matrix.shape[0]
    changes = matrix[-1, :-1] - np.diag(matrix)[:-1]
    sign = 1.0 if higher_is_better else -1.0
    return float(sign * changes.sum() / (num_tasks - 1))


def forward_transfer(R, random_init, higher_is_better=True):
    """Influence of earlier training on tasks not yet learned (FWT in GEM).

    `FWT = 1/(T-1) sum_{j=1..T-1} (R[j-1, j] - b_j)`: the metric on task `j` just
    before training on it, against `b_j`, the metric of a randomly initialised
    model on task `j` (Lopez-Paz and Ranzato, 2017). Positive means earlier tasks
    gave later ones a head start. For a lower-is-better metric
    (`higher_is_better=False`) the sign is flipped so positive still means help.

    Args:
        R: array-like of shape `(T, T)`. `R[i, j]` is the metric on task `j` after
            training on task `i`; `T >= 2`.
        random_init: array-like of shape `(T,)`. The metric of a random-init model
            on each task (`b_0` is not used).
        higher_is_better: bool. Direction of the metric. Defaults to `True`.

    Returns:
        The forward transfer as a float.

    Example:

    >>> from keras_tl.scores import continual
    >>> round(continual.forward_transfer([[0.9, 0.3], [0.8, 0.7]], [0.1, 0.1]), 6)
    0.2
    """
    matrix = _as_matrix(R)
    num_tasks = matrix.shape[0]
    try:
        baseline = np.asarray(random_init, dtype=np.float64)
    except (TypeError, ValueError):
        baseline = None
    if baseline is None or baseline.shape != (num_tasks,):
        raise DataError(
            f"random_init must hold one number per task ({num_tasks}). Received: "
            f"random_init={random_init!r}. Pass the random-init metric of every "
            "task, in training order."
        )
    if not np.all(np.isfinite(baseline[1:])):
        raise DataError(
            f"random_init must be finite numbers. Received: {baseline.tolist()}. "
            "Evaluate a randomly initialised model on every task after the first."
        )
    before_training = np.diag(matrix, k=1)  # R[j-1, j] for j = 1..T-1
    sign = 1.0 if higher_is_better else -1.0
    return float(sign * (before_training - baseline[1:]).sum() / (num_tasks - 1))


def forgetting(before, after, higher_is_better=True):
    """How much a task's metric got worse: `before - after`, direction-aware.

    For the source task of a transfer, `before` is its metric right after source
    training and `after` is the metric of the transferred (fine-tuned) trunk with
    the source head re-attached. Forgetting is `before - after` for a
    higher-is-better metric and `after - before` for a lower-is-better one, so a
    positive value always means the task got worse (the negative of one term of
    GEM's backward transfer, Lopez-Paz and Ranzato, 2017). If either value is
    `None` or NaN (e.g. the evaluation failed) the result is `None`.

    Args:
        before: float or None. The metric before further training.
        after: float or None. The metric after further training.
        higher_is_better: bool. Direction of the metric. Defaults to `True`.

    Returns:
        The forgetting as a float (positive = worse), or None.

    Example:

    >>> from keras_tl.scores import continual
    >>> round(continual.forgetting(0.9, 0.85), 6)
    0.05
    """
    if before is None or after is None:
        return None
    before, after = _metric(before, "before"), _metric(after, "after")
    if before is None or after is None:
        return None
    return before - after if higher_is_better else after - before


def _metric(value, name):
    """Returns `value` as a float, None for NaN, or raises `DataError`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.inf
    if math.isnan(number):
        return None
    if not math.isfinite(number):
        raise DataError(
            f"{name} must be a finite number or None. Received: {name}={value!r}. "
            "Pass the task's metric as a float (None when it could not be evaluated)."
        )
    return number
