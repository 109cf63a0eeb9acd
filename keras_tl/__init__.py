"""keras-tl: evidence for transfer learning in Keras 3, on torch, tensorflow or jax.

The public names below load lazily, so `import keras_tl` (and the CLI's `--help`)
does not import keras: the backend can still be chosen after this import. The
subpackages `keras_tl.scores`, `keras_tl.results` and `keras_tl.report` are public
too; everything else is internal (see docs/architecture.md).
"""

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "KerasTLError": "keras_tl.errors",
    "ConfigError": "keras_tl.errors",
    "DataError": "keras_tl.errors",
    "TransferError": "keras_tl.errors",
    "BackendError": "keras_tl.errors",
    "StoreError": "keras_tl.errors",
    "Task": "keras_tl.data.task",
    "load_task": "keras_tl.data.registry",
    "register_task": "keras_tl.data.registry",
    "Network": "keras_tl.networks.network",
    "TransferReport": "keras_tl.networks.transfer",
    "transfer_weights": "keras_tl.networks.transfer",
    "freeze": "keras_tl.networks.transfer",
    "Experiment": "keras_tl.config.schema",
    "load_experiment": "keras_tl.config.schema",
    "evaluate": "keras_tl.experiment.run",
    "Results": "keras_tl.results.results",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'keras_tl' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
