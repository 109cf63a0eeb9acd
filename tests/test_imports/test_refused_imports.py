"""keras-tl's own processes import Keras without the optional packages Keras
would import for features keras-tl does not use (keras_tl.backend.import_keras_quietly)."""

import importlib.util
import subprocess
import sys

import keras
import pytest

from keras_tl.backend import refused_imports

BACKEND = keras.config.backend()


def _write_package(folder, name):
    package = folder / name
    package.mkdir()
    (package / "__init__.py").write_text("VALUE = 1\n")
    (package / "part.py").write_text("VALUE = 2\n")


def test_a_refused_package_and_its_submodules_fail_to_import_only_inside_the_block(
        tmp_path, monkeypatch):
    _write_package(tmp_path, "keras_tl_optional_pkg")
    monkeypatch.syspath_prepend(str(tmp_path))
    with refused_imports(["keras_tl_optional_pkg"]):
        with pytest.raises(ImportError):
            import keras_tl_optional_pkg  # noqa: F401
        with pytest.raises(ImportError):
            import keras_tl_optional_pkg.part  # noqa: F401
    import keras_tl_optional_pkg.part

    assert keras_tl_optional_pkg.VALUE == 1 and keras_tl_optional_pkg.part.VALUE == 2
    for name in ("keras_tl_optional_pkg.part", "keras_tl_optional_pkg"):
        del sys.modules[name]


def test_a_package_imported_before_the_block_stays_importable_in_it():
    import json

    with refused_imports(["json"]):
        import json as again
    assert again is json and sys.modules["json"] is json


def test_the_block_undoes_its_refusals_when_it_raises(tmp_path, monkeypatch):
    _write_package(tmp_path, "keras_tl_optional_pkg2")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RuntimeError):
        with refused_imports(["keras_tl_optional_pkg2"]):
            raise RuntimeError("stop")
    import keras_tl_optional_pkg2

    assert keras_tl_optional_pkg2.VALUE == 1
    del sys.modules["keras_tl_optional_pkg2"]


KERAS_TL_PROCESS = """
import sys
from keras_tl.backend import import_keras_quietly
import_keras_quietly()
import keras
print(keras.config.backend(), "matplotlib" in sys.modules, "jax" in sys.modules)
import matplotlib.figure  # keras-tl's reports import it themselves, as usual
print("matplotlib" in sys.modules)
"""


def test_a_keras_tl_process_imports_keras_without_matplotlib_and_other_backends_jax():
    completed = subprocess.run([sys.executable, "-c", KERAS_TL_PROCESS],
                               capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-3000:]
    first, second = completed.stdout.strip().splitlines()[-2:]
    backend, matplotlib_imported, jax_imported = first.split()
    assert backend == BACKEND
    assert matplotlib_imported == "False"
    assert jax_imported == str(BACKEND == "jax")
    assert second == "True"


@pytest.mark.skipif(BACKEND == "jax" or importlib.util.find_spec("jax") is None,
                    reason="needs jax installed beside a torch or tensorflow backend")
def test_jax_still_imports_after_keras_did_without_it():
    completed = subprocess.run(
        [sys.executable, "-c", "from keras_tl.backend import import_keras_quietly\n"
         "import_keras_quietly()\nimport jax.numpy\nprint(int(jax.numpy.add(1, 2)))"],
        capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.strip().splitlines()[-1] == "3"
