"""Imports run one way (docs/architecture.md), read from the source (AST).

Every import in keras_tl, at module level or inside a function, goes from a layer
to the same layer or a lower one; `keras_tl.scores` imports no keras and nothing of
keras_tl but `errors`; and no package's modules import each other in a cycle.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "keras_tl"

# Higher imports lower, never the other way. Packages on one rank do not import
# each other (data and networks; training and results).
RANKS = {
    "errors": 0,
    "filesystem": 0,
    # The trial store's own modules sit between errors and store, which imports
    # them: storage_faults, then atomic and runlock (which use it).
    "storage_faults": 0.5,
    "atomic": 0.75,
    "runlock": 0.75,
    "backend": 1,
    "store": 1,
    "scores": 1,
    "config": 2,
    "data": 3,
    "networks": 3,
    "training": 4,
    "results": 4,
    "measure": 5,
    "report": 5,
    "experiment": 6,
    # Thin re-exports of old import paths, kept for one release.
    "tasks": 7,
    "evaluator": 7,
    "models": 7,
    "transfer": 7,
}


def _module(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path):
    """(line, imported module) for every import in the file, absolute names."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import on line {node.lineno}"
            found.append((node.lineno, node.module))
            found.extend((node.lineno, f"{node.module}.{a.name}") for a in node.names)
    return found


def _package(module):
    """`keras_tl.training.fit` -> `training`; `keras_tl` itself -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "keras_tl" else None


FILES = sorted(LIBRARY.rglob("*.py"))


def test_every_library_package_has_a_rank():
    packages = {_package(_module(path)) for path in FILES} - {None}
    assert packages <= set(RANKS), sorted(packages - set(RANKS))


@pytest.mark.parametrize("path", FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_imports_go_to_the_same_layer_or_a_lower_one(path):
    own = _package(_module(path))
    if own is None:
        return  # keras_tl/__init__.py loads its public names lazily, by name.
    offending = []
    for line, name in _imports(path):
        other = _package(name)
        if other is None or other == own or other not in RANKS:
            continue
        if RANKS[other] >= RANKS[own]:
            offending.append(f"line {line}: {name} ({other}, rank {RANKS[other]})")
    assert offending == [], (
        f"{path.relative_to(ROOT)} ({own}, rank {RANKS[own]}) imports upwards or "
        f"sideways: {offending}"
    )


@pytest.mark.parametrize(
    "path", sorted((LIBRARY / "scores").rglob("*.py")), ids=lambda path: path.name
)
def test_scores_import_no_keras_and_nothing_of_keras_tl_but_errors(path):
    offending = [
        f"line {line}: {name}"
        for line, name in _imports(path)
        if name.split(".")[0] in ("keras", "torch", "tensorflow", "jax")
        or (name.startswith("keras_tl")
            and not name.startswith(("keras_tl.errors", "keras_tl.scores")))
    ]
    assert offending == []


def _module_level_graph():
    graph = {}
    modules = {_module(path): path for path in FILES}
    for module, path in modules.items():
        edges = set()
        for node in ast.parse(path.read_text()).body:
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            edges.update(name for name in names if name in modules and name != module)
        graph[module] = edges
    return graph


def _cycle(graph):
    """One import cycle of the graph, or None."""
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for child in sorted(graph[node]):
            if state.get(child) == "open":
                return trail[trail.index(child):] + [child]
            if child not in state:
                found = visit(child, trail + [child])
                if found:
                    return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_level_import_cycle():
    assert _cycle(_module_level_graph()) is None
