"""Deprecated import path, kept for one release: use `keras_tl.evaluate`."""

from keras_tl.experiment.run import evaluate

__all__ = ["evaluate"]
