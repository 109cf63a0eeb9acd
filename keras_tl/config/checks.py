"""Checks of single experiment values: each failure names the key path, what
was expected and what was received, as one `ConfigError` line."""

import difflib
import math

from keras_tl.errors import ConfigError


def shown(value, limit=200):
    """`repr(value)`, shortened in the middle when longer than `limit` characters."""
    try:
        text = repr(value)
    except ValueError:  # An integer beyond Python's limit on digits in a string.
        text = f"<a {type(value).__name__} too large to print>"
    if len(text) <= limit:
        return text
    return f"{text[:limit // 2]}...{text[-limit // 4:]} ({len(text)} characters)"


def fail(path, expected, received):
    raise ConfigError(f"{path}: expected {expected}, received {shown(received)}")


def check_keys(section, allowed, path):
    for key in section:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), list(allowed), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            where = f"{path}." if path else ""
            raise ConfigError(
                f"{where}{key}: unknown key. Allowed keys: {', '.join(allowed)}.{hint}"
            )


def optional_mapping(value, path):
    """An optional section: a mapping, or None for all its defaults."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        fail(path, "a mapping of option names to values", value)
    return value


# The largest count or size an integer setting takes (epochs, batch sizes, ...):
# beyond it a value is a typo, and it would not fit the trial store's integers.
MAX_INT = 2**31 - 1


def positive_int(value, path, maximum=MAX_INT):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        fail(path, "a positive integer", value)
    if value > maximum:
        fail(path, f"a positive integer of at most {maximum}", value)
    return value


def finite(value, path, expected):
    """`value` as a float when it is a finite real number (not a bool, NaN or inf)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(path, expected, value)
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        fail(path, expected.replace("a ", "a finite ", 1) + " (not NaN or infinity)", value)
    return number


def positive_float(value, path):
    number = finite(value, path, "a positive number")
    if number <= 0:
        fail(path, "a positive number", value)
    return number


def non_negative_float(value, path):
    number = finite(value, path, "a number >= 0")
    if number < 0:
        fail(path, "a number >= 0", value)
    return number


def one_of(value, allowed, path):
    if value not in allowed:
        fail(path, f"one of {', '.join(allowed)}", value)
    return value


def non_empty_list(value, path):
    if not isinstance(value, list) or not value:
        fail(path, "a non-empty list", value)
    return value


def non_empty_string(value, path):
    if not isinstance(value, str) or not value:
        fail(path, "a non-empty string", value)
    return value


MAX_NAME_LENGTH = 100


def run_name(value, path):
    """The experiment's name: the default run folder is runs/<name>-<time>, so it
    must be one folder name, never a path out of ./runs."""
    non_empty_string(value, path)
    expected = (
        f"a name of at most {MAX_NAME_LENGTH} characters without / or \\ or control "
        f"characters (it names the run folder runs/<name>-<time>), e.g. 'parity'"
    )
    bad = [char for char in value if char in "/\\" or ord(char) < 32 or ord(char) == 127]
    if bad or len(value) > MAX_NAME_LENGTH or value.strip() in ("", ".", ".."):
        fail(path, expected, value)
    return value


def check_plain(value, path):
    """Refuses anything that is not JSON data: text, finite numbers, true/false,
    null, lists, and mappings with text keys (YAML also makes dates and bytes)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                fail(f"{path or 'experiment'}", "text keys (quote the key)", key)
            check_plain(item, f"{path}.{key}" if path else key)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_plain(item, f"{path}[{index}]")
    elif isinstance(value, float):
        if not math.isfinite(value):
            fail(path, "a finite number (not NaN or infinity)", value)
    elif value is not None and not isinstance(value, (str, int, bool)):
        fail(
            path, "plain data: text, a number, true or false, a list or a mapping "
            "(quote it if it is text)", value,
        )
