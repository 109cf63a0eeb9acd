"""Reading an experiment file: YAML that cannot blow up memory or the stack.

Refused before any value is built: files that are too large or not regular files,
nesting deeper than `MAX_YAML_DEPTH`, aliases that expand beyond
`MAX_YAML_VALUES` values or `MAX_YAML_CHARACTERS` characters, and keys given twice.
"""

import os

from keras_tl.errors import ConfigError
from keras_tl.filesystem import path_problem

# Limits of an experiment file. Real ones are a few hundred bytes, a few levels
# deep and a few hundred values once aliases are expanded; far beyond that is a
# mistake (or an alias bomb, which must fail before anything is built from it).
MAX_YAML_BYTES = 1 << 20
MAX_YAML_DEPTH = 20
MAX_YAML_VALUES = 100_000
MAX_YAML_CHARACTERS = 10 * MAX_YAML_BYTES


def read_yaml(path):
    import yaml

    problem = path_problem(path)
    if problem == "not found":
        raise ConfigError(
            f"Experiment file not found: {path!r}. Expected a YAML file; see "
            f"examples/ for templates."
        )
    if problem:
        raise ConfigError(
            f"{path}: is {problem}. Expected a YAML file; see examples/ for templates."
        )
    size = os.path.getsize(path)
    if size > MAX_YAML_BYTES:
        raise ConfigError(
            f"{path}: {size} bytes, but an experiment file holds at most "
            f"{MAX_YAML_BYTES} bytes (a few hundred is usual). Check that this is the "
            f"experiment file."
        )
    try:
        with open(path, "rb") as file:
            text = file.read(MAX_YAML_BYTES + 1)
        raw = _load_yaml(path, text, yaml)
    except OSError as error:
        raise ConfigError(
            f"{path}: cannot read the file ({type(error).__name__}: {error.strerror}). "
            f"Check its permissions."
        ) from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        first_line = str(error).strip().splitlines()[0]
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{path}: not valid YAML{where} ({first_line}). Fix the syntax; see "
            f"examples/."
        ) from None
    if raw is None:
        raise ConfigError(f"{path}: the file is empty. Expected a mapping of keys.")
    return raw


def _load_yaml(path, text, yaml):
    """`yaml.safe_load` that refuses, before building any value, nesting deeper
    than `MAX_YAML_DEPTH`, aliases that expand past `MAX_YAML_VALUES` values, and
    a key given twice in one mapping."""
    # The event parser is iterative: a deep document cannot exhaust the stack here.
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise ConfigError(
                    f"{path}: nesting deeper than {MAX_YAML_DEPTH} levels at line "
                    f"{event.start_mark.line + 1}. An experiment file needs a few "
                    f"levels (e.g. target: {{task: ...}}); check the brackets and "
                    f"indentation."
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    loader = _strict_loader()(text)
    loader.name_of_file = path
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expanded_size(path, node)
        try:
            return loader.construct_document(node)
        except ConfigError:
            raise
        except (ValueError, TypeError, OverflowError) as error:
            raise ConfigError(
                f"{path}: a value cannot be read ({type(error).__name__}: "
                f"{str(error).splitlines()[0] if str(error) else ''}). Quote it if it "
                f"is text, or correct it."
            ) from None
    finally:
        loader.dispose()


def _check_expanded_size(path, root):
    """Refuses a document whose aliases expand past `MAX_YAML_VALUES` values or
    `MAX_YAML_CHARACTERS` characters of text, or nest deeper than `MAX_YAML_DEPTH`.

    Each node is visited once (a shared node's sizes are remembered), so this
    takes time in the size of the file, not of its expansion.
    """
    import yaml

    known, active = {}, set()

    def measure(node, depth):
        """(values, characters, height) of `node` with aliases expanded."""
        key = id(node)
        if key in active:
            raise ConfigError(
                f"{path}: an alias at line {node.start_mark.line + 1} refers to a "
                f"collection that contains it (a recursive alias). Write the values "
                f"out instead."
            )
        if key not in known:
            if depth > MAX_YAML_DEPTH:
                raise ConfigError(
                    f"{path}: nesting deeper than {MAX_YAML_DEPTH} levels (aliases "
                    f"expanded) at line {node.start_mark.line + 1}. An experiment file "
                    f"needs a few levels; write the values out or use fewer nested "
                    f"aliases."
                )
            if isinstance(node, yaml.ScalarNode):
                known[key] = (1, len(node.value), 1)
            else:
                active.add(key)
                children = [
                    child for item in node.value
                    for child in (item if isinstance(item, tuple) else (item,))
                ]
                sizes = [measure(child, depth + 1) for child in children]
                active.discard(key)
                known[key] = (
                    1 + sum(size[0] for size in sizes),
                    sum(size[1] for size in sizes),
                    1 + max((size[2] for size in sizes), default=0),
                )
        values, characters, height = known[key]
        if depth + height - 1 > MAX_YAML_DEPTH:
            raise ConfigError(
                f"{path}: nesting deeper than {MAX_YAML_DEPTH} levels (aliases "
                f"expanded) at line {node.start_mark.line + 1}. An experiment file "
                f"needs a few levels; write the values out or use fewer nested "
                f"aliases."
            )
        return known[key]

    values, characters, _ = measure(root, 1)
    if values > MAX_YAML_VALUES or characters > MAX_YAML_CHARACTERS:
        raise ConfigError(
            f"{path}: its aliases (*name) expand to {values} values and {characters} "
            f"characters, beyond the {MAX_YAML_VALUES} values or {MAX_YAML_CHARACTERS} "
            f"characters an experiment file may hold (an alias bomb?). Use fewer or "
            f"smaller aliases, or write the values out."
        )


def _strict_loader():
    import yaml

    class StrictLoader(yaml.SafeLoader):
        """A SafeLoader that refuses a key given twice in one mapping."""

        def construct_mapping(self, node, deep=False):
            if isinstance(node, yaml.MappingNode):
                seen = {}
                for key_node, _ in node.value:
                    if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == (
                        "tag:yaml.org,2002:merge"
                    ):
                        continue
                    key = self.construct_object(key_node)
                    line = key_node.start_mark.line + 1
                    if key in seen:
                        raise ConfigError(
                            f"{self.name_of_file}: the key {key!r} is given twice in "
                            f"one mapping (lines {seen[key]} and {line}); YAML would "
                            f"keep only the last. Remove one of them."
                        )
                    seen[key] = line
            return super().construct_mapping(node, deep=deep)

        def construct_object(self, node, deep=False):
            try:
                return super().construct_object(node, deep=deep)
            except ConfigError:
                raise
            except (ValueError, TypeError, OverflowError) as error:
                if not isinstance(node, yaml.ScalarNode):
                    raise
                text = node.value if len(node.value) <= 40 else node.value[:40] + "..."
                raise ConfigError(
                    f"{self.name_of_file}: the value {text!r} at line "
                    f"{node.start_mark.line + 1} cannot be read ({type(error).__name__}: "
                    f"{' '.join(str(error).split())[:200]}). Quote it if it is text, or "
                    f"correct it."
                ) from None

    return StrictLoader
