"""The built-in tasks: scikit-learn's 8x8 digits and the variants made from them."""

import functools

import numpy as np

from keras_tl.data.task import SPLIT_SEED, SPLITS, Task, stratified_split

_BUILTIN_DESCRIPTIONS = {
    "digits": "scikit-learn 8x8 digits, 10 classes",
    "digits:0-4": "digits 0-4 only, 5 classes",
    "digits:5-9": "digits 5-9 only, relabelled 0-4, 5 classes",
    "digits:parity": "all digits, label = digit is odd (binary, 1 output)",
    "digits:inverted": "all digits with pixels inverted (1 - x), 10 classes",
}


@functools.lru_cache(maxsize=1)
def _digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype("float32")[..., np.newaxis]
    labels = bunch.target.astype("int64")
    train, val, test = stratified_split(labels, (0.6, 0.2, 0.2), SPLIT_SEED)
    return images, labels, {"train": train, "val": val, "test": test}


def digits_task(name):
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
