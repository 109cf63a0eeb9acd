"""Import hygiene, read from the source (AST): what runs when a module is imported.

`keras_tl/` speaks keras only: importing it must never import torch, tensorflow or
jax (keras loads the chosen backend itself). `cli/` must let `--backend` choose the
backend before keras loads: at module level it imports only click and the standard
library, it never imports keras itself, and the keras_tl modules it imports before
choosing a backend do not import keras when they load.
"""

import ast
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "keras_tl"
CLI = ROOT / "cli"
BACKEND_PACKAGES = ("torch", "tensorflow", "jax")
# The CLI's package name (setup.cfg installs cli/ as keras_tl_cli).
CLI_PACKAGE = "keras_tl_cli"
CLI_MODULE_LEVEL_ALLOWED = set(sys.stdlib_module_names) | {"click", CLI_PACKAGE}
# The CLI function that sets KERAS_BACKEND; keras may load only after it is called.
SELECT_BACKEND = "_select_backend"


def python_files(folder):
    return sorted(folder.rglob("*.py"))


def module_name(path):
    """`keras_tl/scores/stats.py` -> `keras_tl.scores.stats`; cli/ -> keras_tl_cli."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] == "cli":
        parts[0] = CLI_PACKAGE
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_package(path):
    return path.name == "__init__.py"


def imported_names(node, current_module, package):
    """The absolute module names one Import / ImportFrom node names.

    `from a.b import c` names `a.b` and `a.b.c` (c may be a submodule).
    """
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = current_module.split(".") if package else current_module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module
    return [module] + [
        f"{module}.{alias.name}" for alias in node.names if alias.name != "*"
    ]


def module_level_imports(tree):
    """Import nodes executed when the module loads.

    Module-level statements, including those nested in `if`, `try` (every branch and
    handler), `with`, loops and class bodies; not function bodies.
    """
    found = []
    pending = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            pending.extend(
                child
                for child in ast.iter_child_nodes(node)
                if isinstance(child, (ast.stmt, ast.excepthandler, ast.match_case))
            )
    return found


def all_imports(tree):
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
    ]


def parse(path):
    return ast.parse(path.read_text(), filename=str(path))


def names_package(name, packages):
    return name.split(".")[0] in packages


def backend_imports(source, module="example", package=False):
    """Module-level imports of torch / tensorflow / jax in Python source text."""
    tree = ast.parse(source)
    return sorted(
        name
        for node in module_level_imports(tree)
        for name in imported_names(node, module, package)
        if names_package(name, BACKEND_PACKAGES)
    )


def test_the_checker_sees_module_level_imports_only():
    source = (
        "import os\n"
        "import torch.nn as nn\n"
        "from jax import numpy\n"
        "try:\n"
        "    import tensorflow\n"
        "except ImportError:\n"
        "    from jax.numpy import ndarray\n"
        "else:\n"
        "    import torch.cuda\n"
        "finally:\n"
        "    import torch.fft\n"
        "if flag:\n"
        "    import jax.random\n"
        "elif other:\n"
        "    import jax.nn\n"
        "else:\n"
        "    import tensorflow.math\n"
        "with context():\n"
        "    import torch.linalg\n"
        "class Layer:\n"
        "    import jax.lax\n"
        "def later():\n"
        "    import torch.optim\n"
        "lazy = lambda: __import__('jax')\n"
        "import keras\n"
    )

    assert backend_imports(source) == sorted(
        [
            "torch.nn",
            "jax",
            "jax.numpy",
            "tensorflow",
            "jax.numpy",
            "jax.numpy.ndarray",
            "torch.cuda",
            "torch.fft",
            "jax.random",
            "jax.nn",
            "tensorflow.math",
            "torch.linalg",
            "jax.lax",
        ]
    )


@pytest.mark.parametrize(
    "path", python_files(LIBRARY), ids=lambda path: str(path.relative_to(ROOT))
)
def test_library_never_imports_a_backend_at_module_level(path):
    tree = parse(path)
    offending = [
        f"line {node.lineno}: {name}"
        for node in module_level_imports(tree)
        for name in imported_names(node, module_name(path), is_package(path))
        if names_package(name, BACKEND_PACKAGES)
    ]

    assert offending == [], (
        f"{path.relative_to(ROOT)} imports a backend at module level; use keras.ops "
        f"(or import inside the function that needs it)"
    )


def test_library_and_cli_sources_are_found():
    names = {module_name(path) for path in python_files(LIBRARY) + python_files(CLI)}

    assert {
        "keras_tl",
        "keras_tl.backend",
        "keras_tl.experiment.run",
        CLI_PACKAGE,
        f"{CLI_PACKAGE}.main",
    } <= names


@pytest.mark.parametrize(
    "path", python_files(CLI), ids=lambda path: str(path.relative_to(ROOT))
)
def test_cli_imports_only_click_and_the_standard_library_at_module_level(path):
    tree = parse(path)
    offending = [
        f"line {node.lineno}: {name}"
        for node in module_level_imports(tree)
        for name in imported_names(node, module_name(path), is_package(path))[:1]
        if name.split(".")[0] not in CLI_MODULE_LEVEL_ALLOWED
    ]

    assert offending == [], (
        f"{path.relative_to(ROOT)} imports more than click and the standard library at "
        f"module level; import keras_tl inside the command, after the backend is chosen"
    )


@pytest.mark.parametrize(
    "path", python_files(CLI), ids=lambda path: str(path.relative_to(ROOT))
)
def test_cli_never_imports_keras_or_a_backend_itself(path):
    tree = parse(path)
    offending = [
        f"line {node.lineno}: {name}"
        for node in all_imports(tree)
        for name in imported_names(node, module_name(path), is_package(path))
        if names_package(name, ("keras", *BACKEND_PACKAGES))
    ]

    assert offending == [], (
        f"{path.relative_to(ROOT)} imports keras or a backend; the CLI goes through "
        f"keras_tl, which imports keras after --backend is applied"
    )


def library_modules():
    """keras_tl module name -> path of its source file."""
    return {module_name(path): path for path in python_files(LIBRARY)}


def loads_keras(module, modules, seen=None):
    """The chain by which importing `module` imports keras or a backend, or None.

    Follows module-level imports inside keras_tl, including the parent packages
    that Python runs first.
    """
    seen = set() if seen is None else seen
    if module in seen or module not in modules:
        return None
    seen.add(module)
    parents = [".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)]
    for parent in parents:
        chain = loads_keras(parent, modules, seen)
        if chain:
            return chain
    path = modules[module]
    for node in module_level_imports(parse(path)):
        for name in imported_names(node, module, is_package(path)):
            if names_package(name, ("keras", *BACKEND_PACKAGES)):
                return [module, name]
            chain = loads_keras(name, modules, seen)
            if chain:
                return [module, *chain]
    return None


def test_the_keras_finder_follows_module_level_imports():
    modules = library_modules()

    assert loads_keras("keras_tl.networks.network", modules) == ["keras_tl.networks.network", "keras"]
    assert loads_keras("keras_tl.experiment.run", modules)[-1] == "keras"
    assert loads_keras("keras_tl.errors", modules) is None


def imports_before_backend_is_chosen(path):
    """keras_tl modules a CLI file imports before it calls `_select_backend`.

    In a function that never calls it, every import counts; in one that does, the
    imports on lines before the first call. `from keras_tl import x` names both
    `keras_tl` and `keras_tl.x` (x may be a submodule).
    """
    found = []
    for function in ast.walk(parse(path)):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        calls = [
            node.lineno
            for node in ast.walk(function)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == SELECT_BACKEND
        ]
        chosen_at = min(calls, default=float("inf"))
        for node in all_imports(function):
            if node.lineno >= chosen_at:
                continue
            found.extend(
                (function.name, node.lineno, name)
                for name in imported_names(node, module_name(path), is_package(path))
                if name.split(".")[0] == "keras_tl"
            )
    return found


def test_the_cli_imports_keras_tl_before_and_after_choosing_the_backend():
    before = {name for _, _, name in imports_before_backend_is_chosen(CLI / "main.py")}
    everywhere = {
        name
        for node in all_imports(parse(CLI / "main.py"))
        for name in imported_names(node, f"{CLI_PACKAGE}.main", False)
    }

    # The finder sees the early imports (errors, the backend check, the listings) and
    # leaves out those after the backend is chosen (the evaluator loads keras).
    assert {"keras_tl.errors", "keras_tl.backend"} <= before
    assert "keras_tl.experiment.run" in everywhere - before


@pytest.mark.parametrize(
    "path", python_files(CLI), ids=lambda path: str(path.relative_to(ROOT))
)
def test_cli_loads_keras_only_after_choosing_the_backend(path):
    modules = library_modules()
    offending = [
        f"{function}(), line {line}: {' -> '.join(chain)}"
        for function, line, name in imports_before_backend_is_chosen(path)
        for chain in [loads_keras(name, modules)]
        if chain
    ]

    assert offending == [], (
        f"{path.relative_to(ROOT)} imports keras (through keras_tl) before "
        f"{SELECT_BACKEND}() sets the backend"
    )
