"""Mixed precision: the experiment's `precision` as Keras' global dtype policy.

Keras reads its dtype policy (`keras.config.dtype_policy()`) when a layer is
built, so the policy must be in place while a trial's models are built and
trained, and nowhere else: `precision_scope` sets it and restores the previous
one afterwards, even when the trial fails. Under a mixed policy the variables
stay float32 and the layers compute in bfloat16 or float16; the output layers
(`head`, the fused heads) compute in float32, as Keras' mixed-precision guide
recommends, and Keras' losses compute in float32 whatever their inputs. Under
`mixed_float16`, `Model.compile` wraps the optimizer in a
`keras.optimizers.LossScaleOptimizer` by itself (`auto_scale_loss=True`).
Predictions come back from `keras_tl.training.fit.predict` as float32 NumPy
arrays, so the metrics are computed as in float32 runs.
"""

import contextlib

import keras

from keras_tl.config.schema import DEFAULT_PRECISION, PRECISIONS
from keras_tl.errors import ConfigError
from keras_tl.networks.network import float32_layer

__all__ = ["DEFAULT_PRECISION", "PRECISIONS", "current_precision", "float32_layer",
           "precision_scope"]


def current_precision():
    """The name of Keras' global dtype policy (`"float32"`, `"mixed_bfloat16"`, ...)."""
    return keras.config.dtype_policy().name


@contextlib.contextmanager
def precision_scope(precision=None):
    """Builds and trains under `precision`; restores the previous policy on exit.

    Args:
        precision: str or None. One of `PRECISIONS`; None keeps the current policy.

    Example:

    >>> with precision_scope("mixed_bfloat16"):
    ...     model = keras.Sequential([keras.layers.Dense(4)])
    """
    if precision is None:
        yield
        return
    if precision not in PRECISIONS:
        raise ConfigError(
            f"Unknown precision. Expected one of {list(PRECISIONS)}. "
            f"Received: precision={precision!r}"
        )
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
