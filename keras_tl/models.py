"""Deprecated import path, kept for one release: use `keras_tl.Network`."""

from keras_tl.networks.network import Network

__all__ = ["Network"]
