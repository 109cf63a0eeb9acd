"""npz: and csv: files a model cannot learn from are refused, as CSV and image
folders already are: non-numeric or non-finite inputs, labels that are not one
class index per sample, splits that disagree, a single class, samples without
features, and paths that are not regular files (never opened, never "not found").
"""

import os

import numpy as np
import pytest

from keras_tl.data.files import MAX_CLASSES
from keras_tl.data.registry import load_task, register_task
from keras_tl.errors import DataError


def _arrays(**changes):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.random((40, 4), dtype=np.float32),
        "y_train": np.arange(40) % 2,
        "x_test": rng.random((10, 4), dtype=np.float32),
        "y_test": np.arange(10) % 2,
    }
    arrays.update(changes)
    return arrays


def _npz(tmp_path, kind=None, **changes):
    arrays = _arrays(**changes)
    if kind:
        arrays["kind"] = np.array(kind)
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return f"npz:{path}"


def _with_value(shape, index, value, dtype="float32"):
    array = np.random.default_rng(1).random(shape).astype(dtype)
    array[index] = value
    return array


@pytest.mark.parametrize(
    "kind, changes, expected",
    [
        (None, {"y_train": np.eye(2, dtype="int64")[np.arange(40) % 2]},
         r"y_train has shape \(40, 2\).*one-hot encoded: store y.argmax\(axis=1\)"),
        (None, {"y_train": np.array(["cat", "dog"] * 20)},
         r"y_train must hold integer class labels.*return_inverse=True"),
        (None, {"y_test": np.array([b"a", b"b"] * 5)}, "y_test must hold integer class"),
        (None, {"x_train": _with_value((40, 4), (3, 2), np.nan)},
         r"x_train holds 1 non-finite value\(s\).*the first at index \(3, 2\)"),
        (None, {"x_test": _with_value((10, 4), (9, 3), -np.inf)},
         r"x_test holds 1 non-finite value\(s\).*index \(9, 3\)"),
        (None, {"x_train": _with_value((40, 4), (0, 0), 1e300, "float64")},
         "beyond float32's range"),
        ("regression", {"y_train": _with_value((40,), 5, np.nan)},
         r"y_train holds 1 non-finite target\(s\)"),
        ("regression", {"y_train": np.array(["1.0"] * 40)},
         "y_train must hold numbers for a regression task"),
        ("regression", {"y_train": np.zeros((40, 2)), "y_test": np.zeros((10, 1))},
         r"y_test has 1 target column\(s\) but y_train has 2"),
        (None, {"x_test": np.zeros((10, 5), "float32")},
         r"x_test has samples of shape \(5,\) but x_train has \(4,\)"),
        (None, {"x_test": np.zeros((10, 2, 2), "float32")},
         r"x_test has samples of shape \(2, 2\) but x_train has \(4,\)"),
        (None, {"y_train": np.zeros(40, "int64")},
         r"y_train holds a single class \(0\), but a classification task needs"),
        ("binary", {"y_train": np.ones(40, "int64")},
         "a binary task needs at least two classes"),
        (None, {"x_train": np.zeros((40, 0), "float32"),
                "x_test": np.zeros((10, 0), "float32")},
         "its samples have no features"),
        (None, {"x_train": np.full((40, 4), "a")}, "x_train must hold numbers"),
        (None, {"x_train": np.ones((40, 4), "complex64")}, "x_train must hold numbers"),
        (None, {"y_train": np.arange(40) % 2 * MAX_CLASSES},
         f"must be integers from 0 to {MAX_CLASSES - 1}"),
        (None, {"y_train": (np.arange(40) % 2) * 1e30}, "beyond class indices"),
        (None, {"x_train": np.float32(1)}, "must be arrays with one row per sample"),
    ],
    ids=[
        "one_hot", "string_labels", "bytes_labels", "nan_x", "inf_x", "beyond_float32",
        "nan_regression_target", "string_regression_target", "regression_columns_differ",
        "x_test_features_differ", "x_test_rank_differs", "single_class",
        "binary_single_class", "zero_features", "text_features", "complex_features",
        "label_beyond_max_classes", "float_label_beyond_int64", "scalar_x",
    ],
)
def test_npz_data_a_model_cannot_learn_from_is_refused(tmp_path, kind, changes, expected):
    task = _npz(tmp_path, kind, **changes)
    with pytest.raises(DataError, match=expected):
        load_task(task)


def test_npz_boolean_labels_are_class_indices(tmp_path):
    task = load_task(_npz(tmp_path, "binary", y_train=np.arange(40) % 2 == 1,
                          y_test=np.arange(10) % 2 == 1))
    assert task.y_train.dtype == np.int64
    assert set(task.y_train.tolist()) == {0, 1}


def test_npz_integer_valued_float_labels_still_load(tmp_path):
    task = load_task(_npz(tmp_path, y_train=(np.arange(40) % 3).astype("float64"),
                          y_test=(np.arange(10) % 3).astype("float64")))
    assert task.num_outputs == 3


@pytest.mark.parametrize("prefix, what", [("npz", "Task file"), ("csv", "CSV file")])
def test_a_folder_is_named_a_folder_not_missing(tmp_path, prefix, what):
    folder = tmp_path / f"data.{prefix}"
    folder.mkdir()
    name = f"{prefix}:{folder}" + ("?label=label" if prefix == "csv" else "")
    with pytest.raises(DataError, match=f"^{what} .*data.{prefix}.* is a folder"):
        load_task(name)


@pytest.mark.parametrize("prefix, what", [("npz", "Task file"), ("csv", "CSV file")])
def test_a_fifo_is_refused_without_being_opened(tmp_path, prefix, what):
    fifo = tmp_path / f"data.{prefix}"
    os.mkfifo(fifo)  # Opening it would block until a writer comes: never opened.
    name = f"{prefix}:{fifo}" + ("?label=label" if prefix == "csv" else "")
    with pytest.raises(DataError, match=f"^{what} .* is not a regular file"):
        load_task(name)


def test_a_device_is_refused_without_being_read():
    with pytest.raises(DataError, match="'/dev/zero' .* is not a regular file"):
        load_task("npz:/dev/zero")


def test_a_path_with_nul_is_not_found():
    with pytest.raises(DataError, match="Task file not found"):
        load_task("npz:a\0b.npz")


@pytest.mark.parametrize(
    "x, y, expected",
    [
        (_with_value((30, 4), (2, 1), np.nan), np.arange(30) % 2, "x_train holds 1 non-finite"),
        (np.ones((30, 4), "float32"), np.eye(2)[np.arange(30) % 2], "one-hot"),
        (np.ones((30, 0), "float32"), np.arange(30) % 2, "no features"),
    ],
    ids=["nan_x", "one_hot", "zero_features"],
)
def test_registered_arrays_get_the_same_checks(x, y, expected):
    with pytest.raises(DataError, match=expected):
        register_task("bad_files_task", train=(x, y))
