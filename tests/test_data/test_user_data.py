"""Tests for user-data tasks: csv:PATH?label=COLUMN, images:DIR and keras:DATASET."""

import csv
import os
import urllib.error

import keras
import numpy as np
import pytest
from PIL import Image

import keras_tl
import keras_tl.data.keras_datasets
import keras_tl.data.ondisk
from keras_tl.data.registry import load_task
from keras_tl.errors import DataError

# Trains models end to end: the full suite (tox, CI) runs it; `-m "not slow"` skips it.
pytestmark = pytest.mark.slow

SPLITS = ("train", "val", "test")
SPECIES = ("setosa", "versicolor", "virginica")


def _write_csv(path, header, rows):
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def _species_rows(num_per_class=20, num_features=3):
    """Rows `[id, f2, ..., species]`; the id feature identifies the row, class = id % 3."""
    rows = []
    for index in range(num_per_class * len(SPECIES)):
        features = [index] + [round(0.5 * index + k, 2) for k in range(1, num_features)]
        rows.append(features + [SPECIES[index % len(SPECIES)]])
    return rows


@pytest.fixture
def species_csv(tmp_path):
    header = ["id", "petal_length", "petal_width", "species"]
    return _write_csv(tmp_path / "species.csv", header, _species_rows())


def _all_rows(task):
    return np.concatenate([task.split(split)[0] for split in SPLITS])


# csv:


def test_csv_reads_numeric_features_and_splits_60_20_20_by_class(species_csv):
    task = load_task(f"csv:{species_csv}?label=species")
    assert task.kind == "classification"
    assert task.num_outputs == 3
    assert task.input_shape == (3,)
    assert task.sizes() == {"train": 36, "val": 12, "test": 12}
    for split in SPLITS:
        x, y = task.split(split)
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert np.bincount(y, minlength=3).tolist() == [len(y) // 3] * 3
    # Every row lands in exactly one split, its features intact.
    ids = np.sort(_all_rows(task)[:, 0])
    np.testing.assert_array_equal(ids, np.arange(60, dtype="float32"))
    np.testing.assert_allclose(_all_rows(task)[:, 1], 0.5 * _all_rows(task)[:, 0] + 1)
    # The same file gives the same splits (fixed seed).
    again = load_task(f"csv:{species_csv}?label=species")
    np.testing.assert_array_equal(again.x_test, task.x_test)


def test_csv_string_labels_map_to_sorted_indices_and_are_recorded(species_csv):
    task = load_task(f"csv:{species_csv}?label=species")
    assert task.class_names == SPECIES
    assert task.describe()["class_names"] == list(SPECIES)
    for split in SPLITS:
        x, y = task.split(split)
        np.testing.assert_array_equal(y, x[:, 0].astype("int64") % 3)


def test_csv_integer_labels_sort_numerically(tmp_path):
    rows = [[index, [10, 2, 7][index % 3]] for index in range(30)]
    path = _write_csv(tmp_path / "ints.csv", ["id", "label"], rows)
    task = load_task(f"csv:{path}?label=label")
    assert task.class_names == ("2", "7", "10")
    x, y = task.split("train")
    np.testing.assert_array_equal(y, [[2, 0, 1][int(i) % 3] for i in x[:, 0]])


def test_csv_binary_kind_maps_two_labels_to_0_and_1(tmp_path):
    rows = [[index, "yes" if index % 2 else "no"] for index in range(40)]
    path = _write_csv(tmp_path / "binary.csv", ["id", "answer"], rows)
    task = load_task(f"csv:{path}?label=answer&kind=binary")
    assert (task.kind, task.num_outputs, task.class_names) == ("binary", 1, ("no", "yes"))
    x, y = task.split("train")
    np.testing.assert_array_equal(y, x[:, 0].astype("int64") % 2)


def test_csv_regression_kind_reads_a_float_column(tmp_path):
    rows = [[index, index % 4, 2.5 * index] for index in range(50)]
    path = _write_csv(tmp_path / "regression.csv", ["id", "group", "price"], rows)
    task = load_task(f"csv:{path}?label=price&kind=regression")
    assert (task.kind, task.num_outputs, task.class_names) == ("regression", 1, None)
    assert task.sizes() == {"train": 30, "val": 10, "test": 10}
    for split in SPLITS:
        x, y = task.split(split)
        assert y.dtype == np.float32 and y.shape == (len(x), 1)
        np.testing.assert_allclose(y[:, 0], 2.5 * x[:, 0])


def test_csv_split_column_chooses_the_splits(tmp_path):
    rows = [
        [index, SPECIES[index % 3], ["train", "train", "val", "test"][index % 4]]
        for index in range(48)
    ]
    path = _write_csv(tmp_path / "split.csv", ["id", "species", "split"], rows)
    task = load_task(f"csv:{path}?label=species")
    assert task.input_shape == (1,)  # The split column is not a feature.
    assert task.sizes() == {"train": 24, "val": 12, "test": 12}
    for split, remainders in (("train", {0, 1}), ("val", {2}), ("test", {3})):
        assert {int(i) % 4 for i in task.split(split)[0][:, 0]} == remainders


def test_csv_split_column_without_val_rows_holds_out_20_percent_of_train(tmp_path):
    rows = [[index, SPECIES[index % 3], "test" if index >= 30 else "train"]
            for index in range(45)]
    path = _write_csv(tmp_path / "split.csv", ["id", "species", "split"], rows)
    task = load_task(f"csv:{path}?label=species")
    assert task.sizes() == {"train": 24, "val": 6, "test": 15}
    assert set(task.x_test[:, 0].astype(int)) == set(range(30, 45))


def test_csv_categorical_feature_is_rejected_naming_the_column(tmp_path):
    rows = [[index, ["red", "green"][index % 2], SPECIES[index % 3]] for index in range(30)]
    path = _write_csv(tmp_path / "colors.csv", ["id", "color", "species"], rows)
    with pytest.raises(DataError, match=r"column 'color' is not numeric.*one-hot") as info:
        load_task(f"csv:{path}?label=species")
    assert "\n" not in str(info.value)
    assert "'red'" in str(info.value)


def test_csv_missing_feature_value_is_rejected_with_its_line(tmp_path):
    rows = [[index, "" if index == 4 else 1.0, SPECIES[index % 3]] for index in range(30)]
    path = _write_csv(tmp_path / "holes.csv", ["id", "width", "species"], rows)
    with pytest.raises(DataError, match=r"column 'width' has a missing .* line 6"):
        load_task(f"csv:{path}?label=species")


def test_csv_unknown_label_column_lists_the_columns(species_csv):
    with pytest.raises(
        DataError,
        match=r"label='kind'.*columns of .*: id, petal_length, petal_width, species",
    ) as info:
        load_task(f"csv:{species_csv}?label=kind")
    assert "\n" not in str(info.value)
    with pytest.raises(DataError, match="no label option.*label=COLUMN"):
        load_task(f"csv:{species_csv}")


@pytest.mark.parametrize(
    "suffix, message",
    [
        ("?label=species&kind=ordinal", "kind must be one of"),
        ("?label=species&sep=;", "unknown option 'sep=;'"),
        ("?label=species&kind=binary", "kind=binary needs exactly two distinct labels"),
        ("?label=petal_width&kind=regression&label=id", "given twice"),
    ],
)
def test_csv_bad_options_are_one_line_errors(species_csv, suffix, message):
    with pytest.raises(DataError, match=message) as info:
        load_task(f"csv:{species_csv}{suffix}")
    assert "\n" not in str(info.value)


def test_csv_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="CSV file not found"):
        load_task(f"csv:{tmp_path / 'nope.csv'}?label=y")


# images:

CLASSES = ("cat", "dog", "fox")


def _write_images(folder, num_per_class=12, height=10, width=12, mode="RGB",
                  classes=CLASSES):
    """PNG images whose uniform pixel value encodes class and index: 60 * class + index."""
    for label, name in enumerate(classes):
        os.makedirs(folder / name, exist_ok=True)
        for index in range(num_per_class):
            value = 60 * label + index
            color = value if mode == "L" else (value, value, value)
            Image.new(mode, (width, height), color).save(folder / name / f"{index:02d}.png")
    return str(folder)


def _labels_from_pixels(x):
    return (np.round(x.reshape(len(x), -1).mean(axis=1) * 255) // 60).astype("int64")


@pytest.fixture
def rgb_folder(tmp_path):
    return _write_images(tmp_path / "rgb")


def test_images_folder_loads_channels_last_floats_with_folder_labels(rgb_folder):
    task = load_task(f"images:{rgb_folder}")
    assert (task.kind, task.num_outputs, task.class_names) == ("classification", 3, CLASSES)
    assert task.input_shape == (10, 12, 3)  # size of the first image: height 10, width 12
    assert task.sizes() == {"train": 21, "val": 9, "test": 6}
    values = []
    for split in SPLITS:
        x, y = task.split(split)
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert 0.0 <= x.min() and x.max() <= 1.0
        np.testing.assert_array_equal(y, _labels_from_pixels(x))
        values.extend(np.round(x[:, 0, 0, 0] * 255).astype(int).tolist())
    assert sorted(values) == sorted(60 * c + i for c in range(3) for i in range(12))


def test_images_size_option_resizes_and_grayscale_mode_keeps_one_channel(
    tmp_path, rgb_folder
):
    resized = load_task(f"images:{rgb_folder}?size=8x8")
    assert resized.input_shape == (8, 8, 3)
    np.testing.assert_array_equal(resized.y_train, _labels_from_pixels(resized.x_train))
    as_gray = load_task(f"images:{rgb_folder}?size=6x5&mode=grayscale")
    assert as_gray.input_shape == (6, 5, 1)
    gray_folder = _write_images(tmp_path / "gray", mode="L")
    gray = load_task(f"images:{gray_folder}?mode=grayscale")
    assert gray.input_shape == (10, 12, 1)
    np.testing.assert_array_equal(gray.y_test, _labels_from_pixels(gray.x_test))
    # A grayscale file read in the default rgb mode gets three equal channels.
    gray_as_rgb = load_task(f"images:{gray_folder}")
    assert gray_as_rgb.input_shape == (10, 12, 3)
    np.testing.assert_array_equal(gray_as_rgb.x_val[..., 0], gray_as_rgb.x_val[..., 2])


def test_images_of_other_sizes_are_resized_to_the_first_one(tmp_path):
    folder = _write_images(tmp_path / "mixed", num_per_class=6)
    Image.new("RGB", (30, 20), (7, 7, 7)).save(tmp_path / "mixed" / "dog" / "99.png")
    task = load_task(f"images:{folder}")
    assert task.input_shape == (10, 12, 3)
    assert sum(task.sizes().values()) == 19


def test_images_train_and_test_subfolders_are_the_splits(tmp_path):
    _write_images(tmp_path / "data" / "train", num_per_class=8)
    _write_images(tmp_path / "data" / "test", num_per_class=3)
    task = load_task(f"images:{tmp_path / 'data'}")
    assert task.class_names == CLASSES
    # val is a stratified 20% of train; test is exactly the test folder.
    assert task.sizes() == {"train": 18, "val": 6, "test": 9}
    np.testing.assert_array_equal(task.y_test, np.repeat([0, 1, 2], 3))
    test_values = np.round(task.x_test[:, 0, 0, 0] * 255).astype(int) % 60
    assert set(test_values.tolist()) == {0, 1, 2}


def test_images_val_subfolder_is_used_as_is(tmp_path):
    for split, count in (("train", 6), ("val", 2), ("test", 2)):
        _write_images(tmp_path / "data" / split, num_per_class=count)
    task = load_task(f"images:{tmp_path / 'data'}?size=4x4")
    assert task.sizes() == {"train": 18, "val": 6, "test": 6}


def test_images_unreadable_file_is_named_in_a_one_line_error(rgb_folder):
    with open(os.path.join(rgb_folder, "dog", "broken.png"), "wb") as file:
        file.write(b"this is not a png")
    with pytest.raises(DataError, match=r"Cannot read image .*broken\.png") as info:
        load_task(f"images:{rgb_folder}")
    assert "\n" not in str(info.value)


def test_images_empty_class_folder_is_rejected(rgb_folder):
    os.makedirs(os.path.join(rgb_folder, "zebra"))
    with open(os.path.join(rgb_folder, "zebra", "notes.txt"), "w") as file:
        file.write("no images here")
    with pytest.raises(DataError, match=r"Class folder .*zebra.* has no image files"):
        load_task(f"images:{rgb_folder}")


def test_images_missing_folder_and_folder_without_classes_are_rejected(tmp_path):
    with pytest.raises(DataError, match="Image folder not found"):
        load_task(f"images:{tmp_path / 'nowhere'}")
    Image.new("RGB", (4, 4)).save(tmp_path / "loose.png")
    with pytest.raises(DataError, match="has no class sub-folders"):
        load_task(f"images:{tmp_path}")
    _write_images(tmp_path / "split" / "train", num_per_class=4)
    os.makedirs(tmp_path / "split" / "test")
    with pytest.raises(DataError, match=r"split.test' has no class sub-folders"):
        load_task(f"images:{tmp_path / 'split'}")
    one_class = _write_images(tmp_path / "one", num_per_class=4, classes=("cat",))
    with pytest.raises(DataError, match=r"has one class folder \(cat\)"):
        load_task(f"images:{one_class}")


@pytest.mark.parametrize(
    "suffix, message",
    [("?size=8", "size must be HEIGHTxWIDTH"), ("?size=0x8", "size must be HEIGHTxWIDTH"),
     ("?mode=cmyk", "mode must be rgb or grayscale"), ("?color=rgb", "unknown option")],
)
def test_images_bad_options_are_rejected(rgb_folder, suffix, message):
    with pytest.raises(DataError, match=message):
        load_task(f"images:{rgb_folder}{suffix}")


# keras:


@pytest.fixture
def fresh_keras_cache():
    keras_tl.data.keras_datasets._keras_dataset.cache_clear()
    yield
    keras_tl.data.keras_datasets._keras_dataset.cache_clear()


@pytest.fixture
def offline(tmp_path, monkeypatch, fresh_keras_cache):
    """An empty KERAS_HOME and no network: every download attempt fails like offline."""
    import keras.src.backend.config
    import keras.src.utils.file_utils

    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    # keras reads KERAS_HOME once, at import: point its copy at the empty folder too.
    monkeypatch.setattr(keras.src.backend.config, "_KERAS_DIR", str(home))
    attempts = []

    def no_network(url, *args, **kwargs):
        attempts.append(url)
        raise urllib.error.URLError(OSError(101, "Network is unreachable"))

    # keras.datasets call keras.src.utils.file_utils.get_file, whose download is
    # this urlretrieve: patching it (not keras.utils.get_file, which the dataset
    # modules imported by name) stops every download before the network.
    monkeypatch.setattr(keras.src.utils.file_utils, "urlretrieve", no_network)
    return home, attempts


@pytest.mark.parametrize(
    "dataset, placed",
    [
        ("mnist", "datasets/mnist.npz"),
        ("fashion_mnist", "datasets/fashion-mnist/"),
        ("cifar10", "datasets/cifar-10-batches-py-target_archive"),
    ],
)
def test_keras_dataset_offline_says_how_to_pre_place_the_file(offline, dataset, placed):
    home, attempts = offline
    with pytest.raises(DataError) as info:
        load_task(f"keras:{dataset}")
    message = str(info.value)
    assert "\n" not in message
    assert f"keras:{dataset} is downloaded on first use" in message
    assert "no network" in message
    assert os.path.join(str(home), placed) in message
    assert f"$KERAS_HOME/{placed}" in message
    assert len(attempts) == 1
    assert not [name for _, _, names in os.walk(home) for name in names]


def test_unknown_keras_dataset_lists_the_known_ones():
    with pytest.raises(DataError, match="keras:mnist, keras:fashion_mnist, keras:cifar10"):
        load_task("keras:imagenet")


def _fake_load_data(train_shape, test_shape, label_shape):
    rng = np.random.default_rng(0)

    def load_data():
        def part(shape):
            num = shape[0]
            labels = (np.arange(num) % 10).astype("uint8").reshape((num,) + label_shape)
            return rng.integers(0, 256, shape, dtype="uint8"), labels

        return part(train_shape), part(test_shape)

    return load_data


@pytest.mark.parametrize(
    "dataset, train_shape, test_shape, label_shape, input_shape",
    [
        ("mnist", (200, 28, 28), (50, 28, 28), (), (28, 28, 1)),
        ("fashion_mnist", (200, 28, 28), (50, 28, 28), (), (28, 28, 1)),
        ("cifar10", (200, 32, 32, 3), (50, 32, 32, 3), (1,), (32, 32, 3)),
    ],
)
def test_keras_dataset_becomes_a_channels_last_task_with_a_10_percent_val_split(
    monkeypatch, fresh_keras_cache, dataset, train_shape, test_shape, label_shape,
    input_shape,
):
    load_data = _fake_load_data(train_shape, test_shape, label_shape)
    monkeypatch.setattr(getattr(keras.datasets, dataset), "load_data", load_data)
    task = load_task(f"keras:{dataset}")
    assert (task.kind, task.num_outputs) == ("classification", 10)
    assert task.input_shape == input_shape
    assert task.sizes() == {"train": 180, "val": 20, "test": 50}
    np.testing.assert_array_equal(np.bincount(task.y_val), [2] * 10)
    np.testing.assert_array_equal(task.y_test, np.arange(50) % 10)
    for split in SPLITS:
        x, y = task.split(split)
        assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
        assert y.dtype == np.int64 and y.ndim == 1
    assert (task.class_names is None) == (dataset == "mnist")


# End to end


@pytest.mark.slow
def test_evaluate_with_csv_target_and_csv_source(tmp_path):
    rng = np.random.default_rng(0)
    header = ["a", "b", "c", "d", "label"]
    source_x = rng.normal(size=(120, 4)).round(3)
    source_rows = [list(row) + [f"s{int(row[0] > 0) + 2 * int(row[1] > 0)}"]
                   for row in source_x]
    target_x = rng.normal(size=(60, 4)).round(3)
    target_rows = [list(row) + [["low", "high"][int(row[0] + row[1] > 0)]]
                   for row in target_x]
    source = _write_csv(tmp_path / "source.csv", header, source_rows)
    target = _write_csv(tmp_path / "target.csv", header, target_rows)
    results = keras_tl.evaluate(
        {
            "name": "csv",
            "model": {"builder": "mlp", "units": [8]},
            # One batch per epoch (batch sizes >= the splits) keeps compilations few.
            "source": {"task": f"csv:{source}?label=label", "epochs": 2, "batch_size": 128},
            "target": {"task": f"csv:{target}?label=label", "train_sizes": [20],
                       "epochs": 2, "batch_size": 20},
            "arms": ["scratch", "fine_tune"],
            "seeds": 2,
        },
        out=str(tmp_path / "run"),
    )
    assert len(results.trials) == 4
    assert [trial["status"] for trial in results.trials] == ["ok"] * 4


@pytest.mark.slow
def test_evaluate_with_images_target_and_digits_source(tmp_path):
    folder = _write_images(tmp_path / "images", num_per_class=10)
    results = keras_tl.evaluate(
        {
            "name": "images",
            "model": {"builder": "small_cnn", "filters": [4, 4], "units": 8},
            # One batch per epoch (batch sizes >= the splits) keeps compilations few.
            "source": {"task": "digits", "epochs": 1, "batch_size": 2048},
            "target": {"task": f"images:{folder}?size=8x8&mode=grayscale",
                       "train_sizes": [12], "epochs": 2, "batch_size": 12},
            "arms": ["scratch", "fine_tune"],
            "seeds": 2,
        },
        out=str(tmp_path / "run"),
    )
    assert len(results.trials) == 4
    assert [trial["status"] for trial in results.trials] == ["ok"] * 4


@pytest.mark.slow
def test_a_source_built_for_other_inputs_transfers_what_fits_and_says_why_no_scores(
    tmp_path
):
    folder = _write_images(tmp_path / "images", num_per_class=10)
    results = keras_tl.evaluate(
        {
            "model": {"builder": "small_cnn", "filters": [4, 4], "units": 8},
            # digits are 8x8x1; the RGB target is 8x8x3, so conv1 is not copied.
            "source": {"task": "digits", "epochs": 1, "batch_size": 2048},
            "target": {"task": f"images:{folder}?size=8x8", "train_sizes": [12],
                       "epochs": 1, "batch_size": 12},
            "arms": ["scratch", "fine_tune"], "freeze_depths": [0], "seeds": 1,
            "scores": ["logme"],
        },
        out=str(tmp_path / "run"),
    )
    trial = next(t for t in results.trials if t["arm"] == "fine_tune")
    assert trial["status"] == "ok"
    assert trial["scores"] == {"logme": None}
    assert "reads inputs of shape (8, 8, 1), not the target's (8, 8, 3)" in (
        trial["score_error"]
    )
    assert trial["cka"] is None


# Python objects: register_task with NumPy arrays, keras.utils.PyDataset, tf.data.


def _parity_arrays(num=120):
    digits = load_task("digits")
    return digits.x_train[:num], digits.y_train[:num] % 2


class _Batches(keras.utils.PyDataset):
    """A user's PyDataset: (x, y) batches of `batch_size`."""

    def __init__(self, x, y, batch_size=32):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index):
        batch = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[batch], self.y[batch]


def test_registered_numpy_arrays_are_a_task_experiments_can_name(tmp_path):
    x, y = _parity_arrays()
    task = keras_tl.register_task("my_parity", train=(x, y), kind="binary")
    assert load_task("my_parity") is task
    assert task.sizes() == {"train": 72, "val": 24, "test": 24}
    assert task.num_outputs == 1 and task.input_shape == (8, 8, 1)
    np.testing.assert_array_equal(np.sort(_all_rows(task).ravel()), np.sort(x.ravel()))
    experiment = {
        "source": {"task": "digits", "epochs": 1},
        "target": {"task": "my_parity", "train_sizes": [30], "epochs": 1},
        "arms": ["scratch", "fine_tune"], "seeds": 1,
    }
    results = keras_tl.evaluate(experiment, out=str(tmp_path / "run"))
    assert [t["status"] for t in results.trials] == ["ok", "ok"]
    with pytest.raises(keras_tl.ConfigError, match="workers=1"):
        keras_tl.evaluate(experiment, workers=2)


def test_a_pydataset_is_read_once_into_the_same_arrays():
    x, y = _parity_arrays()
    task = keras_tl.register_task(
        "parity_batches", train=_Batches(x[:80], y[:80]),
        val=_Batches(x[80:100], y[80:100]), test=(x[100:], y[100:]), kind="binary",
    )
    np.testing.assert_array_equal(task.x_train, x[:80])
    np.testing.assert_array_equal(task.y_val, y[80:100])
    assert task.sizes() == {"train": 80, "val": 20, "test": 20}


def test_a_dataset_over_the_memory_bound_is_written_to_disk_while_read(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("KERAS_TL_CACHE_DIR", str(tmp_path))
    x, y = _parity_arrays()
    task = keras_tl.register_task(
        "parity_on_disk", train=_Batches(x, y), kind="binary", max_bytes=10_000
    )
    assert isinstance(task.x_train, keras_tl.data.ondisk.DiskArray)
    rows = np.concatenate([np.asarray(task.split(split)[0]) for split in SPLITS])
    np.testing.assert_array_equal(np.sort(rows.ravel()), np.sort(x.ravel()))
    assert task.sizes() == {"train": 72, "val": 24, "test": 24}
    assert len(os.listdir(tmp_path / "data")) == 1


def test_register_task_refuses_names_and_data_it_cannot_take():
    x, y = _parity_arrays()
    with pytest.raises(DataError, match="not a built-in task"):
        keras_tl.register_task("digits", train=(x, y))
    with pytest.raises(DataError, match="npz:"):
        keras_tl.register_task("npz:x", train=(x, y))
    with pytest.raises(DataError, match="Received: list"):
        keras_tl.register_task("listed", train=[x, y])


@pytest.mark.backends("tensorflow")
def test_a_tf_data_dataset_is_a_task_on_tensorflow():
    import tensorflow as tf

    x, y = _parity_arrays()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(25)
    task = keras_tl.register_task("parity_tf", train=dataset, test=(x[:20], y[:20]),
                                  kind="binary")
    assert task.sizes()["train"] + task.sizes()["val"] == len(x)
    np.testing.assert_array_equal(np.sort(np.concatenate([task.y_train, task.y_val])),
                                  np.sort(y))


class _StandInDataset:
    """Looks like a tf.data.Dataset to keras-tl, without TensorFlow installed."""

    __module__ = "tensorflow.python.data.ops.dataset_ops"

    def as_numpy_iterator(self):
        raise AssertionError("must not be read on this backend")


@pytest.mark.backends("torch", "jax")
def test_a_tf_data_dataset_is_refused_with_the_fix_on_other_backends():
    with pytest.raises(DataError, match="tensorflow backend only.*PyDataset"):
        keras_tl.register_task("parity_tf", train=_StandInDataset())
