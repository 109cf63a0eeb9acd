"""Relative file paths in an experiment, made absolute for workers elsewhere.

A Ray worker does not run in the driver's working folder, so a relative task
file (`npz:data/train.npz`) or model file would mean something else there. The
Ray executor sends the workers `absolute_paths(config, os.getcwd())` instead of
changing their working folder.
"""

import os

_FILE_TASK_PREFIXES = ("npz:", "csv:", "images:")
_PATH_KEYS = ("file", "keras_hub")


def _absolute(path, folder):
    """`path` joined to `folder` when it is relative and exists there, else `path`.

    A name that is not a file there (a KerasHub preset name, say) is kept as is.
    """
    if os.path.isabs(path):
        return path
    candidate = os.path.join(folder, path)
    return os.path.abspath(candidate) if os.path.exists(candidate) else path


def _task(name, folder):
    for prefix in _FILE_TASK_PREFIXES:
        if name.startswith(prefix):
            path, mark, query = name[len(prefix):].partition("?")
            return f"{prefix}{_absolute(path, folder)}{mark}{query}"
    return name


def absolute_paths(config, folder):
    """Returns a copy of an experiment config whose relative file paths are absolute.

    Task files (`npz:`, `csv:`, `images:` names) and model files (`file:`,
    `keras_hub:` when it is a local folder) that exist relative to `folder` are
    joined to it; everything else is copied unchanged.

    Args:
        config: dict. A resolved experiment config (`Experiment.to_dict()`).
        folder: str. The folder relative paths were written against.

    Returns:
        A new dict.
    """
    if isinstance(config, dict):
        copy = {}
        for key, value in config.items():
            if key == "task" and isinstance(value, str):
                copy[key] = _task(value, folder)
            elif key in _PATH_KEYS and isinstance(value, str):
                copy[key] = _absolute(value, folder)
            else:
                copy[key] = absolute_paths(value, folder)
        return copy
    if isinstance(config, list):
        return [absolute_paths(value, folder) for value in config]
    return config
