"""Exceptions raised by keras-tl for user mistakes.

Every message says what was received, what was expected and how to fix it, in one
line. The CLI prints the message of any `KerasTLError` and exits with code 2.
"""


class KerasTLError(ValueError):
    """Base class of every error keras-tl raises for a user mistake."""


class ConfigError(KerasTLError):
    """An experiment file or option value is invalid."""


class DataError(KerasTLError):
    """A task's data is missing, unreadable or malformed."""


class TransferError(KerasTLError):
    """Weights cannot be transferred or layers cannot be frozen as asked."""


class BackendError(KerasTLError):
    """The requested Keras backend is unknown, missing or conflicts with keras."""


class StoreError(KerasTLError):
    """A run folder or its trial store cannot be used as asked."""
