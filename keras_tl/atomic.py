"""Files written whole or not at all, and JSON without NaN."""

import contextlib
import json
import math
import os
import tempfile

from keras_tl.storage_faults import storage_errors


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _finite(value):
    """`value` with every NaN or infinite float replaced by None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def json_text(value, **options):
    """`json.dumps` of `value` with NaN and infinities written as null."""
    return json.dumps(_finite(value), allow_nan=False, **options)


def write_atomic(path, text):
    """Writes `text` to `path` through a temporary file, fsync and a rename.

    Readers see the old file or the new one, never a part. A failure (a full disk,
    a read-only folder) raises one clear `StoreError` and leaves `path` as it was.
    """
    folder = os.path.dirname(os.path.abspath(path))
    temporary = None
    try:
        with storage_errors(path, "write"):
            handle, temporary = tempfile.mkstemp(
                dir=folder, prefix=".tmp-", suffix=os.path.basename(path)
            )
            with os.fdopen(handle, "w", newline="") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes owner-only files
            os.replace(temporary, path)
            temporary = None
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.remove(temporary)
