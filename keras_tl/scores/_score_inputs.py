"""Input checks and shared helpers of the transferability scores.

Every score converts its inputs here (NumPy arrays or CPU tensors of any backend,
no keras import) and computes in float64; a bad input raises `DataError` saying
what was received and how to fix it.
"""

import numpy as np
from scipy import sparse

from keras_tl.errors import ConfigError, DataError

PROBABILITY_TOLERANCE = 1e-3
FORMS = ("keras_tl", "authors")
EPS = np.finfo(np.float64).eps


def check_form(form, score_name):
    if not isinstance(form, str) or form not in FORMS:
        raise ConfigError(
            f"Unknown {score_name} form. Expected one of {list(FORMS)}. "
            f"Received: form={form!r}. Use form='keras_tl' (the default) or "
            "form='authors' (the authors' published normalisation)."
        )


def rank_tolerance(squared_singular_values, shape):
    """Squared singular values at or below this are numerically zero."""
    return np.max(squared_singular_values) * max(shape) * EPS


def class_sums(matrix, labels, num_classes):
    """Y^T M for the one-hot Y of `labels`: the (C, columns) per-class row sums."""
    indicator = sparse.csr_matrix(
        (np.ones(len(labels)), (labels, np.arange(len(labels)))),
        shape=(num_classes, len(labels)),
    )
    return np.asarray(indicator @ matrix)


def _to_numpy(value):
    """NumPy view of an array-like or a CPU tensor (torch, tensorflow and jax
    tensors convert through `__array__`; no keras import, so scores stay pure)."""
    if hasattr(value, "detach"):  # A torch tensor that may require grad.
        value = value.detach().cpu()
    return np.asarray(value)


def _numeric(value, name):
    array = _to_numpy(value)
    if array.dtype == bool:
        array = array.astype(np.int64)
    if not (
        np.issubdtype(array.dtype, np.integer)
        or np.issubdtype(array.dtype, np.floating)
    ):
        raise DataError(
            f"{name} must be numeric. Received: dtype {array.dtype}. "
            f"Pass {name} as a float or integer array."
        )
    return array


def as_features(value, name="features"):
    array = _numeric(value, name)
    if array.ndim != 2:
        raise DataError(
            f"{name} must be a 2-D array of shape (num_samples, num_features). "
            f"Received: shape {array.shape}. Flatten them first, e.g. "
            f"{name}.reshape(len({name}), -1)."
        )
    if array.shape[0] < 2 or array.shape[1] < 1:
        raise DataError(
            f"{name} must have at least 2 samples and 1 column. "
            f"Received: shape {array.shape}. Score on more samples."
        )
    # No copy when already float64: the scores only read their inputs.
    array = array.astype(np.float64, copy=False)
    # A finite sum proves every entry finite in one pass without allocating; only
    # when it is not (a NaN, an infinity, or an overflow) check element-wise.
    if not np.isfinite(np.sum(array)):
        finite = np.isfinite(array)
        if not finite.all():
            row, column = np.argwhere(~finite)[0]
            num_bad = finite.size - np.count_nonzero(finite)
            raise DataError(
                f"{name} must be finite. Received: {num_bad} NaN or infinite values "
                f"(first at row {row}, column {column}). "
                "Drop or impute those samples before scoring."
            )
    return array


def _check_length(num_labels, num_samples, inputs_name):
    if num_labels != num_samples:
        raise DataError(
            f"{inputs_name} and labels must have one row per sample. Received: "
            f"{num_samples} rows of {inputs_name} and {num_labels} labels. Pass the "
            f"labels of exactly the samples the {inputs_name} were computed on."
        )


def _integer_values(value, name, expected, fix):
    """1-D int64 array of `value`, which must hold whole numbers."""
    array = _to_numpy(value)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise DataError(
            f"{name} must be a 1-D array with one entry per sample. Received: shape "
            f"{array.shape}. {fix}"
        )
    if array.dtype == bool:
        return array.astype(np.int64)
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.int64)
    if np.issubdtype(array.dtype, np.floating):
        whole = np.isfinite(array) & (array == np.round(array))
        if whole.all():
            return array.astype(np.int64)
        example = float(array[~whole][0])
    else:
        example = array.reshape(-1)[0].item() if array.size else None
    raise DataError(
        f"{name} must be {expected}. Received: dtype {array.dtype} with values like "
        f"{example!r}. {fix}"
    )


def class_labels(value, num_samples, inputs_name="features"):
    """Validated class indices (int64, shape (N,)) and the number of classes C."""
    fix = "Convert labels with np.unique(labels, return_inverse=True)."
    expected = "integers 0..C-1 for a classification score"
    labels = _integer_values(value, "labels", expected, fix)
    _check_length(len(labels), num_samples, inputs_name)
    present = np.unique(labels)
    if present[0] != 0 or present[-1] != len(present) - 1:
        shown = ", ".join(str(v) for v in present[:6]) + (
            ", ..." if len(present) > 6 else ""
        )
        raise DataError(
            "labels must be integers 0..C-1 for a classification score. Received: "
            f"class values [{shown}], which are not 0..{len(present) - 1}. {fix}"
        )
    if len(present) < 2:
        raise DataError(
            "labels must contain at least 2 classes for a classification score. "
            "Received: every label is 0. Score a task with at least two classes."
        )
    counts = np.bincount(labels)
    rare = np.flatnonzero(counts < 2)
    if rare.size:
        raise DataError(
            "each class needs at least 2 samples for a classification score. "
            f"Received: {rare.size} class(es) with 1 sample, the first is class "
            f"{rare[0]}. Drop or merge the rare classes, or score on more samples."
        )
    return labels, len(present)


def regression_targets(value, num_samples):
    """Validated regression targets as a float64 (N, K) matrix."""
    targets = _numeric(value, "labels").astype(np.float64)
    if targets.ndim == 1:
        targets = targets[:, None]
    if targets.ndim != 2:
        raise DataError(
            "labels must have shape (N,) or (N, K) for a regression score. Received: "
            f"shape {targets.shape}. Reshape them to one row per sample."
        )
    _check_length(len(targets), num_samples, "features")
    if not np.isfinite(targets).all():
        raise DataError(
            "labels must be finite for a regression score. Received: "
            f"{np.size(targets) - np.count_nonzero(np.isfinite(targets))} NaN or "
            "infinite targets. Drop or impute those samples before scoring."
        )
    return targets


def probabilities(value):
    """Validated (N, Cs) float64 matrix of probability rows."""
    theta = as_features(value, "source_probabilities")
    negative = theta < 0
    if negative.any():
        row, column = np.argwhere(negative)[0]
        raise DataError(
            "source_probabilities must be non-negative probabilities. Received: "
            f"{float(theta[row, column])!r} at row {row}, column {column}. Apply a "
            "softmax to the source model's logits first, e.g. "
            "keras.ops.softmax(logits)."
        )
    row_sums = theta.sum(axis=1)
    off = np.abs(row_sums - 1.0) > PROBABILITY_TOLERANCE
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise DataError(
            "source_probabilities rows must sum to 1 (within 1e-3). Received: row "
            f"{row} sums to {float(row_sums[row]):.6g}. Apply a softmax to the source "
            "model's logits first, e.g. keras.ops.softmax(logits)."
        )
    return theta


def source_labels(value):
    """Source class indices from predicted classes (N,) or scores (N, Cs)."""
    array = _to_numpy(value)
    if array.ndim == 2 and array.shape[1] > 1:
        return np.argmax(as_features(array, "source_predictions"), axis=1)
    fix = (
        "Pass the source model's predicted class indices (N,) or its "
        "probabilities (N, Cs)."
    )
    source_labels = _integer_values(
        array, "source_predictions", "integer class indices or a 2-D matrix", fix
    )
    if source_labels.size and source_labels.min() < 0:
        raise DataError(
            "source_predictions must be class indices >= 0. Received: "
            f"{int(source_labels.min())}. {fix}"
        )
    if len(source_labels) < 2:
        raise DataError(
            "source_predictions must have at least 2 samples. Received: "
            f"{len(source_labels)}. Score on more samples."
        )
    return source_labels
