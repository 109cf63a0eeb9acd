"""One trial across several devices, with Keras' own distribution API.

`distribution: data_parallel` in an experiment runs every trial (and every
source training) under `keras.distribution.DataParallel` over the devices the
process sees: the variables are replicated and each batch is split across the
devices. Released Keras supports this on the JAX backend only (its TensorFlow
path is marked not for use and torch support is unreleased), so other backends
are refused before anything is trained.

Training batches are split only inside `fitting`, and only if every batch of
that `fit` divides evenly across the devices (Keras lays out all batches of a
`fit` like its first one, and JAX cannot split an uneven batch); otherwise, and
for every `predict` or `evaluate` (inference over splits of any size), batches
are replicated on every device: the same numbers, without the speed-up.
"""

import contextlib
import functools

import keras

from keras_tl.errors import ConfigError

SUPPORTED_BACKENDS = ("jax",)


def check(distribution, backend):
    """Raises `ConfigError` unless `backend` can run trials under `distribution`.

    Args:
        distribution: str or None. The experiment's `distribution` key.
        backend: str. The Keras backend, e.g. `keras.config.backend()`.

    Example:

    >>> keras_tl.training.distribution.check("data_parallel", "jax")
    """
    if distribution is not None and backend not in SUPPORTED_BACKENDS:
        raise ConfigError(
            f"distribution: {distribution!r} runs on the "
            f"{', '.join(SUPPORTED_BACKENDS)} backend only (keras.distribution in "
            f"released Keras), received backend {backend!r}. Use --backend jax, or "
            f"remove the distribution key."
        )


class _DataParallel(keras.distribution.DataParallel):
    """`DataParallel` that splits batches only when `fitting` says they divide."""

    split_batches = False

    def get_data_layout(self, data_shape):
        if self.split_batches:
            return super().get_data_layout(data_shape)
        return keras.distribution.TensorLayout([None] * len(data_shape), self.device_mesh)


@functools.cache
def _data_parallel():
    """One distribution per process, so pooled models keep their layout."""
    return _DataParallel(devices=keras.distribution.list_devices())


def scope(distribution):
    """The context a trial runs in: `distribution`'s scope, or nothing for None.

    Args:
        distribution: str or None. `"data_parallel"` or None.

    Returns:
        A context manager.
    """
    if distribution is None:
        return contextlib.nullcontext()
    return _data_parallel().scope()


@contextlib.contextmanager
def fitting(*datasets):
    """The context of one `fit`: splits its batches if each one divides evenly.

    Outside a `data_parallel` scope this does nothing.

    Args:
        *datasets: `(num_samples, batch_size)` of every dataset the `fit` reads
            (the train data and, if any, the validation data).
    """
    current = keras.distribution.distribution()
    if not isinstance(current, _DataParallel):
        yield
        return
    num_devices = current.device_mesh.devices.size
    batches = {size for n, b in datasets for size in (min(n, b), n % b) if size}
    previous = current.split_batches
    current.split_batches = all(size % num_devices == 0 for size in batches)
    try:
        yield
    finally:
        current.split_batches = previous
