"""keras-tl's own processes on torch and jax run as if TensorFlow were not
installed (keras_tl.backend.without_tensorflow): Keras would import it (2.7 s)
only to seed it and to recognise its types."""

import subprocess
import sys

import keras

BACKEND = keras.config.backend()

SWEEP = """
import sys, tempfile
import keras
from keras_tl.backend import without_tensorflow
without_tensorflow()
import keras_tl
config = {"name": "t", "model": {"builder": "small_cnn"},
          "source": {"task": "digits:0-4", "epochs": 1},
          "target": {"task": "digits:5-9", "train_sizes": [20], "epochs": 1},
          "arms": ["scratch", "fine_tune"], "seeds": 2, "scores": ["logme"]}
results = keras_tl.evaluate(config, out=tempfile.mkdtemp() + "/run")
assert all(trial["status"] == "ok" for trial in results.trials)
print("tensorflow" in sys.modules)
"""


def test_the_keras_internal_it_sets_still_exists():
    # Fails loudly if a Keras upgrade removes or renames the lazy module's flag.
    from keras.src.utils import module_utils

    assert hasattr(module_utils.tensorflow, "_available")


def test_a_sweep_in_a_keras_tl_process_imports_tensorflow_only_on_its_backend():
    completed = subprocess.run([sys.executable, "-c", SWEEP], capture_output=True,
                               text=True)
    assert completed.returncode == 0, completed.stderr[-3000:]
    imported = completed.stdout.strip().splitlines()[-1]
    assert imported == ("True" if BACKEND == "tensorflow" else "False")


LIBRARY_CALL = """
import sys, tempfile
import keras
import keras_tl
from keras.src.utils import module_utils
config = {"name": "t", "model": {"builder": "small_cnn"},
          "source": {"task": "digits:0-4", "epochs": 1},
          "target": {"task": "digits:5-9", "train_sizes": [20], "epochs": 1},
          "arms": ["scratch", "fine_tune"], "seeds": 2, "scores": []}
keras_tl.evaluate(config, out=tempfile.mkdtemp() + "/run")
print("tensorflow" in sys.modules, module_utils.tensorflow._available)
keras.utils.set_random_seed(0)  # The caller's own Keras sees TensorFlow again.
print("tensorflow" in sys.modules)
"""


def test_evaluate_called_as_a_library_hides_tensorflow_only_while_it_runs():
    completed = subprocess.run([sys.executable, "-c", LIBRARY_CALL], capture_output=True,
                               text=True)
    assert completed.returncode == 0, completed.stderr[-3000:]
    during, after = completed.stdout.strip().splitlines()[-2:]
    if BACKEND == "tensorflow":
        assert during.startswith("True") and after == "True"
    else:
        # Not imported by the evaluation, and Keras' flag back to "not checked yet".
        assert during == "False None"
        assert after == str(_tensorflow_installed())


def _tensorflow_installed():
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None
