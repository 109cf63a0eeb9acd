"""Deprecated import path, kept for one release: use `keras_tl.transfer_weights`,
`keras_tl.freeze` and `keras_tl.TransferReport`."""

from keras_tl.networks.transfer import TransferReport, freeze, transfer_weights

__all__ = ["TransferReport", "freeze", "transfer_weights"]
