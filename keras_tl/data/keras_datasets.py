"""Tasks from `keras.datasets` files already on disk: `keras:cifar10|mnist|fashion_mnist`.

Nothing is downloaded: a dataset that is not in `KERAS_HOME` is refused with the
file to place there.
"""

import functools
import os

import numpy as np

from keras_tl.data.task import SPLIT_SEED, SPLITS, Task, one_line, stratified_split
from keras_tl.errors import DataError

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
            f"{one_line(error)}). To use it offline, pre-place the data: "
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
    train, val = stratified_split(arrays["y_train"], (0.9, 0.1), SPLIT_SEED)
    x, y = arrays["x_train"], arrays["y_train"]
    arrays["x_train"], arrays["y_train"] = x[train], y[train]
    arrays["x_val"], arrays["y_val"] = x[val], y[val]
    return arrays


def keras_task(name):
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
