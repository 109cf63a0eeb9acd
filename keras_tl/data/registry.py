"""Task names -> tasks: `load_task`, the built-in list and `register_task`.

Sources of data, by task-name prefix: the built-in `digits*` tasks, `npz:PATH`,
`csv:PATH?label=COLUMN`, `images:DIR` and `keras:cifar10|mnist|fashion_mnist`.
Nothing here imports keras at module level: `keras-tl tasks` must not load a backend.
"""

import numpy as np

from keras_tl.data import ondisk
from keras_tl.data.builtin import _BUILTIN_DESCRIPTIONS, digits_task
from keras_tl.data.files import (
    check_splits,
    clean_split,
    csv_task,
    fill_splits,
    npz_task,
    num_outputs,
)
from keras_tl.data.images import images_task
from keras_tl.data.keras_datasets import keras_task
from keras_tl.data.task import KINDS, Task
from keras_tl.errors import DataError


def load_task(name):
    """Loads a task by name.

    Built-in tasks come from scikit-learn's digits (offline): `digits`,
    `digits:0-4`, `digits:5-9`, `digits:parity`, `digits:inverted`. Your own data:

    * `npz:PATH`: keys `x_train`, `y_train`, `x_test`, `y_test` and optionally
      `x_val`, `y_val` (else 20% of train, stratified) and `kind`.
    * `csv:PATH?label=COLUMN[&kind=classification|binary|regression]`: a
      comma-separated UTF-8 file with a header row, read with the `csv` module.
      Every column except the label (and `split`) is a float32 feature; a
      non-numeric feature column or a missing value is an error (one-hot encode
      categorical columns first). Classification and binary labels may be strings
      or integers and become 0..C-1 in sorted order (numeric order when all are
      integers), recorded in `Task.class_names`; binary needs exactly two values.
      Regression labels are numbers. Splits: stratified 60/20/20 (seed 0), unless
      a column named `split` holds `train` / `val` / `test` per row (train rows
      required; val or test, when absent, is a stratified 20% of train).
    * `images:DIR[?size=HxW][&mode=rgb|grayscale]`: one sub-folder per class
      (sorted folder names -> labels 0..C-1), each with image files PIL can read;
      hidden files and files with non-image extensions are skipped. Images are
      loaded with PIL (no TensorFlow or grain needed, unlike
      `keras.utils.image_dataset_from_directory`), converted to RGB (3 channels)
      or grayscale (1 channel), resized bilinearly to `size` (default: the size of
      the first image) and scaled to float32 in [0, 1], channels-last. Splits:
      `DIR/train/<class>/`, `DIR/val/<class>/`, `DIR/test/<class>/` when DIR holds
      only such folders (missing val or test: a stratified 20% of train),
      otherwise stratified 60/20/20. A folder whose decoded images fit in
      `MAX_IN_MEMORY_BYTES` (4 GiB) is loaded into memory; a larger one is decoded
      once into `ondisk.cache_dir()` (reused while the files are unchanged) and
      read a batch at a time.
    * `keras:cifar10`, `keras:mnist`, `keras:fashion_mnist`: through
      `keras.datasets.<name>.load_data()`, which downloads the data into
      `$KERAS_HOME/datasets/` on first use (offline, pre-place the file; the error
      says where). Pixels scaled to [0, 1], MNIST-like images get a channel axis;
      test split = the dataset's test set, val = a stratified 10% of its train set.
    * a name given to `register_task` (NumPy arrays, a `keras.utils.PyDataset`
      or a `tf.data.Dataset` from Python).

    Args:
        name: str. The task name.

    Returns:
        A `Task`.

    Example:

    >>> task = keras_tl.load_task("digits:0-4")
    >>> task.num_outputs
    5
    """
    if not isinstance(name, str):
        raise DataError(f"A task name must be a string. Received: {name!r}.")
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name in _BUILTIN_DESCRIPTIONS:
        return digits_task(name)
    loaders = {"npz:": npz_task, "csv:": csv_task, "images:": images_task,
               "keras:": keras_task}
    for prefix, loader in loaders.items():
        if name.startswith(prefix):
            return loader(name)
    raise DataError(
        f"Unknown task {name!r}. Expected one of {', '.join(_BUILTIN_DESCRIPTIONS)}, "
        f"or npz:PATH, csv:PATH?label=COLUMN, images:DIR, keras:cifar10, keras:mnist, "
        f"keras:fashion_mnist. Run `keras-tl tasks` to list them."
    )


def builtin_tasks():
    """Returns `describe()` of every built-in task, plus a one-line description."""
    rows = []
    for name, description in _BUILTIN_DESCRIPTIONS.items():
        row = load_task(name).describe()
        row["description"] = description
        rows.append(row)
    return rows


_REGISTERED = {}


_PREFIXES = ("npz:", "csv:", "images:", "keras:")


def register_task(name, train, val=None, test=None, kind="classification",
                  max_bytes=None):
    """Makes data held in Python a task that experiments can name.

    Each split is `(x, y)` NumPy arrays, a `keras.utils.PyDataset` or (on the
    tensorflow backend only) a `tf.data.Dataset`, the latter two yielding
    batches `(x, y)` (or `(x, y, sample_weight)`; weights are ignored) as
    `keras.Model.fit` takes them. Datasets are iterated once: into memory, or,
    once a split's inputs pass `max_bytes`, into a file in `ondisk.cache_dir()`
    that is read a batch at a time and deleted when this process exits. Missing
    splits are carved out of train as
    for `npz:` (stratified, seed 0). The task lives in this Python process: run
    experiments that name it with `workers=1`.

    Args:
        name: str. The task's name, used as `task: NAME` in experiments. It
            cannot be a built-in task or start with `npz:`, `csv:`, `images:` or
            `keras:`. Registering a name again replaces the earlier data.
        train: `(x, y)`, a `keras.utils.PyDataset` or a `tf.data.Dataset`.
        val: same, or None (a stratified 20% of train).
        test: same, or None (a stratified 20% of train).
        kind: str. `"classification"` (integer labels 0..C-1), `"binary"`
            (0/1) or `"regression"` (float targets).
        max_bytes: int or None. Most bytes of one dataset split's inputs
            (float32) kept in memory; None: `MAX_IN_MEMORY_BYTES` (4 GiB).

    Returns:
        The `Task`.

    Example:

    >>> x = np.random.rand(100, 8, 8, 1).astype("float32")
    >>> y = np.arange(100) % 2
    >>> task = keras_tl.register_task("my_data", train=(x, y), kind="binary")
    >>> keras_tl.evaluate({"source": {"task": "digits"},
    ...                    "target": {"task": "my_data", "train_sizes": [40]}})
    """
    if not isinstance(name, str) or not name or name in _BUILTIN_DESCRIPTIONS or (
        name.startswith(_PREFIXES)
    ):
        raise DataError(
            f"register_task: name must be a new non-empty string, not a built-in "
            f"task or one starting with {', '.join(_PREFIXES)}. Received: {name!r}."
        )
    if kind not in KINDS:
        raise DataError(
            f"register_task: kind must be one of {', '.join(KINDS)}. Received: "
            f"kind={kind!r}."
        )
    if max_bytes is None:
        max_bytes = ondisk.MAX_IN_MEMORY_BYTES
    arrays = {}
    for split, data in (("train", train), ("val", val), ("test", test)):
        if data is None:
            continue
        x, y = _split_arrays(name, split, data, max_bytes)
        arrays[f"x_{split}"], arrays[f"y_{split}"] = clean_split(name, split, x, y, kind)
    check_splits(f"task {name!r}", arrays, kind)
    fill_splits(
        f"task {name!r}", kind, arrays,
        "Pass more training samples, or val= and test= splits.",
    )
    task = Task(name=name, kind=kind, num_outputs=num_outputs(arrays, kind), **arrays)
    _REGISTERED[name] = task
    return task


def is_registered(name):
    """Whether `name` is a task registered with `register_task` in this process."""
    return name in _REGISTERED


def _split_arrays(name, split, data, max_bytes):
    """`(x, y)` NumPy arrays of one split given as arrays or a batched dataset."""
    import keras

    if isinstance(data, tuple) and len(data) == 2:
        return np.asarray(data[0]), np.asarray(data[1])
    if isinstance(data, keras.utils.PyDataset):
        batches = (data[index] for index in range(len(data)))
    elif type(data).__module__.startswith("tensorflow") and hasattr(
        data, "as_numpy_iterator"
    ):
        if keras.config.backend() != "tensorflow":
            raise DataError(
                f"Task {name!r}: the {split} split is a tf.data.Dataset, which keras-tl "
                f"reads on the tensorflow backend only (the backend is "
                f"{keras.config.backend()!r}). Use KERAS_BACKEND=tensorflow, or pass "
                f"NumPy arrays or a keras.utils.PyDataset."
            )
        batches = data.as_numpy_iterator()
    else:
        raise DataError(
            f"Task {name!r}: the {split} split must be a tuple (x, y) of arrays, a "
            f"keras.utils.PyDataset or a tf.data.Dataset of (x, y) batches. Received: "
            f"{type(data).__name__}."
        )
    xs, ys, num_bytes, writer = [], [], 0, None
    try:
        for batch in batches:
            if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
                raise DataError(
                    f"Task {name!r}: the {split} dataset must yield (x, y) batches. "
                    f"Received an element of type {type(batch).__name__}."
                )
            x, y = np.asarray(batch[0], dtype="float32"), np.asarray(batch[1])
            if x.ndim == 1:
                x = x[:, np.newaxis]
            num_bytes += x.size * 4
            if writer is None and num_bytes > max_bytes:
                writer = ondisk.RowWriter(kind="dataset")
                for block in xs:
                    writer.write(block)
                xs = []
            if writer is None:
                xs.append(x)
            else:
                writer.write(x)
            ys.append(y)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if not ys:
        raise DataError(f"Task {name!r}: the {split} dataset yielded no batches.")
    x = np.concatenate(xs) if writer is None else writer.finish()
    return x, np.concatenate(ys)
