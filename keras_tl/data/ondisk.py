"""Data larger than memory: float32 rows kept in a file and read a batch at a time.

An image folder or a Python dataset whose inputs would take more than
`MAX_IN_MEMORY_BYTES` is decoded once into a raw float32 file under
keras-tl's data cache (`cache_dir()`), and its task holds `DiskArray`s instead of
NumPy arrays. Training, prediction and validation read them a batch at a time,
and the outputs of a frozen prefix on them are written to a file of their own,
so memory holds a batch, not a split (plus what the operating system keeps in
its page cache).

Files only one process can use (a registered dataset, prefix outputs) are named
`KIND-HOST-PID-*.f32` and deleted when that process exits normally; the next
process on the same host that writes to the cache deletes those of processes
that are gone (killed, crashed), and their unfinished `.partial` files.
"""

import atexit
import contextlib
import os
import re
import socket
import uuid

import numpy as np

from keras_tl.filesystem import cache_root

# The most input data (float32) a task holds in memory: an image folder or a Python
# dataset larger than this is written to keras-tl's data cache and read from there
# a batch at a time (`ondisk`).
MAX_IN_MEMORY_BYTES = 4 * 2**30
_CHUNK_ROWS = 1024
_HOST = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())
_PROCESS_FILE = re.compile(r"^(?:.+\.)?[a-z]+-(?P<host>[^-]+)-(?P<pid>\d+)-[0-9a-f]{32}"
                           r"(?:\.f32|\.partial)$")


def cache_dir():
    """The folder for keras-tl's on-disk data: `data/` under
    `keras_tl.filesystem.cache_root()`. Image folders decoded there are reused by later runs and
    worker processes (keyed by file names, sizes and modification times, image
    size and mode); delete the folder to reclaim the space.
    """
    folder = os.path.join(cache_root(), "data")
    os.makedirs(folder, exist_ok=True)
    return folder


class DiskArray:
    """Rows of a float32 array stored in a raw file, read when indexed.

    Indexing with an int, a slice or a 1-D array of row numbers (optionally
    followed by basic indices of the other axes, e.g. `x[rows, :, :, 0]`) reads
    those rows and returns a NumPy array, as indexing a NumPy array would.
    `take(rows)` selects rows without reading them. `numpy.asarray` reads every
    row.

    Args:
        path: str. A file of `prod(shape)` float32 values, rows first.
        shape: tuple of int. The shape of the whole file's array.
        rows: 1-D int array or None. The rows of the file this array holds, in
            order (None: all of them).
    """

    def __init__(self, path, shape, rows=None):
        self.path = path
        self._file_shape = tuple(shape)
        self._rows = None if rows is None else np.asarray(rows, dtype="int64")
        self._data = None

    @property
    def shape(self):
        count = self._file_shape[0] if self._rows is None else len(self._rows)
        return (count,) + self._file_shape[1:]

    dtype = np.dtype("float32")

    @property
    def ndim(self):
        return len(self._file_shape)

    def __len__(self):
        return self.shape[0]

    def _file(self):
        if self._data is None:
            self._data = np.memmap(self.path, dtype="float32", mode="r",
                                   shape=self._file_shape)
        return self._data

    def __getitem__(self, key):
        if isinstance(key, tuple):
            return self._index_rows_then_axes(key)
        if isinstance(key, (int, np.integer)):
            return np.array(self._file()[key if self._rows is None else self._rows[key]])
        if isinstance(key, slice) and self._rows is None:
            return np.array(self._file()[key])
        # Read the file in row order (sequential on disk), then restore the order.
        rows, inverse = np.unique(self._row_numbers(key), return_inverse=True)
        return np.array(self._file()[rows])[inverse.reshape(-1)]

    def _row_numbers(self, key):
        """The file rows a slice or a 1-D array of row numbers (or mask) selects."""
        if not isinstance(key, slice):
            key = np.asarray(key)
            if key.ndim != 1 or (key.size and key.dtype.kind not in "iub"):
                raise TypeError(
                    f"DiskArray rows are indexed by an int, a slice or a 1-D array of "
                    f"row numbers. Received: an array of {key.dtype} of shape "
                    f"{key.shape}."
                )
            if key.dtype.kind != "b":
                key = key.astype(np.intp)
        return np.arange(len(self))[key] if self._rows is None else self._rows[key]

    def _index_rows_then_axes(self, key):
        rows, rest = key[0], key[1:]
        if rows is None or rows is Ellipsis or any(
            part is None or part is Ellipsis or isinstance(part, (list, np.ndarray))
            for part in rest
        ):
            raise TypeError(
                f"DiskArray takes rows first, then an int or a slice per other axis "
                f"(e.g. x[rows, :, 0]). Received: {key!r}."
            )
        selected = self[rows]
        if isinstance(rows, (int, np.integer)):
            return selected[rest]
        return selected[(slice(None),) + rest]

    def take(self, rows):
        """A `DiskArray` of the given rows of this one, read only when indexed."""
        return DiskArray(self.path, self._file_shape, self._row_numbers(rows))

    def __array__(self, dtype=None, copy=None):
        if copy is False:
            raise ValueError("A DiskArray cannot be read into memory without a copy.")
        return self[:] if dtype is None else self[:].astype(dtype)

    def identity(self):
        """Bytes that identify these rows of this file (path, size, modification
        time, shape, rows) without reading it: a cheap cache key."""
        stat = os.stat(self.path)
        head = f"{self.path}|{stat.st_size}|{stat.st_mtime_ns}|{self._file_shape}|"
        rows = b"all" if self._rows is None else self._rows.tobytes()
        return head.encode() + rows

    def __reduce__(self):
        # Pickles as the file's name, not its contents.
        return DiskArray, (self.path, self._file_shape, self._rows)

    def __repr__(self):
        return f"DiskArray(shape={self.shape}, path={self.path!r})"


def take_rows(array, rows):
    """`array[rows]`, without reading a `DiskArray`'s rows into memory."""
    return array.take(rows) if isinstance(array, DiskArray) else array[rows]


def chunks(array, rows=None):
    """Yields `array` (NumPy or `DiskArray`) as consecutive NumPy blocks of `rows`
    rows (default 1024)."""
    rows = rows or _CHUNK_ROWS
    for start in range(0, len(array), rows):
        yield array[start:start + rows]


def process_file_name(kind):
    """A new file name in the cache that only this process uses:
    `KIND-HOST-PID-RANDOM.f32` (see the module docstring)."""
    return f"{kind}-{_HOST}-{os.getpid()}-{uuid.uuid4().hex}.f32"


class RowWriter:
    """Writes float32 rows to a new file in `cache_dir()`, then opens them.

    Rows are written to a `.partial` file of this process and renamed when
    `finish()` is called, so a file under its final name is always complete.

    Args:
        name: str or None. The file's name in `cache_dir()`; None: a new
            `process_file_name(kind)`, deleted when this process exits (for
            data only this process can name, such as a registered dataset).
        kind: str. The name's first word when `name` is None.
    """

    def __init__(self, name=None, kind="rows"):
        folder = cache_dir()
        _remove_files_of_dead_processes(folder)
        temporary = name is None
        self.path = os.path.join(folder, name or process_file_name(kind))
        self._partial = f"{self.path}.{process_file_name('partial')[:-4]}.partial"
        self._handle = open(self._partial, "wb")
        self._row_shape = None
        self._count = 0
        if temporary:
            atexit.register(_remove, self.path)

    def write(self, rows):
        """Appends rows (an array whose first axis counts rows)."""
        rows = np.ascontiguousarray(rows, dtype="float32")
        if self._row_shape is None:
            self._row_shape = rows.shape[1:]
        elif rows.shape[1:] != self._row_shape:
            self.abort()
            raise ValueError(
                f"Rows of shape {rows.shape[1:]} after rows of shape {self._row_shape}."
            )
        self._handle.write(rows.tobytes())
        self._count += len(rows)

    def finish(self):
        """Closes the file and returns it as a `DiskArray`."""
        self._handle.close()
        os.replace(self._partial, self.path)
        return DiskArray(self.path, (self._count,) + tuple(self._row_shape))

    def abort(self):
        """Closes and deletes the unfinished file."""
        self._handle.close()
        _remove(self._partial)


@contextlib.contextmanager
def exclusive(name):
    """Holds an exclusive lock on `NAME.lock` in `cache_dir()` (where the
    platform has `fcntl`), so processes writing the same file take turns."""
    try:
        import fcntl
    except ImportError:  # Not on Windows: concurrent writers each write a copy.
        yield
        return
    with open(os.path.join(cache_dir(), f"{name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# Folders this process has already swept: processes that die later leave their
# files to the next keras-tl process.
_SWEPT = set()


def _remove_files_of_dead_processes(folder):
    if folder in _SWEPT:
        return
    _SWEPT.add(folder)
    for name in os.listdir(folder):
        match = _PROCESS_FILE.match(name)
        if match and match["host"] == _HOST and not _alive(int(match["pid"])):
            _remove(os.path.join(folder, name))


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # Another user's live process.
        return True
    return True


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
