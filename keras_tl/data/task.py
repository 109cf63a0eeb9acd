"""Task: named data with a kind and fixed, seeded, stratified train / val / test splits.

A task is plain NumPy: images are channels-last float32 arrays, labels are int64
class indices (classification), 0/1 (binary) or float32 columns (regression);
inputs too large for memory are `ondisk.DiskArray`s, read a batch at a time. The
splits are fixed once per task (seed 0), so every trial, arm and backend sees the
same partition; trials draw their training subsets with `Task.subsample`.
"""

import dataclasses
import hashlib

import numpy as np

from keras_tl.data import ondisk
from keras_tl.errors import DataError

KINDS = ("classification", "binary", "regression")


SPLITS = ("train", "val", "test")


SPLIT_SEED = 0




def one_line(error):
    """An error's text on one line, at most 300 characters (for messages that quote it)."""
    return " ".join(str(error).split())[:300]


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

    >>> task = keras_tl.load_task("digits:parity")
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


def stratified_split(labels, fractions, seed):
    """Splits indices into len(fractions) stratified parts (last part takes the rest)."""
    rng = np.random.default_rng(seed)
    parts = [[] for _ in fractions]
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        bounds = np.round(np.cumsum(fractions)[:-1] * len(members)).astype(int)
        for part, chunk in zip(parts, np.split(members, bounds)):
            part.extend(chunk.tolist())
    return [np.sort(np.asarray(part, dtype=np.int64)) for part in parts]
