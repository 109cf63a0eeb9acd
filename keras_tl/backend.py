"""Which Keras backends are installed, which one is active, and device info.

Nothing here imports torch, tensorflow or jax: installed versions come from package
metadata, so `keras-tl backends` stays fast and safe before a backend is chosen.

Importing this module (the run folder and the CLI do, before any training) mutes
TensorFlow's C++ start-up notices when the backend is torch or jax: see
`quiet_tensorflow`.
"""

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import sys

from keras_tl.errors import BackendError
from keras_tl.filesystem import cache_root

BACKENDS = ("torch", "tensorflow", "jax")

# Import name -> distributions that provide it, in the order we look for a version.
_DISTRIBUTIONS = {
    "torch": ("torch",),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tf-nightly"),
    "jax": ("jax",),
}


def installed_version(name):
    """Returns the installed version of a backend, or None, without importing it.

    Args:
        name: str. One of `"torch"`, `"tensorflow"`, `"jax"`.

    Returns:
        The version string, or None when the backend is not installed.

    Example:

    >>> keras_tl.backend.installed_version("jax")
    '0.10.2'
    """
    check_name(name)
    if importlib.util.find_spec(name) is None:
        return None
    for distribution in _DISTRIBUTIONS[name]:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def check_name(name):
    """Raises `BackendError` unless `name` is a Keras backend keras-tl supports."""
    if name not in BACKENDS:
        raise BackendError(
            f"Unknown backend {name!r}. Expected one of {', '.join(BACKENDS)}. "
            f"Use e.g. --backend jax or KERAS_BACKEND=jax."
        )


def active():
    """Returns the name of the backend keras uses (or will use once imported).

    Once keras is imported its own answer is final. Before that, `KERAS_BACKEND`
    wins, then the `backend` entry of `$KERAS_HOME/keras.json`, then Keras' default
    (`"tensorflow"`).
    """
    if "keras" in sys.modules:
        return sys.modules["keras"].config.backend()
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    keras_home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    try:
        with open(os.path.join(keras_home, "keras.json")) as file:
            return json.load(file).get("backend", "tensorflow")
    except (OSError, ValueError):
        return "tensorflow"


def require(name):
    """Makes `name` the Keras backend of this process, or explains why it cannot be.

    Call it before anything imports keras. If keras is already imported with the
    same backend this is a no-op.

    Args:
        name: str. One of `"torch"`, `"tensorflow"`, `"jax"`.

    Raises:
        BackendError: the name is unknown, the backend is not installed, or keras
            was already imported with another backend (the backend cannot change
            within a process).

    Example:

    >>> import keras_tl.backend
    >>> keras_tl.backend.require("jax")  # before `import keras`
    """
    check_name(name)
    if installed_version(name) is None:
        raise BackendError(
            f"Backend {name!r} is not installed. Install it with: "
            f"pip install 'keras-tl[{name}]'"
        )
    if "keras" in sys.modules:
        current = sys.modules["keras"].config.backend()
        if current != name:
            raise BackendError(
                f"keras is already imported with backend {current!r}; requested "
                f"{name!r}. Set KERAS_BACKEND={name} before the first `import keras` "
                f"(start a new Python process)."
            )
        return
    os.environ["KERAS_BACKEND"] = name
    quiet_tensorflow(name)


# TensorFlow's C++ logging settings, read once when TensorFlow is first imported.
# TF_CPP_MIN_LOG_LEVEL=3 keeps its INFO, WARNING and ERROR lines off stderr; the
# oneDNN notice (and absl's "All log messages before absl::InitializeLog()" line that
# comes with it) is logged whatever that level, unless oneDNN's custom operations are
# off. keras imports TensorFlow even on torch and jax when it is installed
# (`keras.utils.set_random_seed` seeds it), and there it only seeds and feeds data;
# keras-tl's own processes tell Keras not to (`without_tensorflow`).
QUIET_TENSORFLOW = {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0"}


def quiet_tensorflow(name=None):
    """Mutes TensorFlow's start-up notices when the backend is not tensorflow.

    Sets `TF_CPP_MIN_LOG_LEVEL=3` and `TF_ENABLE_ONEDNN_OPTS=0` unless the user set
    them, before TensorFlow is imported (afterwards they have no effect). Nothing
    changes on the tensorflow backend, where its messages may matter.

    Args:
        name: str or None. The backend; None: the active one (`active()`).

    Returns:
        The variables set, as a dict (empty when nothing was set).
    """
    if "tensorflow" in sys.modules:
        return {}
    try:
        name = name or active()
    except Exception:  # Never fail on an unreadable keras.json; keras will say why.
        return {}
    if name == "tensorflow":
        return {}
    changed = {key: value for key, value in QUIET_TENSORFLOW.items() if key not in os.environ}
    os.environ.update(changed)
    return changed


def without_tensorflow():
    """Makes Keras treat TensorFlow as not installed, on the torch and jax
    backends, in a process keras-tl owns (the CLI, its worker processes).

    Keras imports TensorFlow whenever it is installed, on every backend, to seed
    it and to recognise its types (`keras.utils.set_random_seed`, serialisation):
    2.7 s on 2 CPU cores, and 698 MB peak memory against 289 MB for a jax
    process that has imported keras and seeded. keras-tl feeds
    no `tf.data` on torch and jax, so its processes there run as on an install
    without TensorFlow (as the torch and jax test environments are). Where
    keras-tl is imported as a library, `tensorflow_hidden` does the same for the
    length of one call. Nothing changes once TensorFlow is imported, or on
    the tensorflow backend. Sets the flag of Keras' lazy `tensorflow` module
    (`keras.src.utils.module_utils`, internal); tests/test_training/test_seeding.py
    fails if a Keras upgrade changes it.
    """
    if _hides_tensorflow():
        _tensorflow_flag()._available = False


def _tensorflow_flag():
    from keras.src.utils import module_utils

    return module_utils.tensorflow


def _hides_tensorflow():
    import keras

    return keras.config.backend() != "tensorflow" and "tensorflow" not in sys.modules


@contextlib.contextmanager
def tensorflow_hidden():
    """`without_tensorflow` for the length of a block (or a decorated function):
    what `keras_tl.evaluate` runs in, so that a caller's process pays no
    TensorFlow import for an evaluation on torch or jax. Keras' flag is put back
    afterwards, so the caller's own later use of TensorFlow with Keras works as
    before."""
    with keras_ignoring_tensorflow() if _hides_tensorflow() else contextlib.nullcontext():
        yield


@contextlib.contextmanager
def keras_ignoring_tensorflow():
    """Keras treats TensorFlow as not installed for the length of a block, on
    any backend; its flag is put back afterwards."""
    flag = _tensorflow_flag()
    previous = flag._available
    flag._available = False
    try:
        yield
    finally:
        flag._available = previous


def thread_limits(threads):
    """Environment variables that cap a process's compute threads at `threads`.

    They must be set before the backend is imported: OpenMP/MKL (torch, NumPy),
    TensorFlow's intra- and inter-op pools and XLA's CPU thread pool (jax).
    """
    threads = str(int(threads))
    # Without an earlier call's thread flags: XLA_FLAGS is part of the key of
    # jax's compilation cache, which a driver and its workers then share.
    flags = " ".join(
        flag for flag in os.environ.get("XLA_FLAGS", "").split()
        if not flag.startswith(_THREAD_FLAGS)
    )
    return {
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "TF_NUM_INTRAOP_THREADS": threads,
        "TF_NUM_INTEROP_THREADS": threads,
        "XLA_FLAGS": (flags + " --xla_cpu_multi_thread_eigen=false "
                      f"intra_op_parallelism_threads={threads}").strip(),
    }


_THREAD_FLAGS = ("--xla_cpu_multi_thread_eigen=", "intra_op_parallelism_threads=")


def threads_per_process(processes):
    """The compute threads each of `processes` processes gets on this machine's
    cores (at least 1): spawned workers and the driver beside them alike."""
    return max(1, (os.cpu_count() or 1) // processes)


def limit_threads(threads):
    """Caps this process's compute threads at `threads`, through the variables
    of `thread_limits` that the environment does not set already.

    Call it before keras is imported: for a driver that trains beside spawned
    workers (the CLI with `--workers N`). A small network's step gains little
    from a second thread, and two threads per process on too few cores leave
    the workers waiting: torch's idle OpenMP threads spin.
    """
    for name, value in thread_limits(threads).items():
        if name not in os.environ or (
            name == "XLA_FLAGS" and "xla_cpu_multi_thread_eigen" not in os.environ[name]
        ):
            os.environ[name] = value


@contextlib.contextmanager
def torch_threads(threads):
    """Caps torch's intra-op threads at `threads` inside the block (torch only:
    TensorFlow and XLA fix their thread pools when they start). For a driver
    that trains beside spawned workers in a process keras-tl does not own."""
    import keras

    if keras.config.backend() != "torch":
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(min(previous, threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def keep_jax_compilations():
    """Keeps jax's compiled XLA programs on disk for later runs (jax's persistent
    compilation cache), in a process keras-tl owns (the CLI; the workers it
    spawns inherit the environment). Call it before keras is imported.

    A run on jax compiles each training step, each random initialiser's weight
    shape and each prediction shape once: 85 compilations, about 5 s of the
    default run, which a later run reads back in milliseconds. Sets jax's own
    variables where the environment does not: `JAX_COMPILATION_CACHE_DIR` to
    `jax/` under `keras_tl.filesystem.cache_root()` (beside the data cache), and `JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`
    to 0 (jax keeps only programs that took a second or more to compile by
    default; a small network's take 0.02-0.6 s). A cached program is the same
    program: the numbers do not change. `JAX_ENABLE_COMPILATION_CACHE=false`
    turns it off; deleting the folder empties it. Where the folder cannot be
    made or written (a read-only home), nothing is kept: jax would warn at
    its first compilation.
    """
    if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        folder = os.path.join(cache_root(), "jax")
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError:
            return
        if not os.access(folder, os.W_OK):
            return
        os.environ["JAX_COMPILATION_CACHE_DIR"] = folder
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")


def import_keras_quietly():
    """Imports keras with the process's stderr file descriptor muted, and
    without the optional packages Keras imports for features keras-tl does not
    use. Call it in a process keras-tl owns (the CLI, its worker processes).

    TensorFlow's C++ start-up writes notices straight to file descriptor 2
    (`TF_CPP_MIN_LOG_LEVEL` does not silence them), which would bury the CLI's
    one-line error messages. Python exceptions raised by the import still
    propagate and are reported normally.

    Where they are installed, importing Keras also imports matplotlib (for
    `keras.visualization`) and, on torch and tensorflow, jax (Keras' Orbax
    callback and TensorFlow Lite's converter look for it): 0.7-0.9 s of the
    3-4 s a worker process takes to start on 2 CPU cores. They are refused for
    the length of the import (`refused_imports`), so Keras starts as on an
    install without them; keras-tl imports matplotlib itself when it draws a
    report, and both import normally afterwards.
    """
    refused = ["matplotlib"] if active() == "jax" else ["matplotlib", "jax"]
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        with refused_imports(refused):
            import keras  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def refused_imports(names):
    """Importing any of `names` (or a submodule) raises ImportError for the
    length of a block, as if it were not installed; afterwards it imports
    normally. A name already imported is left alone."""
    refused = [name for name in names if name not in sys.modules]
    for name in refused:
        sys.modules[name] = None  # The import system's "not importable" mark.
    try:
        yield
    finally:
        for name in refused:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def describe():
    """Returns one dict per supported backend: name, version (or None), active."""
    current = active()
    return [
        {"name": name, "version": installed_version(name), "active": name == current}
        for name in BACKENDS
    ]


def device_info():
    """Returns the active backend and the devices keras can see, as plain strings."""
    import keras

    backend = keras.config.backend()
    try:
        devices = [str(device) for device in keras.distribution.list_devices()]
    except Exception:  # Device listing is informational; never fail a run on it.
        devices = []
    return {"backend": backend, "devices": devices}


quiet_tensorflow()
