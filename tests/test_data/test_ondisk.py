"""Data larger than memory: DiskArray, image folders and datasets read from disk."""

import os
import pickle
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

import keras_tl
import keras_tl.networks.network
from keras_tl.data import images as image_tasks
from keras_tl.data import ondisk
from keras_tl.data.registry import load_task
from keras_tl.data.task import SPLITS
from keras_tl.errors import DataError
from keras_tl.measure import features
from keras_tl.training import fit, fusion

# Trains models end to end: the full suite (tox, CI) runs it; `-m "not slow"` skips it.
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def data_cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("KERAS_TL_CACHE_DIR", str(folder))
    return folder / "data"


def _disk_array(values, name="rows.f32"):
    writer = ondisk.RowWriter(name)
    for start in range(0, len(values), 7):
        writer.write(values[start:start + 7])
    return writer.finish()


def test_a_disk_array_indexes_like_the_numpy_array_it_holds():
    values = np.random.default_rng(0).random((30, 4, 3)).astype("float32")
    array = _disk_array(values)
    assert array.shape == values.shape and len(array) == 30 and array.ndim == 3
    rows = np.array([7, 2, 2, 29])
    keys = (3, -1, slice(4, 9), slice(None, None, 5), rows, [], values[:, 0, 0] > 0.5,
            (rows, 1), (3, 1), (slice(2, 6), slice(None), 0))
    for key in keys:
        np.testing.assert_array_equal(array[key], values[key])
        assert type(array[key]) is np.ndarray
    np.testing.assert_array_equal(np.asarray(array), values)
    subset = array.take(rows)
    np.testing.assert_array_equal(subset[(slice(1, 3), 2)], values[rows][1:3, 2])


@pytest.mark.parametrize("key", [(Ellipsis, 0), ([0, 1], [1, 2]), np.zeros((2, 2), int)])
def test_a_disk_array_refuses_keys_it_would_answer_differently_from_numpy(key):
    with pytest.raises(TypeError, match="DiskArray"):
        _disk_array(np.zeros((4, 3, 2), dtype="float32"))[key]


def test_a_relative_cache_folder_gives_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KERAS_TL_CACHE_DIR", "relative")
    array = _disk_array(np.ones((3, 2), dtype="float32"))
    assert os.path.isabs(array.path)
    monkeypatch.chdir("/")
    np.testing.assert_array_equal(array[:], np.ones((3, 2)))


def test_taking_rows_reads_nothing_and_composes():
    values = np.arange(40, dtype="float32").reshape(20, 2)
    subset = ondisk.take_rows(_disk_array(values), np.array([9, 3, 15, 0]))
    assert isinstance(subset, ondisk.DiskArray) and subset.shape == (4, 2)
    np.testing.assert_array_equal(subset[1:3], values[[3, 15]])
    again = ondisk.take_rows(subset, np.array([3, 0]))
    np.testing.assert_array_equal(again[:], values[[0, 9]])
    np.testing.assert_array_equal(ondisk.take_rows(values, [1]), values[[1]])


def test_a_disk_array_pickles_as_its_file_name_not_its_rows():
    array = _disk_array(np.zeros((5000, 64), dtype="float32"))
    payload = pickle.dumps(array)
    assert len(payload) < 1000
    np.testing.assert_array_equal(pickle.loads(payload)[:], array[:])


def test_a_file_appears_under_its_name_only_when_finished(data_cache):
    writer = ondisk.RowWriter("partial.f32")
    writer.write(np.ones((3, 2)))
    assert not (data_cache / "partial.f32").exists()
    writer.finish()
    assert (data_cache / "partial.f32").exists()
    aborted = ondisk.RowWriter("aborted.f32")
    aborted.write(np.ones((3, 2)))
    aborted.abort()
    assert sorted(os.listdir(data_cache)) == ["partial.f32"]


def test_files_of_processes_that_are_gone_are_deleted_by_the_next_writer(data_cache):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(gone.stdout)
    mine = ondisk.process_file_name("dataset")  # This (live) process's: kept.
    left = [mine.replace(f"-{os.getpid()}-", f"-{dead_pid}-")]
    left.append(f"images-abc-train.f32.{left[0][:-4].replace('dataset', 'partial')}.partial")
    os.makedirs(data_cache)
    for name in [mine, *left]:
        (data_cache / name).write_bytes(b"\0" * 8)
    # The first writer of this process in the folder sweeps it.
    writer = ondisk.RowWriter("next.f32")
    writer.write(np.ones((1, 2)))
    writer.finish()
    assert sorted(os.listdir(data_cache)) == sorted([mine, "next.f32"])


# images: folders larger than the memory bound


def _write_images(folder, num_per_class=15, classes=("a", "b", "c")):
    """8x8 RGB images: noise around a class-dependent colour, so classes are learnable."""
    rng = np.random.default_rng(0)
    for label, name in enumerate(classes):
        os.makedirs(folder / name)
        for index in range(num_per_class):
            pixels = rng.normal(60 + 70 * label, 30, size=(8, 8, 3)).clip(0, 255)
            Image.fromarray(pixels.astype("uint8")).save(folder / name / f"{index}.png")
    return f"images:{folder}"


@pytest.fixture
def image_task_name(tmp_path):
    return _write_images(tmp_path / "images")


def _load_on_disk(name, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(ondisk, "MAX_IN_MEMORY_BYTES", 1)
        return load_task(name)


def test_a_folder_over_the_memory_bound_is_decoded_to_disk_with_the_same_values(
    image_task_name, monkeypatch
):
    in_memory = load_task(image_task_name)
    on_disk = _load_on_disk(image_task_name, monkeypatch)
    for split in SPLITS:
        x_memory, y_memory = in_memory.split(split)
        x_disk, y_disk = on_disk.split(split)
        assert isinstance(x_disk, ondisk.DiskArray) and type(x_memory) is np.ndarray
        np.testing.assert_array_equal(np.asarray(x_disk), x_memory)
        np.testing.assert_array_equal(y_disk, y_memory)
    assert on_disk.fingerprint() == in_memory.fingerprint()
    assert on_disk.input_shape == in_memory.input_shape == (8, 8, 3)
    small_disk, small_memory = on_disk.subsample(9, seed=1), in_memory.subsample(9, seed=1)
    assert isinstance(small_disk.x_train, ondisk.DiskArray)
    np.testing.assert_array_equal(np.asarray(small_disk.x_train), small_memory.x_train)


def test_a_decoded_folder_is_reused_until_its_files_change(
    image_task_name, tmp_path, monkeypatch, data_cache
):
    first = _load_on_disk(image_task_name, monkeypatch)
    # One file: val and test are rows of the folder's train split.
    assert len([name for name in os.listdir(data_cache) if name.endswith(".f32")]) == 1

    def refuse(path, size, mode):
        raise AssertionError("an image was decoded again")

    with monkeypatch.context() as patch:
        patch.setattr(image_tasks, "_load_image", refuse)
        again = _load_on_disk(f"{image_task_name}?size=8x8", monkeypatch)
    np.testing.assert_array_equal(np.asarray(again.x_train), np.asarray(first.x_train))
    changed = tmp_path / "images" / "a" / "0.png"
    Image.new("RGB", (8, 8), (255, 0, 0)).save(changed)
    os.utime(changed, ns=(0, 10**18))
    _load_on_disk(image_task_name, monkeypatch)
    assert len([name for name in os.listdir(data_cache) if name.endswith(".f32")]) == 2


def test_processes_loading_a_folder_at_once_decode_it_once(image_task_name, monkeypatch):
    decoded, load_image = [], image_tasks._load_image

    def slow_load(path, size, mode):
        decoded.append(path)
        time.sleep(0.01)
        return load_image(path, size, mode)

    monkeypatch.setattr(ondisk, "MAX_IN_MEMORY_BYTES", 1)
    monkeypatch.setattr(image_tasks, "_load_image", slow_load)
    name = f"{image_task_name}?size=8x8"
    results = []
    threads = [threading.Thread(target=lambda: results.append(load_task(name)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(decoded) == 45  # 3 classes x 15 images, once.
    np.testing.assert_array_equal(results[0].x_train[:], results[1].x_train[:])


@pytest.mark.slow
def test_a_sweep_on_a_folder_read_from_disk_gives_the_in_memory_results(
    image_task_name, tmp_path, monkeypatch, data_cache
):
    experiment = {
        "model": {"builder": "small_cnn", "filters": [4, 4], "units": 8},
        "source": {"task": "digits", "epochs": 1, "batch_size": 2048},
        "target": {"task": f"{image_task_name}?mode=grayscale", "train_sizes": [18],
                   "epochs": 3, "batch_size": 6},
        # fine_tune at depth 1 trains on cached frozen-prefix features of the train
        # and (for early stopping) val splits.
        "arms": ["scratch", "fine_tune", "linear_probe"], "freeze_depths": [1],
        "seeds": 2, "scores": ["logme"], "early_stopping": {"patience": 2},
    }
    in_memory = keras_tl.evaluate(experiment, out=str(tmp_path / "memory"))

    def whole_array(self, dtype=None, copy=None):
        raise AssertionError("a whole DiskArray was read into memory")

    reads, read_rows = [], ondisk.DiskArray.__getitem__

    def counted_read(self, key):
        values = read_rows(self, key)
        reads.append(len(values))
        return values

    with monkeypatch.context() as patch:
        patch.setattr(ondisk, "MAX_IN_MEMORY_BYTES", 1)
        patch.setattr(ondisk, "_CHUNK_ROWS", 4)
        patch.setattr(fit, "PREDICT_BATCH_SIZE", 4)
        patch.setattr(ondisk.DiskArray, "__array__", whole_array)
        patch.setattr(ondisk.DiskArray, "__getitem__", counted_read)
        on_disk = keras_tl.evaluate(experiment, out=str(tmp_path / "disk"))
    assert len(on_disk.trials) == 6
    for memory, disk in zip(in_memory.trials, on_disk.trials):
        assert disk["status"] == memory["status"] == "ok", disk.get("error")
        assert disk["test"]["accuracy"] == memory["test"]["accuracy"]
        assert disk["test"]["loss"] == pytest.approx(memory["test"]["loss"], rel=1e-6)
        assert disk["epochs"] == memory["epochs"]
        if disk["arm"] != "scratch":  # Features of 18 rows "exceed" a 1-byte bound.
            assert "GiB keras-tl holds in memory" in disk["score_error"]
    # Batches of 6 rows, chunks of 4, and CKA's 9 test rows (the train split is 27):
    # never a whole split.
    assert 0 < max(reads) <= 9
    # Prefix outputs on disk were this run's own files, deleted with its cache.
    assert [name for name in os.listdir(data_cache) if name.startswith("features")] == []


def test_fused_validation_batches_from_disk_are_the_in_memory_ones():
    rng = np.random.default_rng(0)
    x_a, y_a = rng.random((23, 4)).astype("float32"), np.arange(23) % 3
    x_b, y_b = rng.random((10, 4)).astype("float32"), np.arange(10) % 2
    keys, weights = ["a", "b"], [1.0, 0.5]
    x, targets, sample_weights = fusion._joint_batch([(x_a, y_a), (x_b, y_b)], keys, weights)
    batches = fusion.JointValidation(
        [(_disk_array(x_a, "a.f32"), y_a), (_disk_array(x_b, "b.f32"), y_b)], keys,
        weights, batch_size=8,
    )
    assert len(batches) == 5
    for index in range(len(batches)):
        rows = slice(8 * index, 8 * index + 8)
        batch_x, batch_targets, batch_weights = batches[index]
        np.testing.assert_array_equal(batch_x, x[rows])
        for key in keys:
            np.testing.assert_array_equal(batch_targets[key], targets[key][rows])
            np.testing.assert_array_equal(batch_weights[key], sample_weights[key][rows])


def test_scores_on_features_larger_than_memory_are_refused_with_the_fix(monkeypatch):
    task = load_task("digits")
    model = keras_tl.Network("small_cnn").build(task.input_shape, 10, seed=0)
    monkeypatch.setattr(ondisk, "MAX_IN_MEMORY_BYTES", 100 * 8 * 16)
    with pytest.raises(DataError, match="need 200 x .* float64 features.*Score a later"):
        features.layer_features(model, "fc1", task.x_train[:200])


# Python datasets larger than the memory bound (see also test_user_data.py)


def test_a_datasets_file_is_removed_when_the_process_exits(data_cache):
    script = (
        "import numpy as np, keras, keras_tl\n"
        "class B(keras.utils.PyDataset):\n"
        "    def __init__(self): super().__init__()\n"
        "    def __len__(self): return 4\n"
        "    def __getitem__(self, i): return np.full((10, 3), i, 'float32'), np.arange(10) % 2\n"
        "task = keras_tl.register_task('t', train=B(), kind='binary', max_bytes=100)\n"
        "print(task.x_train.path)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                            text=True, env=os.environ.copy(), timeout=300)
    assert result.returncode == 0, result.stderr
    path = result.stdout.strip().splitlines()[-1]
    assert os.path.dirname(path) == str(data_cache)
    assert not os.path.exists(path)
