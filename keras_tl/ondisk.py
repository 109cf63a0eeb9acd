"""Data larger than memory: float32 rows kept in a file and read a batch at a time.

An image folder or a Python dataset whose inputs would take more than
`tasks.MAX_IN_MEMORY_BYTES` is decoded once into a raw float32 file under
keras-tl's data cache (`cache_dir()`), and its task holds `DiskArray`s instead of
NumPy arrays. Training, prediction and feature extraction index tasks in batches,
so only the rows of the current batch are in memory (plus what the operating
system keeps in its page cache).
"""

import atexit
import os

import numpy as np

_CHUNK_ROWS = 1024


def cache_dir():
    """The folder for keras-tl's on-disk data.

    `$KERAS_TL_CACHE_DIR`, else `$XDG_CACHE_HOME/keras-tl`, else
    `~/.cache/keras-tl`. Image folders decoded there are reused by later runs and
    worker processes (keyed by file names, sizes and modification times, image
    size and mode); delete the folder to reclaim the space.
    """
    folder = os.environ.get("KERAS_TL_CACHE_DIR")
    if not folder:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
            os.path.expanduser("~"), ".cache"
        )
        folder = os.path.join(base, "keras-tl")
    folder = os.path.join(folder, "data")
    os.makedirs(folder, exist_ok=True)
    return folder


class DiskArray:
    """Rows of a float32 array stored in a raw file, read when indexed.

    Indexing with an int, a slice or a 1-D array of row numbers reads those rows
    and returns a NumPy array, as indexing a NumPy array would. `take(rows)`
    selects rows without reading them. `numpy.asarray` reads every row.

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

    @property
    def size(self):
        return int(np.prod(self.shape))

    def __len__(self):
        return self.shape[0]

    def _file(self):
        if self._data is None:
            self._data = np.memmap(self.path, dtype="float32", mode="r",
                                   shape=self._file_shape)
        return self._data

    def _file_rows(self, key):
        if self._rows is not None:
            return self._rows[key]
        if isinstance(key, slice):
            return key
        return np.asarray(key)

    def __getitem__(self, key):
        if isinstance(key, tuple):
            return self[key[0]][(slice(None),) + key[1:]]
        return np.array(self._file()[self._file_rows(key)])

    def take(self, rows):
        """A `DiskArray` of the given rows of this one, read only when indexed."""
        rows = np.arange(len(self))[rows] if self._rows is None else self._rows[rows]
        return DiskArray(self.path, self._file_shape, rows)

    def __array__(self, dtype=None, copy=None):
        return self[:] if dtype is None else self[:].astype(dtype)

    def __reduce__(self):
        # Pickles as the file's name, not its contents.
        return DiskArray, (self.path, self._file_shape, self._rows)

    def __repr__(self):
        return f"DiskArray(shape={self.shape}, path={self.path!r})"


def take_rows(array, rows):
    """`array[rows]`, without reading a `DiskArray`'s rows into memory."""
    return array.take(rows) if isinstance(array, DiskArray) else array[rows]


def chunks(array, rows=_CHUNK_ROWS):
    """Yields `array` (NumPy or `DiskArray`) as consecutive NumPy blocks of rows."""
    for start in range(0, len(array), rows):
        yield array[start:start + rows]


class RowWriter:
    """Writes float32 rows to a new file in `cache_dir()`, then opens them.

    Rows are written to `NAME.partial` and renamed when `finish()` is called, so a
    file under its final name is always complete.

    Args:
        name: str. The file's name in `cache_dir()`.
        temporary: bool. Remove the file when this Python process exits (for data
            that only this process can name, such as a registered dataset).
    """

    def __init__(self, name, temporary=False):
        self.path = os.path.join(cache_dir(), name)
        self._partial = self.path + f".{os.getpid()}.partial"
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


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
