"""The lock a run holds on its folder, so that two runs never share one.

`fcntl.flock` on `FOLDER/.keras-tl.lock`: a second run on the same folder is refused
at once, and the operating system releases the lock when the holding process ends,
however it ends.
"""

import contextlib
import errno
import gc
import json
import os
import socket
import sys
import time

from keras_tl.errors import StoreError
from keras_tl.storage_faults import storage_errors

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_NAME = ".keras-tl.lock"


class RunLockedError(StoreError):
    """Another live process holds the run folder's lock."""


def _is_this_process(holder):
    return bool(holder) and (holder.get("pid"), holder.get("host")) == (
        os.getpid(), socket.gethostname())


def _describe_holder(holder):
    if not holder:
        return "another process (its pid could not be read)"
    pid, host = holder.get("pid"), holder.get("host")
    started = holder.get("started")
    if _is_this_process(holder):
        return (f"this process (pid {pid}): an earlier evaluate() on it has not "
                f"finished, or its store was not closed")
    text = f"process {pid} on host {host}"
    return f"{text}, started {started}" if started else text


class RunLock:
    """An exclusive lock on a run folder, held by one process at a time.

    `fcntl.flock` on `FOLDER/.keras-tl.lock`: the operating system releases it when
    the process ends, even by SIGKILL, so a crashed run never leaves its folder
    locked. The file says which process holds the lock (pid, host, start time).

    Example:

    >>> lock = RunLock.acquire("runs/parity")  # RunLockedError if another run holds it
    >>> lock.release()
    """

    def __init__(self, folder, descriptor):
        self.folder = folder
        self.path = os.path.join(folder, LOCK_NAME)
        self._descriptor = descriptor

    @classmethod
    def acquire(cls, folder):
        """Locks `folder` (which must exist) or raises `RunLockedError` at once."""
        path = os.path.join(folder, LOCK_NAME)
        collected = False
        for _ in range(100):
            with storage_errors(path, "create the run lock"):
                descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                locked = _try_lock(descriptor)
                if not locked:
                    holder = _read_holder(descriptor)
                    if not collected and _is_this_process(holder):
                        # Held here: maybe by the store of an evaluate that raised and
                        # was dropped without close(), waiting to be collected.
                        collected = True
                        gc.collect()
                        continue
                    raise RunLockedError(
                        f"Run folder {folder!r} is in use by {_describe_holder(holder)}. "
                        f"Wait for that run to finish (or stop it), or use another --out "
                        f"folder."
                    )
                # The file may have been removed (a holder releasing it) between our
                # open and our lock: then the lock is on a file no one else sees.
                try:
                    current = os.stat(path)
                except FileNotFoundError:
                    continue
                mine = os.fstat(descriptor)
                if (current.st_ino, current.st_dev) != (mine.st_ino, mine.st_dev):
                    continue
                holder = {"pid": os.getpid(), "host": socket.gethostname(),
                          "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                          "command": " ".join(sys.argv)}
                with storage_errors(path, "write the run lock"):
                    os.ftruncate(descriptor, 0)
                    os.pwrite(descriptor, json.dumps(holder).encode(), 0)
                lock, descriptor = cls(folder, descriptor), None
                return lock
            finally:
                if descriptor is not None:
                    os.close(descriptor)
        raise RunLockedError(f"Run folder {folder!r}: could not take its lock {path}.")

    @property
    def held(self):
        return self._descriptor is not None

    def release(self):
        """Releases the lock and removes the lock file (idempotent)."""
        if self._descriptor is None:
            return
        try:
            # Removed while still held, so no other process can lock this file and
            # then lose it to our removal.
            with contextlib.suppress(OSError):
                if (os.stat(self.path).st_ino, os.stat(self.path).st_dev) == (
                    os.fstat(self._descriptor).st_ino, os.fstat(self._descriptor).st_dev
                ):
                    os.remove(self.path)
        finally:
            os.close(self._descriptor)  # Closing releases the flock.
            self._descriptor = None

    def __del__(self):  # A lock whose store was dropped without close() (an exception).
        try:
            self.release()
        except Exception:  # noqa: S110 - at interpreter exit the OS releases it anyway.
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def _try_lock(descriptor):
    """Takes an exclusive lock without waiting; False when another holds it."""
    if fcntl is None:  # pragma: no cover - Windows
        import msvcrt

        try:
            msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _read_holder(descriptor, attempts=50):
    """The holder's JSON from the lock file; the holder writes it just after locking,
    so an empty file is read again for a moment."""
    for _ in range(attempts):
        try:
            data = os.pread(descriptor, 4096, 0)
        except OSError:
            return None
        if data:
            try:
                return json.loads(data)
            except ValueError:
                pass
        time.sleep(0.01)
    return None
