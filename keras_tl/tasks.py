"""Tasks: named data with a kind and fixed, seeded, stratified splits.

A task is plain NumPy: images are channels-last float32 arrays, labels are int64
class indices (classification), 0/1 (binary) or float32 columns (regression). The
splits are fixed once per task (seed 0), so every trial, arm and backend sees the
same train / val / test partition; trials draw their training subsets from the
train split with `Task.subsample`.
"""

import dataclasses
import functools
import hashlib
import os

import numpy as np

from keras_tl.errors import DataError

KINDS = ("classification", "binary", "regression")
SPLITS = ("train", "val", "test")
SPLIT_SEED = 0

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
        x_train, y_train, x_val, y_val, x_test, y_test: NumPy arrays.

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
            self, x_train=self.x_train[keep], y_train=self.y_train[keep]
        )

    def fingerprint(self):
        """A short hash of every split's data and labels."""
        digest = hashlib.sha256(f"{self.name}|{self.kind}|{self.num_outputs}".encode())
        for split in SPLITS:
            for array in self.split(split):
                digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()[:16]

    def describe(self):
        return {
            "name": self.name,
            "kind": self.kind,
            "num_outputs": self.num_outputs,
            "input_shape": list(self.input_shape),
            "sizes": self.sizes(),
        }


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
    if kind == "classification":
        num_outputs = int(max(arrays[f"y_{s}"].max() for s in SPLITS)) + 1
    elif kind == "binary":
        num_outputs = 1
    else:
        num_outputs = arrays["y_train"].shape[1]
    return Task(name=name, kind=kind, num_outputs=num_outputs, **arrays)


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


def load_task(name):
    """Loads a task by name.

    Built-in tasks come from scikit-learn's digits (offline): `digits`,
    `digits:0-4`, `digits:5-9`, `digits:parity`, `digits:inverted`. User data:
    `npz:PATH` with keys `x_train`, `y_train`, `x_test`, `y_test` and optionally
    `x_val`, `y_val` (else 20% of train, stratified) and `kind`.

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
    if name in _BUILTIN_DESCRIPTIONS:
        return _digits_task(name)
    if name.startswith("npz:"):
        return _npz_task(name)
    raise DataError(
        f"Unknown task {name!r}. Expected one of {', '.join(_BUILTIN_DESCRIPTIONS)} "
        f"or npz:PATH. Run `keras-tl tasks` to list them."
    )


def builtin_tasks():
    """Returns `describe()` of every built-in task, plus a one-line description."""
    rows = []
    for name, description in _BUILTIN_DESCRIPTIONS.items():
        row = load_task(name).describe()
        row["description"] = description
        rows.append(row)
    return rows
