"""Tasks from files: `npz:PATH` (arrays per split) and `csv:PATH?label=COLUMN`."""

import csv

import numpy as np

from keras_tl.data import ondisk
from keras_tl.data.task import (KINDS, SPLIT_SEED, SPLITS, Task, one_line,
                                stratified_split)
from keras_tl.errors import DataError
from keras_tl.filesystem import path_problem

# The most classes (largest label + 1) an npz: or registered task may have: a label
# beyond it is a typo or an id, and its head would not fit in memory.
MAX_CLASSES = 100_000


def check_file(path, name, what, expected):
    """Refuses a task file that is missing, a folder, or not a regular file (a
    device such as /dev/zero, a pipe, a socket), without ever opening it."""
    problem = path_problem(path)
    if problem == "not found":
        raise DataError(
            f"{what} not found: {path!r} (from task {name!r}). {expected}; check the "
            f"path."
        )
    if problem:
        raise DataError(f"{what} {path!r} (from task {name!r}) is {problem}. {expected}.")


def npz_task(name):
    path = name[len("npz:"):]
    check_file(
        path, name, "Task file",
        "Expected an .npz file with x_train, y_train, x_test, y_test",
    )
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except Exception as error:
        raise DataError(
            f"Cannot read {path!r} as an .npz archive ({type(error).__name__}). "
            f"Save it with numpy.savez(path, x_train=..., y_train=..., ...)."
        ) from None
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in arrays]
    if missing:
        raise DataError(
            f"{path!r} lacks the key(s) {', '.join(missing)}; it has "
            f"{', '.join(sorted(arrays)) or 'none'}. Expected x_train, y_train, "
            f"x_test, y_test (and optionally x_val, y_val, kind)."
        )
    kind = str(arrays.pop("kind", "classification"))
    if kind not in KINDS:
        raise DataError(
            f"{path!r}: kind must be one of {', '.join(KINDS)}. Received: {kind!r}."
        )
    if ("x_val" in arrays) != ("y_val" in arrays):
        raise DataError(f"{path!r}: give both x_val and y_val, or neither.")
    for split in SPLITS:
        if f"x_{split}" in arrays:
            arrays[f"x_{split}"], arrays[f"y_{split}"] = clean_split(
                path, split, arrays[f"x_{split}"], arrays[f"y_{split}"], kind
            )
    check_splits(repr(path), arrays, kind)
    if "x_val" not in arrays:
        labels = arrays["y_train"]
        strata = labels if kind != "regression" else np.zeros(len(labels))
        train, val = stratified_split(strata, (0.8, 0.2), SPLIT_SEED)
        x, y = arrays["x_train"], arrays["y_train"]
        arrays["x_train"], arrays["y_train"] = x[train], y[train]
        arrays["x_val"], arrays["y_val"] = x[val], y[val]
        if len(val) == 0:
            raise DataError(
                f"{path!r}: the train split is too small to hold out a validation "
                f"split ({len(y)} samples). Add x_val and y_val to the file."
            )
    return Task(name=name, kind=kind, num_outputs=num_outputs(arrays, kind), **arrays)


def num_outputs(arrays, kind):
    """Head width: classes (largest label + 1), 1 for binary, regression columns."""
    if kind == "classification":
        return int(max(arrays[f"y_{s}"].max() for s in SPLITS)) + 1
    if kind == "binary":
        return 1
    return arrays["y_train"].shape[1]


def check_splits(source, arrays, kind):
    """Checks that the splits present in `arrays` (cleaned by `clean_split`) agree:
    the same sample shape and regression columns in every split, and at least two
    classes in the train split of a classification or binary task."""
    present = [split for split in SPLITS if f"x_{split}" in arrays]
    shape = tuple(arrays["x_train"].shape[1:])
    for split in present:
        other = tuple(arrays[f"x_{split}"].shape[1:])
        if other != shape:
            raise DataError(
                f"{source}: x_{split} has samples of shape {other} but x_train has "
                f"{shape}. Every split's samples must have the same shape."
            )
    if kind == "regression":
        columns = arrays["y_train"].shape[1]
        for split in present:
            if arrays[f"y_{split}"].shape[1] != columns:
                raise DataError(
                    f"{source}: y_{split} has {arrays[f'y_{split}'].shape[1]} target "
                    f"column(s) but y_train has {columns}. Every split needs the same "
                    f"targets."
                )
        return
    classes = np.unique(arrays["y_train"])
    if len(classes) < 2:
        raise DataError(
            f"{source}: y_train holds a single class ({int(classes[0])}), but a {kind} "
            f"task needs at least two classes in its train split. Add samples of other "
            f"classes, or set kind='regression' for a numeric target."
        )


def _first_bad(mask):
    """The index of the first True in `mask`, as a tuple of ints."""
    return tuple(int(i) for i in np.argwhere(mask)[0])


def clean_split(path, split, x, y, kind):
    """One split's `(x, y)` as float32 inputs and int64 labels (float32 targets for
    regression), refusing what a model cannot learn from: empty or mismatched
    arrays, non-numeric or non-finite inputs, samples without features, label
    arrays that are not one label per sample, labels that are not class indices.
    """
    # A DiskArray knows its shape; numpy.shape would read every row of it.
    x_shape = x.shape if isinstance(x, ondisk.DiskArray) else np.shape(x)
    y_shape = np.shape(y)
    if len(x_shape) == 0 or len(y_shape) == 0:
        raise DataError(
            f"{path!r}: x_{split} and y_{split} must be arrays with one row per sample; "
            f"received shapes {x_shape} and {y_shape}."
        )
    if x_shape[0] == 0 or y_shape[0] == 0:
        raise DataError(
            f"{path!r}: the {split} split is empty. Every split needs at least one "
            f"sample."
        )
    if x_shape[0] != y_shape[0]:
        raise DataError(
            f"{path!r}: x_{split} has {x_shape[0]} samples but y_{split} has "
            f"{y_shape[0]}. They must match."
        )
    if 0 in x_shape[1:]:
        raise DataError(
            f"{path!r}: x_{split} has shape {x_shape}: its samples have no features. "
            f"Expected at least one input value per sample."
        )
    if not isinstance(x, ondisk.DiskArray):
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise DataError(
                f"{path!r}: x_{split} must hold numbers; received dtype {x.dtype}. "
                f"Convert it to numbers first (e.g. one-hot encode text or categories)."
            )
        with np.errstate(over="ignore", invalid="ignore"):
            x = x.astype("float32")
        finite = np.isfinite(x)
        if not finite.all():
            raise DataError(
                f"{path!r}: x_{split} holds {int(x.size - finite.sum())} non-finite "
                f"value(s) (NaN, infinity, or beyond float32's range), the first at "
                f"index {_first_bad(~finite)}. Replace or drop them first (e.g. "
                f"numpy.nan_to_num, or remove those samples)."
            )
    if x.ndim == 1:
        x = x[:, np.newaxis]
    y = np.asarray(y)
    if kind == "regression":
        if y.dtype.kind not in "biuf":
            raise DataError(
                f"{path!r}: y_{split} must hold numbers for a regression task; "
                f"received dtype {y.dtype} with values like {y.reshape(-1)[:3].tolist()}. "
                f"Store float targets, or set kind='classification' for class labels."
            )
        with np.errstate(over="ignore", invalid="ignore"):
            y = y.astype("float32").reshape(len(y), -1)
        finite = np.isfinite(y)
        if not finite.all():
            raise DataError(
                f"{path!r}: y_{split} holds {int(y.size - finite.sum())} non-finite "
                f"target(s) (NaN, infinity, or beyond float32's range), the first at "
                f"index {_first_bad(~finite)}. Fill in or drop those samples first."
            )
        if y.shape[1] == 0:
            raise DataError(
                f"{path!r}: y_{split} has shape {y_shape}: no target columns. Expected "
                f"at least one target per sample."
            )
        return x, y
    if y.ndim > 1 and int(np.prod(y.shape[1:])) != 1:
        hint = (
            " It looks one-hot encoded: store y.argmax(axis=1)."
            if y.ndim == 2 and y.dtype.kind in "biuf" else ""
        )
        raise DataError(
            f"{path!r}: y_{split} has shape {y_shape}, but a {kind} task takes one "
            f"integer class label per sample (shape ({y_shape[0]},)).{hint} For several "
            f"numeric targets, set kind='regression'."
        )
    y = y.reshape(-1)
    if y.dtype.kind == "b":
        y = y.astype("int64")
    if y.dtype.kind not in "iu" and not (
        y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y))
    ):
        if y.dtype.kind in "USO":
            fix = (
                "Map the names to integers 0..C-1 first (e.g. names, y = "
                "numpy.unique(y, return_inverse=True)), or use a csv: task, which "
                "maps text labels itself."
            )
        else:
            fix = "Store integers 0..C-1, or set kind='regression' in the file."
        raise DataError(
            f"{path!r}: y_{split} must hold integer class labels for a {kind} task. "
            f"Received dtype {y.dtype} with values like {y[:3].tolist()}. {fix}"
        )
    if y.dtype.kind == "f" and (y.min() < -(2**62) or y.max() > 2**62):
        raise DataError(
            f"{path!r}: y_{split} holds labels from {y.min()} to {y.max()}, beyond "
            f"class indices. Store integers 0..C-1."
        )
    y = y.astype("int64")
    top = 1 if kind == "binary" else MAX_CLASSES - 1
    if y.min() < 0 or y.max() > top:
        expected = "0 or 1" if kind == "binary" else f"integers from 0 to {top}"
        raise DataError(
            f"{path!r}: y_{split} must be {expected} for a {kind} task. Received "
            f"values from {y.min()} to {y.max()}."
            + (" Number the classes 0..C-1." if kind != "binary" else "")
        )
    return x, y


def parse_spec(name, prefix, options):
    """Splits `PREFIX:PATH?key=value&key=value` into the path and an options dict.

    Values are taken literally (no percent-decoding), so a column name may hold
    any character except `&`; the path ends at the first `?`.
    """
    path, _, query = name[len(prefix):].partition("?")
    if not path:
        raise DataError(
            f"Task {name!r} names no path. Expected {prefix}PATH, e.g. "
            f"{_EXAMPLES[prefix]}."
        )
    parsed = {}
    for item in query.split("&") if query else []:
        key, equals, value = item.partition("=")
        if not equals or key not in options:
            raise DataError(
                f"Task {name!r}: unknown option {item!r}. Expected "
                f"{' or '.join(f'{option}=...' for option in options)} after '?', "
                f"joined by '&', e.g. {_EXAMPLES[prefix]}."
            )
        if key in parsed:
            raise DataError(f"Task {name!r}: option {key!r} is given twice.")
        parsed[key] = value
    return path, parsed


_EXAMPLES = {
    "csv:": "csv:data.csv?label=species&kind=classification",
    "images:": "images:photos?size=64x64&mode=rgb",
}


def fill_splits(source, kind, arrays, hint):
    """Carves the splits missing from `arrays` out of its train split (stratified).

    Train only: 60/20/20 train/val/test. Train and test: 80/20 train/val. Train and
    val: 80/20 train/test. Every split must end up non-empty.
    """
    missing = [split for split in ("val", "test") if f"x_{split}" not in arrays]
    if missing:
        x, y = arrays["x_train"], arrays["y_train"]
        strata = y if kind != "regression" else np.zeros(len(y))
        fractions = (0.6, 0.2, 0.2) if len(missing) == 2 else (0.8, 0.2)
        parts = stratified_split(strata, fractions, SPLIT_SEED)
        for split, part in zip(["train", *missing], parts):
            arrays[f"x_{split}"] = ondisk.take_rows(x, part)
            arrays[f"y_{split}"] = y[part]
    empty = [split for split in SPLITS if len(arrays[f"y_{split}"]) == 0]
    if empty:
        sizes = ", ".join(f"{split} {len(arrays[f'y_{split}'])}" for split in SPLITS)
        raise DataError(
            f"{source}: the {' and '.join(empty)} split came out empty ({sizes}). "
            f"{hint}"
        )
    return arrays


def _class_indices(values):
    """Maps string labels to 0..C-1 in sorted order (numeric if all are integers)."""
    try:
        keys = [int(value) for value in values]
    except ValueError:
        keys = list(values)
    names = sorted(set(keys))
    index = {key: position for position, key in enumerate(names)}
    labels = np.asarray([index[key] for key in keys], dtype="int64")
    return labels, tuple(str(name) for name in names)


def _read_csv(path):
    """Returns the header and the data rows (with their line numbers) of a CSV file."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file)
            header = next(reader, None)
            rows, lines = [], []
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if header is not None and len(row) != len(header):
                    raise DataError(
                        f"{path!r} line {reader.line_num} has {len(row)} values but "
                        f"the header has {len(header)} columns. Every row needs one "
                        f"value per column."
                    )
                rows.append(row)
                lines.append(reader.line_num)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(
            f"Cannot read {path!r} as a UTF-8 CSV file ({type(error).__name__}: "
            f"{one_line(error)}). Save it as comma-separated UTF-8 text with a header "
            f"row."
        ) from None
    if header is None or not rows:
        raise DataError(
            f"{path!r} has no data rows. Expected a header row of column names, "
            f"then one row per sample."
        )
    header = [column.strip() for column in header]
    duplicates = sorted({column for column in header if header.count(column) > 1})
    if duplicates:
        raise DataError(
            f"{path!r} has duplicate column name(s) "
            f"{', '.join(map(repr, duplicates))}. "
            f"Give every column a unique name."
        )
    return header, rows, lines


def _numeric_column(path, column, values, lines, role):
    """Parses one CSV column as float64, naming the first bad value."""
    try:
        numbers = np.asarray(values, dtype="float64")
    except ValueError:
        numbers = None
    if numbers is not None and np.all(np.isfinite(numbers)):
        return numbers
    for value, line in zip(values, lines):
        try:
            number = float(value)
        except ValueError:
            number = None
        if number is not None and np.isfinite(number):
            continue
        if number is not None or not value.strip():
            raise DataError(
                f"{path!r}: column {column!r} has a missing or non-finite value "
                f"{value.strip()!r} on line {line}. Fill in or drop missing values "
                f"first."
            )
        if role == "feature":
            raise DataError(
                f"{path!r}: column {column!r} is not numeric (line {line}: "
                f"{value.strip()!r}). Every column except the label is read as a "
                f"number: one-hot encode {column!r} first (e.g. "
                f"pandas.get_dummies(frame, columns=[{column!r}])) or drop it."
            )
        raise DataError(
            f"{path!r}: the label column {column!r} is not numeric (line {line}: "
            f"{value.strip()!r}), but kind=regression needs numbers. Use "
            f"kind=classification for class labels."
        )
    # Every value parses with Python's float although NumPy refused one (e.g. "1_000").
    return np.asarray([float(value) for value in values])


def csv_task(name):
    path, options = parse_spec(name, "csv:", ("label", "kind"))
    kind = options.get("kind", "classification")
    if kind not in KINDS:
        raise DataError(
            f"Task {name!r}: kind must be one of {', '.join(KINDS)}. Received: "
            f"kind={kind!r}."
        )
    check_file(path, name, "CSV file", "Expected a comma-separated UTF-8 text file")
    header, rows, lines = _read_csv(path)
    label = options.get("label")
    if label is None or label not in header:
        received = "no label option" if label is None else f"label={label!r}"
        raise DataError(
            f"Task {name!r}: {received}, but the label must be one of the columns of "
            f"{path!r}: {', '.join(header)}. Use csv:{path}?label=COLUMN."
        )
    split_column = "split" if "split" in header and label != "split" else None
    features = [column for column in header if column not in (label, split_column)]
    if not features:
        raise DataError(
            f"{path!r} has no feature columns besides the label {label!r}. Expected "
            f"at least one numeric column."
        )
    columns = {column: [row[i] for row in rows] for i, column in enumerate(header)}
    x = np.stack(
        [_numeric_column(path, column, columns[column], lines, "feature")
         for column in features],
        axis=1,
    ).astype("float32")
    class_names = None
    if kind == "regression":
        y = _numeric_column(path, label, columns[label], lines, "label")
        y = y.astype("float32")[:, np.newaxis]
        num_outputs = 1
    else:
        values = [value.strip() for value in columns[label]]
        if "" in values:
            line = lines[values.index("")]
            raise DataError(
                f"{path!r}: line {line} has no value in the label column {label!r}. "
                f"Every row needs a label."
            )
        y, class_names = _class_indices(values)
        expected = "exactly two" if kind == "binary" else "at least two"
        if len(class_names) < 2 or (kind == "binary" and len(class_names) > 2):
            shown = ", ".join(class_names[:10])
            shown += ", ..." if len(class_names) > 10 else ""
            raise DataError(
                f"{path!r}: kind={kind} needs {expected} distinct labels in column "
                f"{label!r}; it has {len(class_names)}: {shown}."
                + (" Use kind=classification." if kind == "binary" else "")
            )
        num_outputs = 1 if kind == "binary" else len(class_names)
    arrays = {}
    if split_column:
        where = np.asarray([value.strip().lower() for value in columns[split_column]])
        unknown = sorted(set(where.tolist()) - set(SPLITS))
        if unknown:
            line = lines[where.tolist().index(unknown[0])]
            raise DataError(
                f"{path!r}: the split column holds {unknown[0]!r} on line {line}. "
                f"Expected train, val or test (or rename the column if it is a "
                f"feature)."
            )
        for split in SPLITS:
            if np.any(where == split):
                rows_of_split = where == split
                arrays[f"x_{split}"] = x[rows_of_split]
                arrays[f"y_{split}"] = y[rows_of_split]
        if "x_train" not in arrays:
            raise DataError(
                f"{path!r}: the split column has no 'train' rows. Mark the training "
                f"rows split=train (val and test rows are optional)."
            )
    else:
        arrays = {"x_train": x, "y_train": y}
    hint = (
        "Add rows, or mark some rows split=val and split=test."
        if split_column
        else "Add rows (about 5 per class for a 60/20/20 split) or a split column."
    )
    fill_splits(repr(path), kind, arrays, hint)
    return Task(name=name, kind=kind, num_outputs=num_outputs,
                class_names=class_names, **arrays)
