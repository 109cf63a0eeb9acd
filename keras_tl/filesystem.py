"""What is at a path, checked before anything opens it; where keras-tl keeps its caches."""

import os
import stat


def path_problem(path):
    """Why `path` is not a readable regular file, or None when it is one.

    A device such as /dev/zero or a pipe would block or never end if opened, so
    this looks only at `os.stat`.

    Returns:
        None, `"not found"`, `"a folder"` or `"not a regular file (a device, pipe
        or socket)"`.
    """
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        return "not found"
    if stat.S_ISDIR(status.st_mode):
        return "a folder"
    if not stat.S_ISREG(status.st_mode):
        return "not a regular file (a device, pipe or socket)"
    return None


def cache_root():
    """The folder under which keras-tl keeps what later runs reuse (decoded data,
    jax's compiled programs): `$KERAS_TL_CACHE_DIR`, else
    `$XDG_CACHE_HOME/keras-tl`, else `~/.cache/keras-tl`. Delete it to reclaim
    the space."""
    folder = os.environ.get("KERAS_TL_CACHE_DIR")
    if not folder:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = os.path.join(base, "keras-tl")
    return os.path.abspath(folder)
