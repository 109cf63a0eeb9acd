"""Experiment files: YAML or dict -> a validated `Experiment`; `arms`: the arm registry."""

from keras_tl.config.schema import DEFAULT_EXPERIMENT, Experiment, load_experiment, resolve

__all__ = ["DEFAULT_EXPERIMENT", "Experiment", "load_experiment", "resolve"]
