"""Deprecated import path, kept for one release: use `keras_tl.load_task` and
`keras_tl.register_task` (or `keras_tl.data`)."""

from keras_tl.data.ondisk import MAX_IN_MEMORY_BYTES
from keras_tl.data.registry import builtin_tasks, is_registered, load_task, register_task
from keras_tl.data.task import Task

__all__ = [
    "MAX_IN_MEMORY_BYTES",
    "Task",
    "builtin_tasks",
    "is_registered",
    "load_task",
    "register_task",
]
