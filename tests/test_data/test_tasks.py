"""Tests for keras_tl.tasks: built-in digits tasks, splits, subsampling, npz files."""

import collections

import numpy as np
import pytest
from sklearn.datasets import load_digits

from keras_tl.data.registry import load_task
from keras_tl.errors import DataError

SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def sklearn_digits():
    """The raw scikit-learn digits, scaled like the built-in tasks (pixels / 16)."""
    bunch = load_digits()
    return (bunch.images / 16.0).astype("float32"), bunch.target


def _rows(x):
    """Each sample as bytes (every digits image is unique, so a row identifies it)."""
    x = np.ascontiguousarray(x).reshape(len(x), -1)
    return [row.tobytes() for row in x]


def _pixels(x):
    return np.ascontiguousarray(x, dtype="float32").reshape(len(x), 8, 8)


def _save_npz(path, **arrays):
    np.savez(path, **arrays)
    return f"npz:{path}"


def _id_task_file(tmp_path, num_train=200, num_classes=4, kind="classification"):
    """An npz task whose one feature is the sample's id, so subsets compare exactly."""
    rng = np.random.default_rng(0)
    y_train = np.arange(num_train) % num_classes
    y_test = np.arange(40) % num_classes
    arrays = {
        "x_train": np.arange(num_train, dtype="float32")[:, np.newaxis],
        "y_train": rng.permutation(y_train),
        "x_test": -1.0 - np.arange(40, dtype="float32")[:, np.newaxis],
        "y_test": y_test,
    }
    if kind != "classification":
        arrays["kind"] = np.array(kind)
    return _save_npz(tmp_path / "ids.npz", **arrays)


# Built-in tasks


@pytest.mark.parametrize(
    "name, kind, num_outputs, num_samples",
    [
        ("digits", "classification", 10, 1797),
        ("digits:0-4", "classification", 5, 901),
        ("digits:5-9", "classification", 5, 896),
        ("digits:parity", "binary", 1, 1797),
        ("digits:inverted", "classification", 10, 1797),
    ],
)
def test_builtin_task_has_its_kind_outputs_and_every_sample(
    name, kind, num_outputs, num_samples
):
    task = load_task(name)
    sizes = task.sizes()
    assert task.name == name
    assert task.kind == kind
    assert task.num_outputs == num_outputs
    assert task.input_shape == (8, 8, 1)
    assert sum(sizes.values()) == num_samples
    # 60 / 20 / 20, stratified per class: each split within a few samples of its share.
    assert sizes["train"] == pytest.approx(0.6 * num_samples, abs=10)
    assert sizes["val"] == pytest.approx(0.2 * num_samples, abs=10)
    assert sizes["test"] == pytest.approx(0.2 * num_samples, abs=10)
    for split in SPLITS:
        x, y = task.split(split)
        assert x.dtype == np.float32 and x.shape[1:] == (8, 8, 1)
        assert len(x) == len(y)


def test_builtin_digits_sizes_match_scikit_learn_class_counts(sklearn_digits):
    _, labels = sklearn_digits
    assert sum(load_task("digits:0-4").sizes().values()) == int(np.sum(labels < 5))
    assert sum(load_task("digits:5-9").sizes().values()) == int(np.sum(labels >= 5))


def test_digits_splits_partition_the_scikit_learn_data(sklearn_digits):
    images, labels = sklearn_digits
    task = load_task("digits")
    by_row = dict(zip(_rows(images), labels))
    seen = collections.Counter()
    for split in SPLITS:
        x, y = task.split(split)
        rows = _rows(_pixels(x))
        seen.update(rows)
        # Every sample keeps its scikit-learn label.
        assert [by_row[row] for row in rows] == y.tolist()
    assert sum(seen.values()) == len(images)
    assert set(seen) == set(by_row)
    assert max(seen.values()) == 1


@pytest.mark.parametrize("name", ["digits", "digits:0-4", "digits:parity", "npz"])
def test_splits_do_not_overlap(name, tmp_path):
    if name == "npz":
        name = _id_task_file(tmp_path)
    task = load_task(name)
    rows = {split: set(_rows(task.split(split)[0])) for split in SPLITS}
    assert not rows["train"] & rows["val"]
    assert not rows["train"] & rows["test"]
    assert not rows["val"] & rows["test"]


@pytest.mark.parametrize("name", ["digits", "digits:5-9", "digits:parity", "npz"])
def test_splits_are_identical_across_loads(name, tmp_path):
    if name == "npz":
        name = _id_task_file(tmp_path)
    first, second = load_task(name), load_task(name)
    for split in SPLITS:
        np.testing.assert_array_equal(first.split(split)[0], second.split(split)[0])
        np.testing.assert_array_equal(first.split(split)[1], second.split(split)[1])
    assert first.fingerprint() == second.fingerprint()


def test_digits_variants_share_the_same_partition():
    digits = load_task("digits")
    for name in ("digits:parity", "digits:inverted"):
        variant = load_task(name)
        for split in SPLITS:
            assert len(variant.split(split)[1]) == len(digits.split(split)[1])
    for name in ("digits:0-4", "digits:5-9"):
        variant = load_task(name)
        for split in SPLITS:
            # A subset of digits' own split: no image moves between splits.
            assert set(_rows(variant.split(split)[0])) <= set(
                _rows(digits.split(split)[0])
            )


def test_digits_splits_are_stratified():
    task = load_task("digits")
    overall = np.bincount(np.concatenate([task.split(s)[1] for s in SPLITS]))
    for split, share in zip(SPLITS, (0.6, 0.2, 0.2)):
        counts = np.bincount(task.split(split)[1], minlength=10)
        np.testing.assert_allclose(counts, share * overall, atol=1.0)


def test_digits_0_4_holds_only_digits_0_to_4():
    digits, task = load_task("digits"), load_task("digits:0-4")
    for split in SPLITS:
        x, y = task.split(split)
        dx, dy = digits.split(split)
        assert set(y.tolist()) == {0, 1, 2, 3, 4}
        np.testing.assert_array_equal(x, dx[dy < 5])
        np.testing.assert_array_equal(y, dy[dy < 5])


def test_digits_5_9_is_relabelled_to_0_to_4():
    digits, task = load_task("digits"), load_task("digits:5-9")
    for split in SPLITS:
        x, y = task.split(split)
        dx, dy = digits.split(split)
        assert set(y.tolist()) == {0, 1, 2, 3, 4}
        np.testing.assert_array_equal(x, dx[dy >= 5])
        np.testing.assert_array_equal(y, dy[dy >= 5] - 5)


def test_digits_parity_labels_say_whether_the_digit_is_odd():
    digits, task = load_task("digits"), load_task("digits:parity")
    for split in SPLITS:
        x, y = task.split(split)
        dx, dy = digits.split(split)
        np.testing.assert_array_equal(x, dx)
        np.testing.assert_array_equal(y, dy % 2)
        assert set(y.tolist()) == {0, 1}


def test_digits_inverted_is_one_minus_the_pixels_with_the_same_labels():
    digits, task = load_task("digits"), load_task("digits:inverted")
    for split in SPLITS:
        x, y = task.split(split)
        dx, dy = digits.split(split)
        np.testing.assert_allclose(x, 1.0 - dx, atol=1e-7)
        np.testing.assert_array_equal(y, dy)
    assert task.x_train.min() >= 0.0 and task.x_train.max() <= 1.0


def test_unknown_task_name_raises_data_error_listing_the_builtins():
    with pytest.raises(
        DataError, match="Unknown task 'digitz'.*digits:parity.*npz:PATH"
    ):
        load_task("digitz")


def test_task_name_that_is_not_a_string_raises_data_error():
    with pytest.raises(DataError, match="must be a string"):
        load_task(5)


# subsample


def test_subsample_has_the_requested_size_and_keeps_val_and_test():
    task = load_task("digits")
    small = task.subsample(30, seed=0)
    assert len(small.x_train) == len(small.y_train) == 30
    np.testing.assert_array_equal(small.x_val, task.x_val)
    np.testing.assert_array_equal(small.y_test, task.y_test)
    assert small.kind == task.kind and small.num_outputs == task.num_outputs


def test_subsample_draws_from_the_train_split_with_labels_attached():
    task = load_task("digits")
    label_of = dict(zip(_rows(task.x_train), task.y_train.tolist()))
    small = task.subsample(50, seed=3)
    rows = _rows(small.x_train)
    assert set(rows) <= set(label_of)
    assert [label_of[row] for row in rows] == small.y_train.tolist()


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_subsample_is_nested_for_the_same_seed(seed):
    task = load_task("digits")
    sizes = (10, 30, 100, 500)
    subsets = [set(_rows(task.subsample(size, seed).x_train)) for size in sizes]
    for smaller, larger in zip(subsets, subsets[1:]):
        assert smaller < larger


def test_subsample_is_nested_on_exact_sample_ids(tmp_path):
    task = load_task(_id_task_file(tmp_path))
    ids_30 = set(task.subsample(30, seed=4).x_train[:, 0].tolist())
    ids_100 = set(task.subsample(100, seed=4).x_train[:, 0].tolist())
    assert len(ids_30) == 30 and len(ids_100) == 100
    assert ids_30 <= ids_100


def test_subsample_is_repeatable_and_differs_between_seeds():
    task = load_task("digits:parity")
    first, again = task.subsample(30, seed=5), task.subsample(30, seed=5)
    np.testing.assert_array_equal(first.x_train, again.x_train)
    np.testing.assert_array_equal(first.y_train, again.y_train)
    other = task.subsample(30, seed=6)
    assert set(_rows(first.x_train)) != set(_rows(other.x_train))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("size", [20, 50, 137])
def test_subsample_is_stratified_for_classification(seed, size):
    task = load_task("digits")
    proportions = np.bincount(task.y_train) / len(task.y_train)
    counts = np.bincount(task.subsample(size, seed).y_train, minlength=10)
    np.testing.assert_allclose(counts, size * proportions, atol=1.0)


@pytest.mark.parametrize("seed", range(3))
def test_subsample_is_stratified_for_binary(seed):
    task = load_task("digits:parity")
    odd_share = task.y_train.mean()
    small = task.subsample(31, seed)
    assert abs(small.y_train.sum() - 31 * odd_share) <= 1.0


@pytest.mark.parametrize("fraction, expected", [(0.1, 108), (0.5, 539), (1.0, 1078)])
def test_subsample_accepts_a_fraction_of_the_train_split(fraction, expected):
    task = load_task("digits")
    assert len(task.subsample(fraction, seed=0).y_train) == expected


def test_fraction_one_keeps_every_train_sample():
    task = load_task("digits")
    full = task.subsample(1.0, seed=2)
    assert set(_rows(full.x_train)) == set(_rows(task.x_train))


def test_subsample_larger_than_the_train_split_raises_data_error():
    task = load_task("digits:0-4")
    with pytest.raises(DataError, match="larger than the train split.*541"):
        task.subsample(542, seed=0)


@pytest.mark.parametrize("train_size", [0, -5, 1.5, -0.5])
def test_subsample_rejects_sizes_that_are_not_a_positive_count_or_a_fraction(
    train_size,
):
    task = load_task("digits")
    with pytest.raises(DataError):
        task.subsample(train_size, seed=0)


# npz files


def _classification_arrays(num_train=50, num_test=20, num_features=3, num_classes=3):
    rng = np.random.default_rng(1)
    return {
        "x_train": rng.normal(size=(num_train, num_features)).astype("float32"),
        "y_train": np.arange(num_train) % num_classes,
        "x_test": rng.normal(size=(num_test, num_features)).astype("float32"),
        "y_test": np.arange(num_test) % num_classes,
    }


def test_npz_task_without_val_holds_out_a_stratified_fifth_of_train(tmp_path):
    arrays = _classification_arrays(num_train=60)
    task = load_task(_save_npz(tmp_path / "data.npz", **arrays))
    assert task.kind == "classification"
    assert task.num_outputs == 3
    assert task.sizes() == {"train": 48, "val": 12, "test": 20}
    assert task.input_shape == (3,)
    # Train and val together are exactly the file's train samples.
    together = set(_rows(task.x_train)) | set(_rows(task.x_val))
    assert together == set(_rows(arrays["x_train"]))
    assert np.bincount(task.y_val).tolist() == [4, 4, 4]
    np.testing.assert_array_equal(task.x_test, arrays["x_test"])
    np.testing.assert_array_equal(task.y_test, arrays["y_test"])


def test_npz_task_with_val_uses_the_given_splits(tmp_path):
    arrays = _classification_arrays()
    arrays["x_val"] = np.ones((7, 3), dtype="float32")
    arrays["y_val"] = np.array([0, 1, 2, 0, 1, 2, 0])
    task = load_task(_save_npz(tmp_path / "data.npz", **arrays))
    assert task.sizes() == {"train": 50, "val": 7, "test": 20}
    np.testing.assert_array_equal(task.x_train, arrays["x_train"])
    np.testing.assert_array_equal(task.y_val, arrays["y_val"])
    assert task.y_train.dtype == np.int64


def test_npz_classification_accepts_integral_float_labels(tmp_path):
    arrays = _classification_arrays()
    arrays["y_train"] = arrays["y_train"].astype("float64")
    task = load_task(_save_npz(tmp_path / "data.npz", **arrays))
    assert task.y_train.dtype == np.int64
    assert task.num_outputs == 3


def test_npz_regression_task_keeps_float_targets_as_columns(tmp_path):
    rng = np.random.default_rng(2)
    path = _save_npz(
        tmp_path / "regression.npz",
        x_train=rng.normal(size=(30, 4)),
        y_train=rng.normal(size=(30, 2)),
        x_test=rng.normal(size=(10, 4)),
        y_test=rng.normal(size=(10, 2)),
        kind=np.array("regression"),
    )
    task = load_task(path)
    assert task.kind == "regression"
    assert task.num_outputs == 2
    assert task.sizes() == {"train": 24, "val": 6, "test": 10}
    assert task.y_train.dtype == np.float32 and task.y_train.shape == (24, 2)


def test_npz_regression_with_one_dimensional_targets_has_one_output(tmp_path):
    rng = np.random.default_rng(3)
    path = _save_npz(
        tmp_path / "regression.npz",
        x_train=rng.normal(size=(20, 2)),
        y_train=rng.normal(size=20) * 0.37,
        x_test=rng.normal(size=(5, 2)),
        y_test=rng.normal(size=5),
        x_val=rng.normal(size=(5, 2)),
        y_val=rng.normal(size=5),
        kind=np.array("regression"),
    )
    task = load_task(path)
    assert task.num_outputs == 1
    assert task.y_val.shape == (5, 1)


def test_npz_binary_task_has_one_output(tmp_path):
    arrays = _classification_arrays(num_classes=2)
    task = load_task(
        _save_npz(tmp_path / "binary.npz", kind=np.array("binary"), **arrays)
    )
    assert task.kind == "binary"
    assert task.num_outputs == 1
    assert set(task.y_train.tolist()) == {0, 1}


def test_npz_binary_task_rejects_labels_other_than_0_and_1(tmp_path):
    arrays = _classification_arrays(num_classes=3)
    path = _save_npz(tmp_path / "binary.npz", kind=np.array("binary"), **arrays)
    with pytest.raises(DataError, match="0 or 1"):
        load_task(path)


def test_npz_missing_file_raises_data_error_naming_the_path(tmp_path):
    path = tmp_path / "absent.npz"
    with pytest.raises(DataError, match="not found.*absent.npz"):
        load_task(f"npz:{path}")


def test_npz_file_that_is_not_an_npz_raises_data_error(tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("x_train,y_train\n1,2\n")
    with pytest.raises(DataError, match="Cannot read .*text.npz.* as an .npz archive"):
        load_task(f"npz:{path}")


@pytest.mark.parametrize("missing", ["x_train", "y_train", "x_test", "y_test"])
def test_npz_missing_key_raises_data_error_naming_the_key(tmp_path, missing):
    arrays = _classification_arrays()
    del arrays[missing]
    path = _save_npz(tmp_path / "data.npz", **arrays)
    with pytest.raises(DataError, match=f"lacks the key\\(s\\) {missing}"):
        load_task(path)


def test_npz_with_only_one_of_x_val_and_y_val_raises_data_error(tmp_path):
    arrays = _classification_arrays()
    arrays["x_val"] = arrays["x_test"]
    path = _save_npz(tmp_path / "data.npz", **arrays)
    with pytest.raises(DataError, match="both x_val and y_val"):
        load_task(path)


@pytest.mark.parametrize(
    "labels",
    [
        np.array([0.5, 1.0, 2.0] * 10),
        np.array(["a", "b", "c"] * 10),
        np.array([np.nan] * 30),
    ],
    ids=["fractional", "strings", "nan"],
)
def test_npz_non_integer_labels_for_classification_raise_data_error(tmp_path, labels):
    arrays = _classification_arrays(num_train=30)
    arrays["y_train"] = labels
    path = _save_npz(tmp_path / "data.npz", **arrays)
    with pytest.raises(DataError, match="y_train must hold integer class labels"):
        load_task(path)


@pytest.mark.parametrize("split", ["train", "test"])
def test_npz_empty_split_raises_data_error_naming_the_split(tmp_path, split):
    arrays = _classification_arrays()
    arrays[f"x_{split}"] = np.zeros((0, 3), dtype="float32")
    arrays[f"y_{split}"] = np.zeros((0,), dtype="int64")
    path = _save_npz(tmp_path / "data.npz", **arrays)
    with pytest.raises(DataError, match=f"the {split} split is empty"):
        load_task(path)


def test_npz_with_mismatched_sample_counts_raises_data_error(tmp_path):
    arrays = _classification_arrays()
    arrays["y_test"] = arrays["y_test"][:-1]
    path = _save_npz(tmp_path / "data.npz", **arrays)
    with pytest.raises(DataError, match="x_test has 20 samples but y_test has 19"):
        load_task(path)


def test_npz_unknown_kind_raises_data_error(tmp_path):
    arrays = _classification_arrays()
    path = _save_npz(tmp_path / "data.npz", kind=np.array("ranking"), **arrays)
    with pytest.raises(DataError, match="kind must be one of"):
        load_task(path)
