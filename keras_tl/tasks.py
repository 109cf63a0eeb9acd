"""Tasks: named data with a kind and fixed, seeded, stratified splits.

A task is plain NumPy: images are channels-last float32 arrays, labels are int64
class indices (classification), 0/1 (binary) or float32 columns (regression);
inputs too large for memory are `ondisk.DiskArray`s, read a batch at a time. The
splits are fixed once per task (seed 0), so every trial, arm and backend sees the
same train / val / test partition; trials draw their training subsets from the
train split with `Task.subsample`.

Sources of data, by task-name prefix: the built-in `digits*` tasks, `npz:PATH`,
`csv:PATH?label=COLUMN`, `images:DIR` and `keras:cifar10|mnist|fashion_mnist`
(see `load_task`). Nothing here imports keras at module level: `keras-tl tasks`
must not load a backend.
"""

import csv
import dataclasses
import functools
import hashlib
import os

import numpy as np

from keras_tl import ondisk
from keras_tl.errors import DataError

KINDS = ("classification", "binary", "regression")
SPLITS = ("train", "val", "test")
SPLIT_SEED = 0
# The most input data (float32) a task holds in memory: an image folder or a Python
# dataset larger than this is written to keras-tl's data cache and read from there
# a batch at a time (`ondisk`).
MAX_IN_MEMORY_BYTES = 4 * 2**30

_BUILTIN_DESCRIPTIONS = {
    "digits": "scikit-learn 8x8 digits, 10 classes",
    "digits:0-4": "digits 0-4 only, 5 classes",
    "digits:5-9": "digits 5-9 only, relabelled 0-4, 5 classes",
    "digits:parity": "all digits, label = digit is odd (binary, 1 output)",
    "digits:inverted": "all digits with pixels inverted (1 - x), 10 classes",
}


@dataclasses.dataclass(frozen=True, eq=False)
class Task:
    """Named data with a kind and fixed train / val / test splits.

    Args:
        name: str. The task's name, e.g. `"digits:parity"`.
        kind: str. `"classification"`, `"binary"` or `"regression"`.
        num_outputs: int. Width of the network head: the number of classes for
            classification, 1 for binary, the number of targets for regression.
        x_train, y_train, x_val, y_val, x_test, y_test: NumPy arrays; inputs
            larger than memory are `keras_tl.ondisk.DiskArray`s, which index
            like NumPy arrays and read only the rows asked for.
        class_names: tuple of str or None. The name of each class index, where
            the data has names (`csv:` labels, `images:` folder names, CIFAR-10
            and Fashion-MNIST classes); None otherwise.

    Example:

    >>> task = keras_tl.tasks.load_task("digits:parity")
    >>> small = task.subsample(30, seed=0)
    >>> small.x_train.shape
    (30, 8, 8, 1)
    """

    name: str
    kind: str
    num_outputs: int
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple = None

    @property
    def input_shape(self):
        return tuple(self.x_train.shape[1:])

    def split(self, name):
        """Returns `(x, y)` of the split `"train"`, `"val"` or `"test"`."""
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def sizes(self):
        return {split: len(self.split(split)[1]) for split in SPLITS}

    def num_train(self, train_size):
        """Resolves a train size (a count, or a fraction in (0, 1]) to a count."""
        available = len(self.y_train)
        is_count = isinstance(train_size, (int, np.integer)) and not isinstance(
            train_size, bool
        )
        is_fraction = isinstance(train_size, float) and 0.0 < train_size <= 1.0
        if not ((is_count and train_size >= 1) or is_fraction):
            raise DataError(
                f"Train size must be a positive count or a fraction in (0, 1]. "
                f"Received: train_size={train_size!r} (task {self.name!r})."
            )
        if isinstance(train_size, float):
            return max(1, int(round(train_size * available)))
        if train_size > available:
            raise DataError(
                f"Train size {train_size} is larger than the train split of task "
                f"{self.name!r} ({available} samples). Use a size <= {available} or "
                f"a fraction in (0, 1]."
            )
        return train_size

    def subsample(self, train_size, seed):
        """Returns this task with its train split reduced to `train_size` samples.

        The subset is stratified by class and nested: for the same seed, the
        30-sample subset is contained in the 100-sample one. Val and test splits
        are unchanged.

        Args:
            train_size: int or float. A count, or a fraction of the train split.
            seed: int. Which subset to draw.

        Returns:
            A new `Task`.
        """
        count = self.num_train(train_size)
        order = _nested_order(self.y_train, self.kind, seed)
        keep = np.sort(order[:count])
        return dataclasses.replace(
            self, x_train=ondisk.take_rows(self.x_train, keep), y_train=self.y_train[keep]
        )

    def fingerprint(self):
        """A short hash of every split's data and labels."""
        digest = hashlib.sha256(f"{self.name}|{self.kind}|{self.num_outputs}".encode())
        for split in SPLITS:
            for array in self.split(split):
                for block in ondisk.chunks(array):
                    digest.update(np.ascontiguousarray(block).tobytes())
        if self.class_names is not None:
            digest.update("|".join(self.class_names).encode())
        return digest.hexdigest()[:16]

    def describe(self):
        description = {
            "name": self.name,
            "kind": self.kind,
            "num_outputs": self.num_outputs,
            "input_shape": list(self.input_shape),
            "sizes": self.sizes(),
        }
        if self.class_names is not None:
            description["class_names"] = list(self.class_names)
        return description


def _nested_order(labels, kind, seed):
    """A seeded order of sample indices whose every prefix is stratified."""
    rng = np.random.default_rng(seed)
    if kind == "regression":
        return rng.permutation(len(labels))
    ranks = np.empty(len(labels))
    labels = np.asarray(labels).reshape(len(labels), -1)[:, 0]
    for value in np.unique(labels):
        members = np.flatnonzero(labels == value)
        shuffled = rng.permutation(members)
        # The j-th sample of a class gets rank (j + 0.5) / class size, so taking the
        # lowest ranks takes every class in proportion to its size.
        ranks[shuffled] = (np.arange(len(members)) + 0.5) / len(members)
    tie_breaker = rng.random(len(labels))
    return np.lexsort((tie_breaker, ranks))


def _stratified_split(labels, fractions, seed):
    """Splits indices into len(fractions) stratified parts (last part takes the rest)."""
    rng = np.random.default_rng(seed)
    parts = [[] for _ in fractions]
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        bounds = np.round(np.cumsum(fractions)[:-1] * len(members)).astype(int)
        for part, chunk in zip(parts, np.split(members, bounds)):
            part.extend(chunk.tolist())
    return [np.sort(np.asarray(part, dtype=np.int64)) for part in parts]


@functools.lru_cache(maxsize=1)
def _digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype("float32")[..., np.newaxis]
    labels = bunch.target.astype("int64")
    train, val, test = _stratified_split(labels, (0.6, 0.2, 0.2), SPLIT_SEED)
    return images, labels, {"train": train, "val": val, "test": test}


def _digits_task(name):
    images, labels, indices = _digits()
    variant = name.split(":", 1)[1] if ":" in name else ""
    arrays = {}
    for split in SPLITS:
        x, y = images[indices[split]], labels[indices[split]]
        if variant == "0-4":
            x, y = x[y < 5], y[y < 5]
        elif variant == "5-9":
            x, y = x[y >= 5], y[y >= 5] - 5
        elif variant == "parity":
            y = y % 2
        elif variant == "inverted":
            x = 1.0 - x
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
    kind, num_outputs = {
        "": ("classification", 10),
        "0-4": ("classification", 5),
        "5-9": ("classification", 5),
        "parity": ("binary", 1),
        "inverted": ("classification", 10),
    }[variant]
    return Task(name=name, kind=kind, num_outputs=num_outputs, **arrays)


def _npz_task(name):
    path = name[len("npz:"):]
    if not os.path.isfile(path):
        raise DataError(
            f"Task file not found: {path!r} (from task {name!r}). Expected an .npz "
            f"file with x_train, y_train, x_test, y_test; check the path."
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except Exception as error:
        raise DataError(
            f"Cannot read {path!r} as an .npz archive ({type(error).__name__}). "
            f"Save it with numpy.savez(path, x_train=..., y_train=..., ...)."
        ) from None
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in arrays]
    if missing:
        raise DataError(
            f"{path!r} lacks the key(s) {', '.join(missing)}; it has "
            f"{', '.join(sorted(arrays)) or 'none'}. Expected x_train, y_train, "
            f"x_test, y_test (and optionally x_val, y_val, kind)."
        )
    kind = str(arrays.pop("kind", "classification"))
    if kind not in KINDS:
        raise DataError(
            f"{path!r}: kind must be one of {', '.join(KINDS)}. Received: {kind!r}."
        )
    if ("x_val" in arrays) != ("y_val" in arrays):
        raise DataError(f"{path!r}: give both x_val and y_val, or neither.")
    for split in SPLITS:
        if f"x_{split}" in arrays:
            arrays[f"x_{split}"], arrays[f"y_{split}"] = _clean_split(
                path, split, arrays[f"x_{split}"], arrays[f"y_{split}"], kind
            )
    if "x_val" not in arrays:
        labels = arrays["y_train"]
        strata = labels if kind != "regression" else np.zeros(len(labels))
        train, val = _stratified_split(strata, (0.8, 0.2), SPLIT_SEED)
        x, y = arrays["x_train"], arrays["y_train"]
        arrays["x_train"], arrays["y_train"] = x[train], y[train]
        arrays["x_val"], arrays["y_val"] = x[val], y[val]
        if len(val) == 0:
            raise DataError(
                f"{path!r}: the train split is too small to hold out a validation "
                f"split ({len(y)} samples). Add x_val and y_val to the file."
            )
    return Task(name=name, kind=kind, num_outputs=_num_outputs(arrays, kind), **arrays)


def _num_outputs(arrays, kind):
    """Head width: classes (largest label + 1), 1 for binary, regression columns."""
    if kind == "classification":
        return int(max(arrays[f"y_{s}"].max() for s in SPLITS)) + 1
    if kind == "binary":
        return 1
    return arrays["y_train"].shape[1]


def _clean_split(path, split, x, y, kind):
    if len(x) == 0 or len(y) == 0:
        raise DataError(
            f"{path!r}: the {split} split is empty. Every split needs at least one "
            f"sample."
        )
    if len(x) != len(y):
        raise DataError(
            f"{path!r}: x_{split} has {len(x)} samples but y_{split} has {len(y)}. "
            f"They must match."
        )
    if not isinstance(x, ondisk.DiskArray):
        x = np.asarray(x, dtype="float32")
    if x.ndim == 1:
        x = x[:, np.newaxis]
    if kind == "regression":
        y = np.asarray(y, dtype="float32").reshape(len(y), -1)
        return x, y
    y = np.asarray(y).reshape(-1)
    if y.dtype.kind not in "iu" and not (
        y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y))
    ):
        raise DataError(
            f"{path!r}: y_{split} must hold integer class labels for a {kind} task. "
            f"Received dtype {y.dtype} with values like {y[:3].tolist()}. Store "
            f"integers 0..C-1, or set kind='regression' in the file."
        )
    y = y.astype("int64")
    top = 1 if kind == "binary" else None
    if y.min() < 0 or (top is not None and y.max() > top):
        expected = "0 or 1" if kind == "binary" else "integers >= 0"
        raise DataError(
            f"{path!r}: y_{split} must be {expected} for a {kind} task. Received "
            f"values from {y.min()} to {y.max()}."
        )
    return x, y


# User data: csv:, images:, keras:


def _parse_spec(name, prefix, options):
    """Splits `PREFIX:PATH?key=value&key=value` into the path and an options dict.

    Values are taken literally (no percent-decoding), so a column name may hold
    any character except `&`; the path ends at the first `?`.
    """
    path, _, query = name[len(prefix):].partition("?")
    if not path:
        raise DataError(
            f"Task {name!r} names no path. Expected {prefix}PATH, e.g. "
            f"{_EXAMPLES[prefix]}."
        )
    parsed = {}
    for item in query.split("&") if query else []:
        key, equals, value = item.partition("=")
        if not equals or key not in options:
            raise DataError(
                f"Task {name!r}: unknown option {item!r}. Expected "
                f"{' or '.join(f'{option}=...' for option in options)} after '?', "
                f"joined by '&', e.g. {_EXAMPLES[prefix]}."
            )
        if key in parsed:
            raise DataError(f"Task {name!r}: option {key!r} is given twice.")
        parsed[key] = value
    return path, parsed


_EXAMPLES = {
    "csv:": "csv:data.csv?label=species&kind=classification",
    "images:": "images:photos?size=64x64&mode=rgb",
}


def _fill_splits(source, kind, arrays, hint):
    """Carves the splits missing from `arrays` out of its train split (stratified).

    Train only: 60/20/20 train/val/test. Train and test: 80/20 train/val. Train and
    val: 80/20 train/test. Every split must end up non-empty.
    """
    missing = [split for split in ("val", "test") if f"x_{split}" not in arrays]
    if missing:
        x, y = arrays["x_train"], arrays["y_train"]
        strata = y if kind != "regression" else np.zeros(len(y))
        fractions = (0.6, 0.2, 0.2) if len(missing) == 2 else (0.8, 0.2)
        parts = _stratified_split(strata, fractions, SPLIT_SEED)
        for split, part in zip(["train", *missing], parts):
            arrays[f"x_{split}"] = ondisk.take_rows(x, part)
            arrays[f"y_{split}"] = y[part]
    empty = [split for split in SPLITS if len(arrays[f"y_{split}"]) == 0]
    if empty:
        sizes = ", ".join(f"{split} {len(arrays[f'y_{split}'])}" for split in SPLITS)
        raise DataError(
            f"{source}: the {' and '.join(empty)} split came out empty ({sizes}). "
            f"{hint}"
        )
    return arrays


def _class_indices(values):
    """Maps string labels to 0..C-1 in sorted order (numeric if all are integers)."""
    try:
        keys = [int(value) for value in values]
    except ValueError:
        keys = list(values)
    names = sorted(set(keys))
    index = {key: position for position, key in enumerate(names)}
    labels = np.asarray([index[key] for key in keys], dtype="int64")
    return labels, tuple(str(name) for name in names)


def _read_csv(path):
    """Returns the header and the data rows (with their line numbers) of a CSV file."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file)
            header = next(reader, None)
            rows, lines = [], []
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if header is not None and len(row) != len(header):
                    raise DataError(
                        f"{path!r} line {reader.line_num} has {len(row)} values but "
                        f"the header has {len(header)} columns. Every row needs one "
                        f"value per column."
                    )
                rows.append(row)
                lines.append(reader.line_num)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(
            f"Cannot read {path!r} as a UTF-8 CSV file ({type(error).__name__}: "
            f"{_one_line(error)}). Save it as comma-separated UTF-8 text with a header "
            f"row."
        ) from None
    if header is None or not rows:
        raise DataError(
            f"{path!r} has no data rows. Expected a header row of column names, "
            f"then one row per sample."
        )
    header = [column.strip() for column in header]
    duplicates = sorted({column for column in header if header.count(column) > 1})
    if duplicates:
        raise DataError(
            f"{path!r} has duplicate column name(s) "
            f"{', '.join(map(repr, duplicates))}. "
            f"Give every column a unique name."
        )
    return header, rows, lines


def _numeric_column(path, column, values, lines, role):
    """Parses one CSV column as float64, naming the first bad value."""
    try:
        numbers = np.asarray(values, dtype="float64")
    except ValueError:
        numbers = None
    if numbers is not None and np.all(np.isfinite(numbers)):
        return numbers
    for value, line in zip(values, lines):
        try:
            number = float(value)
        except ValueError:
            number = None
        if number is not None and np.isfinite(number):
            continue
        if number is not None or not value.strip():
            raise DataError(
                f"{path!r}: column {column!r} has a missing or non-finite value "
                f"{value.strip()!r} on line {line}. Fill in or drop missing values "
                f"first."
            )
        if role == "feature":
            raise DataError(
                f"{path!r}: column {column!r} is not numeric (line {line}: "
                f"{value.strip()!r}). Every column except the label is read as a "
                f"number: one-hot encode {column!r} first (e.g. "
                f"pandas.get_dummies(frame, columns=[{column!r}])) or drop it."
            )
        raise DataError(
            f"{path!r}: the label column {column!r} is not numeric (line {line}: "
            f"{value.strip()!r}), but kind=regression needs numbers. Use "
            f"kind=classification for class labels."
        )
    # Every value parses with Python's float although NumPy refused one (e.g. "1_000").
    return np.asarray([float(value) for value in values])


def _csv_task(name):
    path, options = _parse_spec(name, "csv:", ("label", "kind"))
    kind = options.get("kind", "classification")
    if kind not in KINDS:
        raise DataError(
            f"Task {name!r}: kind must be one of {', '.join(KINDS)}. Received: "
            f"kind={kind!r}."
        )
    if not os.path.isfile(path):
        raise DataError(
            f"CSV file not found: {path!r} (from task {name!r}). Check the path."
        )
    header, rows, lines = _read_csv(path)
    label = options.get("label")
    if label is None or label not in header:
        received = "no label option" if label is None else f"label={label!r}"
        raise DataError(
            f"Task {name!r}: {received}, but the label must be one of the columns of "
            f"{path!r}: {', '.join(header)}. Use csv:{path}?label=COLUMN."
        )
    split_column = "split" if "split" in header and label != "split" else None
    features = [column for column in header if column not in (label, split_column)]
    if not features:
        raise DataError(
            f"{path!r} has no feature columns besides the label {label!r}. Expected "
            f"at least one numeric column."
        )
    columns = {column: [row[i] for row in rows] for i, column in enumerate(header)}
    x = np.stack(
        [_numeric_column(path, column, columns[column], lines, "feature")
         for column in features],
        axis=1,
    ).astype("float32")
    class_names = None
    if kind == "regression":
        y = _numeric_column(path, label, columns[label], lines, "label")
        y = y.astype("float32")[:, np.newaxis]
        num_outputs = 1
    else:
        values = [value.strip() for value in columns[label]]
        if "" in values:
            line = lines[values.index("")]
            raise DataError(
                f"{path!r}: line {line} has no value in the label column {label!r}. "
                f"Every row needs a label."
            )
        y, class_names = _class_indices(values)
        expected = "exactly two" if kind == "binary" else "at least two"
        if len(class_names) < 2 or (kind == "binary" and len(class_names) > 2):
            shown = ", ".join(class_names[:10])
            shown += ", ..." if len(class_names) > 10 else ""
            raise DataError(
                f"{path!r}: kind={kind} needs {expected} distinct labels in column "
                f"{label!r}; it has {len(class_names)}: {shown}."
                + (" Use kind=classification." if kind == "binary" else "")
            )
        num_outputs = 1 if kind == "binary" else len(class_names)
    arrays = {}
    if split_column:
        where = np.asarray([value.strip().lower() for value in columns[split_column]])
        unknown = sorted(set(where.tolist()) - set(SPLITS))
        if unknown:
            line = lines[where.tolist().index(unknown[0])]
            raise DataError(
                f"{path!r}: the split column holds {unknown[0]!r} on line {line}. "
                f"Expected train, val or test (or rename the column if it is a "
                f"feature)."
            )
        for split in SPLITS:
            if np.any(where == split):
                rows_of_split = where == split
                arrays[f"x_{split}"] = x[rows_of_split]
                arrays[f"y_{split}"] = y[rows_of_split]
        if "x_train" not in arrays:
            raise DataError(
                f"{path!r}: the split column has no 'train' rows. Mark the training "
                f"rows split=train (val and test rows are optional)."
            )
    else:
        arrays = {"x_train": x, "y_train": y}
    hint = (
        "Add rows, or mark some rows split=val and split=test."
        if split_column
        else "Add rows (about 5 per class for a 60/20/20 split) or a split column."
    )
    _fill_splits(repr(path), kind, arrays, hint)
    return Task(name=name, kind=kind, num_outputs=num_outputs,
                class_names=class_names, **arrays)


def _subfolders(folder):
    return sorted(
        entry.name for entry in os.scandir(folder)
        if entry.is_dir() and not entry.name.startswith(".")
    )


def _pil_image():
    try:
        from PIL import Image
    except ImportError:
        raise DataError(
            "images: tasks read files with Pillow, which is not installed. Install it "
            "with `pip install pillow`."
        ) from None
    return Image


@functools.lru_cache(maxsize=1)
def _image_extensions():
    return frozenset(_pil_image().registered_extensions())


def _image_files(folder):
    extensions = _image_extensions()
    files = sorted(
        entry.name for entry in os.scandir(folder)
        if entry.is_file() and not entry.name.startswith(".")
        and os.path.splitext(entry.name)[1].lower() in extensions
    )
    if not files:
        raise DataError(
            f"Class folder {folder!r} has no image files. Expected .png, .jpg, .bmp, "
            f"... files in every class folder; remove the folder or add images."
        )
    return [os.path.join(folder, file) for file in files]


def _load_image(path, size, mode):
    Image = _pil_image()
    try:
        with Image.open(path) as image:
            image = image.convert("RGB" if mode == "rgb" else "L")
            if size is not None and image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype="float32") / 255.0
    except Exception as error:
        raise DataError(
            f"Cannot read image {path!r} ({type(error).__name__}: {_one_line(error)}). "
            f"Replace or delete the file."
        ) from None
    return pixels if mode == "rgb" else pixels[..., np.newaxis]


def _parse_size(name, text):
    height, _, width = text.lower().partition("x")
    valid = height.isdigit() and width.isdigit()
    if not (valid and int(height) > 0 and int(width) > 0):
        raise DataError(
            f"Task {name!r}: size must be HEIGHTxWIDTH in pixels, e.g. size=64x64. "
            f"Received: size={text!r}."
        )
    return int(height), int(width)


def _images_task(name):
    folder, options = _parse_spec(name, "images:", ("size", "mode"))
    mode = options.get("mode", "rgb")
    if mode not in ("rgb", "grayscale"):
        raise DataError(
            f"Task {name!r}: mode must be rgb or grayscale. Received: mode={mode!r}."
        )
    size = _parse_size(name, options["size"]) if "size" in options else None
    if not os.path.isdir(folder):
        raise DataError(
            f"Image folder not found: {folder!r} (from task {name!r}). Expected a "
            f"folder with one sub-folder of images per class; check the path."
        )
    top = _subfolders(folder)
    if "train" in top and set(top) <= set(SPLITS):
        split_folders = {split: os.path.join(folder, split) for split in top}
    else:
        split_folders = {"train": folder}
    class_names = _subfolders(split_folders["train"])
    files = {}
    for split, split_folder in split_folders.items():
        classes = _subfolders(split_folder)
        if not classes:
            raise DataError(
                f"{split_folder!r} has no class sub-folders. Expected one sub-folder "
                f"per class holding its images (DIR/cat/1.png, DIR/dog/2.png), "
                f"optionally inside DIR/train, DIR/val, DIR/test."
            )
        extra = sorted(set(classes) - set(class_names))
        if extra:
            raise DataError(
                f"{split_folder!r} has class folder(s) {', '.join(extra)} that "
                f"{split_folders['train']!r} lacks. Every class needs training images."
            )
        files[split] = [
            (path, class_names.index(name_))
            for name_ in classes
            for path in _image_files(os.path.join(split_folder, name_))
        ]
    if len(class_names) < 2:
        raise DataError(
            f"{split_folders['train']!r} has one class folder ({class_names[0]}). "
            f"Expected at least two: one sub-folder per class."
        )
    if size is None:
        first = _load_image(files["train"][0][0], None, mode)
        size = first.shape[:2]
    image_shape = (*size, 3 if mode == "rgb" else 1)
    num_images = sum(len(pairs) for pairs in files.values())
    on_disk = num_images * int(np.prod(image_shape)) * 4 > MAX_IN_MEMORY_BYTES
    key = _images_key(files, image_shape) if on_disk else None
    arrays = {}
    for split, pairs in files.items():
        paths = [path for path, _ in pairs]
        disk_name = f"images-{key}-{split}.f32" if on_disk else None
        arrays[f"x_{split}"] = _decode_images(paths, image_shape, mode, disk_name)
        arrays[f"y_{split}"] = np.asarray([label for _, label in pairs], dtype="int64")
    _fill_splits(
        repr(folder), "classification", arrays,
        "Add images (each class needs about 5 for a 60/20/20 split) or use "
        "train/val/test sub-folders.",
    )
    return Task(name=name, kind="classification", num_outputs=len(class_names),
                class_names=tuple(class_names), **arrays)


# Part of the key of decoded image folders: bump it when `_load_image` changes.
_DECODER_VERSION = 1


def _images_key(files, image_shape):
    """Names an image folder's decoded files: every file's path, label, size and
    modification time, the decoded image shape and the decoder's version."""
    digest = hashlib.sha256(f"{_DECODER_VERSION}|{image_shape}".encode())
    for split in sorted(files):
        for path, label in files[split]:
            stat = os.stat(path)
            digest.update(
                f"{split}|{os.path.abspath(path)}|{label}|{stat.st_size}|"
                f"{stat.st_mtime_ns}\n".encode()
            )
    return digest.hexdigest()[:24]


def _decode_images(paths, image_shape, mode, disk_name):
    """The images as one float32 array, in memory (`disk_name` None) or as a
    `DiskArray` in the data cache, decoded once and reused by later loads."""
    size = image_shape[:2]
    if disk_name is None:
        images = np.empty((len(paths), *image_shape), dtype="float32")
        for index, path in enumerate(paths):
            images[index] = _load_image(path, size, mode)
        return images
    shape = (len(paths), *image_shape)
    cached = os.path.join(ondisk.cache_dir(), disk_name)
    # One process decodes; the others (workers loading the task at once) wait
    # for it and then read its file.
    with ondisk.exclusive(disk_name):
        if os.path.exists(cached) and os.path.getsize(cached) == 4 * np.prod(shape):
            return ondisk.DiskArray(cached, shape)
        writer = ondisk.RowWriter(disk_name)
        try:
            for path in paths:
                writer.write(_load_image(path, size, mode)[np.newaxis])
        except BaseException:
            writer.abort()
            raise
        return writer.finish()


_KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_FASHION_FILES = ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
                  "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz")
# How to pre-place each dataset where keras 3.15's `keras.utils.get_file` looks for
# it (under $KERAS_HOME, default ~/.keras): (path under $KERAS_HOME, instruction).
_KERAS_DATASETS = {
    "mnist": (
        "datasets/mnist.npz",
        f"download {_KERAS_ORIGIN}mnist.npz elsewhere and copy it to {{path}}",
    ),
    "fashion_mnist": (
        "datasets/fashion-mnist/",
        f"download {', '.join(_FASHION_FILES)} from {_KERAS_ORIGIN} elsewhere and "
        f"copy them into the folder {{path}}",
    ),
    "cifar10": (
        "datasets/cifar-10-batches-py-target_archive",
        "download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz elsewhere "
        "and copy it, renamed, to {path}",
    ),
}
_KERAS_CLASS_NAMES = {
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                "horse", "ship", "truck"),
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                      "Shirt", "Sneaker", "Bag", "Ankle boot"),
}


def _keras_home():
    """The folder keras caches downloads in: $KERAS_HOME, else ~/.keras."""
    home = os.environ.get("KERAS_HOME")
    return home or os.path.join(os.path.expanduser("~"), ".keras")


@functools.lru_cache(maxsize=1)
def _keras_dataset(dataset):
    import keras

    try:
        loader = getattr(keras.datasets, dataset)
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as error:
        relative, instruction = _KERAS_DATASETS[dataset]
        path = os.path.join(_keras_home(), relative)
        raise DataError(
            f"keras:{dataset} is downloaded on first use, and loading it failed, most "
            f"likely because there is no network ({type(error).__name__}: "
            f"{_one_line(error)}). To use it offline, pre-place the data: "
            f"{instruction.format(path=path)} ($KERAS_HOME/{relative})."
        ) from None
    arrays = {}
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        x = np.asarray(x)
        if x.ndim == 3:  # MNIST-like grayscale: add the channel axis.
            x = x[..., np.newaxis]
        elif keras.config.image_data_format() == "channels_first":
            x = np.moveaxis(x, 1, -1)  # keras.datasets follows keras.json; we do not.
        arrays[f"x_{split}"] = np.divide(x, np.float32(255), dtype="float32")
        arrays[f"y_{split}"] = np.asarray(y).reshape(-1).astype("int64")
    train, val = _stratified_split(arrays["y_train"], (0.9, 0.1), SPLIT_SEED)
    x, y = arrays["x_train"], arrays["y_train"]
    arrays["x_train"], arrays["y_train"] = x[train], y[train]
    arrays["x_val"], arrays["y_val"] = x[val], y[val]
    return arrays


def _keras_task(name):
    dataset = name[len("keras:"):]
    if dataset not in _KERAS_DATASETS:
        raise DataError(
            f"Unknown keras dataset in task {name!r}. Expected one of "
            f"{', '.join(f'keras:{known}' for known in _KERAS_DATASETS)}."
        )
    arrays = _keras_dataset(dataset)
    num_outputs = int(max(arrays[f"y_{split}"].max() for split in SPLITS)) + 1
    class_names = _KERAS_CLASS_NAMES.get(dataset)
    if class_names is not None and len(class_names) != num_outputs:
        class_names = None
    return Task(name=name, kind="classification", num_outputs=num_outputs,
                class_names=class_names, **arrays)


def _one_line(error):
    return " ".join(str(error).split())[:300]


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
        return _digits_task(name)
    loaders = {"npz:": _npz_task, "csv:": _csv_task, "images:": _images_task,
               "keras:": _keras_task}
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


# Python objects: NumPy arrays, keras.utils.PyDataset, tf.data.Dataset.

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
        max_bytes = MAX_IN_MEMORY_BYTES
    arrays = {}
    for split, data in (("train", train), ("val", val), ("test", test)):
        if data is None:
            continue
        x, y = _split_arrays(name, split, data, max_bytes)
        arrays[f"x_{split}"], arrays[f"y_{split}"] = _clean_split(name, split, x, y, kind)
    _fill_splits(
        f"task {name!r}", kind, arrays,
        "Pass more training samples, or val= and test= splits.",
    )
    task = Task(name=name, kind=kind, num_outputs=_num_outputs(arrays, kind), **arrays)
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
