"""Storage faults as one clear `StoreError`: what failed, why, and what to do.

A full disk, a read-only file or file system, a missing permission, an I/O error, a
busy or foreign database: each becomes one line that says so. The trial store, the
run lock and atomic writes share it.
"""

import contextlib
import errno
import os
import sqlite3

from keras_tl.errors import StoreError


def _folder_of(path):
    return os.path.dirname(os.path.abspath(path))


def _fault(error):
    """A storage error -> 'full', 'readonly', 'permission', 'io', 'busy', 'notadb',
    'corrupt', 'missing' or 'other'."""
    if isinstance(error, OSError):
        return {
            errno.ENOSPC: "full", errno.EDQUOT: "full", errno.EROFS: "readonly",
            errno.EACCES: "permission", errno.EPERM: "permission", errno.EIO: "io",
            errno.ENOENT: "missing",
        }.get(error.errno, "other")
    name = getattr(error, "sqlite_errorname", "") or ""
    text = str(error).lower()
    if name == "SQLITE_FULL" or "disk is full" in text:
        return "full"
    if name.startswith("SQLITE_READONLY") or "readonly database" in text:
        return "readonly"
    if name.startswith("SQLITE_CANTOPEN") or "unable to open database" in text:
        return "permission"
    if name.startswith("SQLITE_IOERR") or "disk i/o error" in text:
        return "io"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in text:
        return "busy"
    if name == "SQLITE_NOTADB" or "file is not a database" in text:
        return "notadb"
    if name.startswith("SQLITE_CORRUPT") or "malformed" in text:
        return "corrupt"
    return "other"


def _why_not_writable(path):
    """Why `path` (a file or the folder that should hold it) cannot be written."""
    folder = path if os.path.isdir(path) else _folder_of(path)
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f"the file system holding {folder} is mounted read-only"
    except (OSError, AttributeError):
        pass
    if os.path.isfile(path) and not os.access(path, os.W_OK):
        return f"the file {path} is read-only"
    if os.path.isdir(folder) and not os.access(folder, os.W_OK):
        return f"the folder {folder} is read-only"
    return None


def storage_error(error, path, doing):
    """A `StoreError` saying, in one line, why `doing` `path` failed.

    Args:
        error: `sqlite3.Error` or `OSError`.
        path: str. The file (or folder) being used.
        doing: str. What was being done, e.g. "write to", "read", "create".
    """
    kind = _fault(error)
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    folder = path if os.path.isdir(path) else _folder_of(path)
    if kind == "full":
        return StoreError(
            f"Cannot {doing} {path}: the disk is full ({detail}). What was already saved "
            f"is kept; free some space, then run the same command again to resume."
        )
    if kind in ("permission", "missing") and not os.path.isdir(folder):
        return StoreError(f"Cannot {doing} {path}: the folder {folder} does not exist "
                          f"({detail}).")
    unreadable = os.path.exists(path) and not os.access(path, os.R_OK)
    if kind == "readonly" or (kind == "permission" and not unreadable
                              and _why_not_writable(path)):
        reason = _why_not_writable(path) or (
            "the file system is read-only"
            if isinstance(error, OSError) and error.errno == errno.EROFS else "it is read-only"
        )
        fix = ("Remount it read-write" if "file system" in reason
               else f"Make it writable (e.g. chmod -R u+w {folder})")
        return StoreError(
            f"Cannot {doing} {path}: {reason} ({detail}). {fix}, or copy the run folder "
            f"somewhere writable and use the copy."
        )
    if kind == "permission":
        return StoreError(
            f"Cannot {doing} {path}: permission denied ({detail}). Give your user read "
            f"and write access to {folder}, or copy the run folder somewhere writable "
            f"and use the copy."
        )
    if kind == "io":
        return StoreError(
            f"Cannot {doing} {path}: the disk reported an I/O error ({detail}). What was "
            f"already saved is kept; check the disk, then run the same command again."
        )
    if kind == "busy":
        return StoreError(
            f"Cannot {doing} {path}: another process keeps the database locked "
            f"({detail}). Wait until it finishes, then run the same command again."
        )
    if kind in ("notadb", "corrupt"):
        return StoreError(
            f"{path} is not a keras-tl trial store ({detail}). Delete it, or run in "
            f"another folder."
        )
    if kind == "missing":
        return StoreError(f"Cannot {doing} {path}: it does not exist ({detail}).")
    return StoreError(
        f"Cannot {doing} {path}: {type(error).__name__}: {detail}. What was already "
        f"saved is kept; fix the cause, then run the same command again."
    )


@contextlib.contextmanager
def storage_errors(path, doing):
    """Turns `sqlite3.Error` and `OSError` raised inside into one clear `StoreError`."""
    try:
        yield
    except (sqlite3.Error, OSError) as error:
        raise storage_error(error, path, doing) from error
