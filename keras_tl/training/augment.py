"""Training-time data augmentation: a stage's `augment:` list as Keras
preprocessing layers, applied to each training batch by `keras_tl.training.fit.fit`.

The layers are not part of the model, so saved and transferred weights, val and
test metrics, early stopping's val loss, scores and CKA all see the inputs as
they are. Each layer is seeded from the trial seed: two trainings with the same
seed (the paired arms of one seed) see the same augmented batches.
"""

import hashlib

import keras
import numpy as np

from keras_tl.config.arms import AUGMENTATIONS, IMAGE_AUGMENTATIONS


def _layer(name, options, seed):
    # float32 whatever the dtype policy (`precision`): the batch goes to the model
    # as inputs, which the model casts itself.
    common = {"seed": seed, "dtype": "float32"}
    # The data format is fixed, as in our models and tasks (a keras.json may say
    # channels_first).
    image = {**common, "data_format": "channels_last"}
    fill = {key: options[key] for key in ("fill_mode", "interpolation", "fill_value")
            if key in options}

    def factor(value):
        return tuple(value) if isinstance(value, list) else value

    if name == "random_flip":
        return keras.layers.RandomFlip(mode=options["mode"], **image)
    if name == "random_translation":
        return keras.layers.RandomTranslation(
            factor(options["height_factor"]), factor(options["width_factor"]), **fill,
            **image,
        )
    if name == "random_zoom":
        return keras.layers.RandomZoom(
            factor(options["height_factor"]), factor(options["width_factor"]), **fill,
            **image,
        )
    if name == "random_rotation":
        return keras.layers.RandomRotation(factor(options["factor"]), **fill, **image)
    if name == "random_contrast":
        return keras.layers.RandomContrast(
            factor(options["factor"]), value_range=tuple(options["value_range"]), **common
        )
    if name == "gaussian_noise":
        return keras.layers.GaussianNoise(options["stddev"], **common)
    raise ValueError(f"unknown augmentation {name!r}; expected one of {list(AUGMENTATIONS)}")


def layer_seed(seed, index):
    """The seed of the `index`-th augmentation layer of a training seeded `seed`."""
    digest = hashlib.sha256(f"augment|{seed}|{index}".encode()).hexdigest()
    return int(digest[:8], 16) % 2**31


def needs_images(entries):
    """The names in a resolved `augment` list that need image inputs."""
    return [name for entry in entries for name in entry if name in IMAGE_AUGMENTATIONS]


class Augmenter:
    """Applies a resolved `augment` list to training batches, in order.

    Args:
        entries: list of `{name: options}` (a resolved stage's `augment`).
        seed: int. The training's seed; each layer draws from its own
            generator seeded by `layer_seed(seed, index)`, so two augmenters
            with the same seed and batches give the same outputs.

    Example:

    >>> augment = Augmenter([{"gaussian_noise": {"stddev": 0.1}}], seed=0)
    >>> noisy = augment(batch)
    """

    def __init__(self, entries, seed):
        self.layers = [
            _layer(name, options, layer_seed(seed, index))
            for index, entry in enumerate(entries)
            for name, options in entry.items()
        ]

    def __call__(self, x):
        """One augmented batch (a float32 NumPy array) of `x`."""
        batch = np.asarray(x)
        if batch.dtype != np.float32:
            batch = batch.astype("float32")
        for layer in self.layers:
            batch = layer(batch, training=True)
        return keras.ops.convert_to_numpy(batch)
