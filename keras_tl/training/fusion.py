"""Fused (multi-task) models: one shared trunk, one head per task, joint training.

`build_fused` puts one `keras.layers.Dense` head per task on a network's shared
features; `fit_fused` trains every head at once with plain `model.fit` on a
`FusedDataset` (one batch per task per step, sample-weighted so that the step
loss is the weighted sum of per-task mean losses); `evaluate_fused` measures each
task on its own head. The maths of the loss weighting and the batch schedule:
docs/fusion.md.
"""

import math
import re

import keras
import numpy as np

from keras_tl.data import ondisk
from keras_tl.errors import ConfigError
from keras_tl.networks.transfer import transfer_weights
from keras_tl.networks.units import HEAD
from keras_tl.scores.task_metrics import compute_metrics
from keras_tl.training.distribution import fitting
from keras_tl.training.fit import PREDICT_BATCH_SIZE, TrialFailure, loss_for, make_optimizer

HEAD_PREFIX = "head_"


def output_key(task_name):
    """The output key of a task: its name with every non-alphanumeric run as `_`.

    Args:
        task_name: str. E.g. `"digits:0-4"`.

    Returns:
        A str usable as a Keras layer name, e.g. `"digits_0_4"`.

    Example:

    >>> keras_tl.training.fusion.output_key("digits:0-4")
    'digits_0_4'
    """
    key = re.sub(r"[^0-9A-Za-z_]+", "_", str(task_name)).strip("_")
    return key or "task"


def _key_of(head_name):
    return head_name[len(HEAD_PREFIX):]


def _check_tasks(tasks):
    tasks = list(tasks)
    if not tasks:
        raise ConfigError(
            "fused: expected at least one task. Received an empty list of tasks."
        )
    names = [task.name for task in tasks]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(
            f"fused: every task must appear once. Received {repeated} more than once."
        )
    keys = {}
    for name in names:
        other = keys.setdefault(output_key(name), name)
        if other != name:
            raise ConfigError(
                f"fused: tasks {other!r} and {name!r} both map to the head name "
                f"{HEAD_PREFIX + output_key(name)!r}. Rename one of them."
            )
    first = tasks[0]
    for task in tasks[1:]:
        if task.input_shape != first.input_shape:
            raise ConfigError(
                f"fused: all tasks must share one input shape. Task {first.name!r} "
                f"has samples of shape {first.input_shape} but task {task.name!r} "
                f"has {task.input_shape}. Fuse only tasks with the same input."
            )
    return tasks


def build_fused(network, tasks, seed, source=None):
    """Builds a multi-task model: one shared trunk and one head per task.

    The trunk is the network definition built with
    `network.build(input_shape, num_outputs=1, seed=seed)` and cut at the input of
    its `head`. Each task gets a `keras.layers.Dense(task.num_outputs)` head named
    `head_<key>` on the trunk's features (logits or regression values, like the
    single-task head), initialised from the same seed. The model's outputs are a
    dict `{key: head output}`, where `key` is `output_key(task.name)`.

    Args:
        network: `keras_tl.Network`. The definition the trunk comes from.
        tasks: list of `keras_tl.tasks.Task`. They must share one input shape.
        seed: int. Seeds the trunk and head initialisation.
        source: keras.Model or None. A trained model of the same definition; its
            trunk weights are copied into the fused trunk by layer name.

    Returns:
        `(model, head_names, report)`: the functional `keras.Model`, a dict
        `{task name: head layer name}`, and the `TransferReport` of the copy from
        `source` (None without a source).

    Raises:
        ConfigError: no tasks, repeated task names, or tasks whose input shapes
            differ.

    Example:

    >>> network = keras_tl.Network("small_cnn")
    >>> tasks = [keras_tl.load_task("digits:0-4"), keras_tl.load_task("digits:5-9")]
    >>> model, head_names, _ = keras_tl.training.fusion.build_fused(network, tasks, seed=0)
    >>> head_names["digits:0-4"]
    'head_digits_0_4'
    """
    tasks = _check_tasks(tasks)
    base = network.build(tasks[0].input_shape, num_outputs=1, seed=seed)
    features = base.get_layer(HEAD).input
    head_names, outputs = {}, {}
    for task in tasks:
        key = output_key(task.name)
        head_names[task.name] = HEAD_PREFIX + key
        outputs[key] = keras.layers.Dense(task.num_outputs, name=HEAD_PREFIX + key)(
            features
        )
    inputs = base.inputs[0] if len(base.inputs) == 1 else base.inputs
    model = keras.Model(inputs, outputs, name=f"{base.name}_fused")
    report = None
    if source is not None:
        heads = set(head_names.values())
        trunk = [
            layer.name
            for layer in model.layers
            if layer.weights and layer.name not in heads
        ]
        report = transfer_weights(source, model, layers=trunk, match="name")
    return model, head_names, report


def _check_heads(model, tasks, head_names):
    tasks = list(tasks)
    missing = [task.name for task in tasks if task.name not in head_names]
    if missing:
        raise ConfigError(
            f"fused: no head for task(s) {missing}. The model has heads for "
            f"{sorted(head_names)}; pass the head_names that build_fused returned."
        )
    layers = {layer.name for layer in model.layers}
    absent = [
        head_names[task.name]
        for task in tasks
        if head_names[task.name] not in layers
    ]
    if absent:
        raise ConfigError(
            f"fused: head layer(s) {absent} are not in the model {model.name!r}. Pass "
            f"the model and head_names that build_fused returned together."
        )
    return tasks


def _resolve_loss_weights(tasks, loss_weights):
    if loss_weights is None:
        return [1.0] * len(tasks)
    if isinstance(loss_weights, dict):
        unknown = sorted(set(loss_weights) - {task.name for task in tasks})
        if unknown:
            raise ConfigError(
                f"fused: loss_weights names unknown task(s) {unknown}. Expected keys "
                f"among {[task.name for task in tasks]}."
            )
        weights = [loss_weights.get(task.name, 1.0) for task in tasks]
    else:
        weights = list(loss_weights)
        if len(weights) != len(tasks):
            raise ConfigError(
                f"fused: loss_weights must have one weight per task ({len(tasks)}: "
                f"{[task.name for task in tasks]}). Received {len(weights)}: "
                f"{weights}."
            )
    try:
        weights = [float(weight) for weight in weights]
    except (TypeError, ValueError):
        raise ConfigError(
            f"fused: loss_weights must be numbers. Received: {loss_weights!r}."
        ) from None
    if not all(math.isfinite(w) and w >= 0 for w in weights) or not any(weights):
        raise ConfigError(
            f"fused: loss_weights must be finite, >= 0 and not all 0. Received: "
            f"{weights}."
        )
    return weights


def _labels(kind, y):
    if kind == "binary":
        return np.asarray(y).reshape(-1, 1).astype("float32")
    if kind == "regression":
        return np.asarray(y, dtype="float32").reshape(len(y), -1)
    return np.asarray(y).reshape(-1).astype("int64")


def _joint_batch(parts, keys, weights):
    """Concatenates per-task `(x, y)` parts into `(x, targets, sample_weights)`.

    Head `keys[i]` gets the labels of part `i` on its rows, zeros elsewhere, and
    the sample weight `weights[i] * B / n_i` on its rows, 0 elsewhere.
    """
    x = np.concatenate([x for x, _ in parts], axis=0)
    return (x, *_joint_targets([y for _, y in parts], keys, weights))


def _joint_targets(labels_by_part, keys, weights):
    """The `(targets, sample_weights)` of `_joint_batch` for these parts' labels."""
    sizes = [len(y) for y in labels_by_part]
    total = sum(sizes)
    targets, sample_weights = {}, {}
    start = 0
    for y, key, weight, size in zip(labels_by_part, keys, weights, sizes):
        labels = np.zeros((total,) + y.shape[1:], dtype=y.dtype)
        labels[start:start + size] = y
        mask = np.zeros(total, dtype="float32")
        mask[start:start + size] = weight * total / size
        targets[key], sample_weights[key] = labels, mask
        start += size
    return targets, sample_weights


class FusedDataset(keras.utils.PyDataset):
    """Joint batches for `model.fit`: one batch per task per step, concatenated.

    Step `i` yields `(x, targets, sample_weights)`: the rows of every task, one
    batch each, stacked in task order; `targets` and `sample_weights` are dicts
    keyed like the fused model's outputs, with weight `w_t * B / n_t` on task `t`'s
    own rows and 0 on the others (docs/fusion.md: why this makes the step loss
    exactly `sum_t w_t * mean_t`). An epoch is
    `ceil(max_t N_t / batch_size)` steps; tasks that need fewer batches are cycled.
    The schedule for all `epochs` is drawn at construction from
    `numpy.random.default_rng(seed)`, so `len(dataset) == epochs *
    steps_per_epoch` and a batch depends only on its index. Train it with
    `model.fit(dataset, epochs=epochs, steps_per_epoch=dataset.steps_per_epoch,
    shuffle=False)`.

    Args:
        tasks: list of `Task`. Their train splits are the data.
        keys: list of str. The model's output key for each task, in order.
        batch_size: int. Rows drawn from each task per step.
        epochs: int. Epochs to schedule.
        seed: int. Seeds every batch order.
        loss_weights: list of float or None. One weight per task (default 1).

    Example:

    >>> dataset = keras_tl.training.fusion.FusedDataset(
    ...     tasks, ["digits_0_4", "digits_5_9"], batch_size=32, epochs=2, seed=0
    ... )
    >>> x, targets, sample_weights = dataset[0]
    """

    def __init__(self, tasks, keys, batch_size, epochs, seed, loss_weights=None):
        super().__init__()
        self.tasks = list(tasks)
        self.keys = list(keys)
        self.loss_weights = _resolve_loss_weights(self.tasks, loss_weights)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(
                f"fused: batch_size must be a positive integer. Received: "
                f"{batch_size!r}."
            )
        empty = [task.name for task in self.tasks if len(task.y_train) == 0]
        if empty:
            raise ConfigError(
                f"fused: task(s) {empty} have no training samples. Give every fused "
                f"task at least one training sample."
            )
        if not isinstance(epochs, int) or epochs < 1:
            raise ConfigError(
                f"fused: epochs must be a positive integer. Received: {epochs!r}."
            )
        self.batch_size = batch_size
        self.epochs = epochs
        self._x = [task.x_train for task in self.tasks]
        self._y = [_labels(task.kind, task.y_train) for task in self.tasks]
        sizes = [len(y) for y in self._y]
        self.steps_per_epoch = max(math.ceil(size / batch_size) for size in sizes)
        self._schedule = self._draw_schedule(sizes, np.random.default_rng(seed))

    def _draw_schedule(self, sizes, rng):
        """Row indices per step and task: `schedule[step][task]`, for all epochs."""
        streams = [np.empty(0, dtype="int64") for _ in sizes]
        schedule = []
        for _ in range(self.epochs):
            epoch = [[] for _ in range(self.steps_per_epoch)]
            for index, size in enumerate(sizes):
                if math.ceil(size / self.batch_size) == self.steps_per_epoch:
                    # A largest task: each row once per epoch, last batch short.
                    order = rng.permutation(size)
                    for step in range(self.steps_per_epoch):
                        epoch[step].append(
                            order[step * self.batch_size:(step + 1) * self.batch_size]
                        )
                    continue
                # A smaller task: cycle through fresh permutations across epochs.
                draw = min(self.batch_size, size)
                for step in range(self.steps_per_epoch):
                    while len(streams[index]) < draw:
                        streams[index] = np.concatenate(
                            [streams[index], rng.permutation(size)]
                        )
                    epoch[step].append(streams[index][:draw])
                    streams[index] = streams[index][draw:]
            schedule.extend(epoch)
        return schedule

    def __len__(self):
        return len(self._schedule)

    def rows(self, index):
        """The training rows of each task in step `index`: `{task name: indices}`."""
        return {
            task.name: rows for task, rows in zip(self.tasks, self._schedule[index])
        }

    def __getitem__(self, index):
        if not 0 <= index < len(self._schedule):
            raise IndexError(f"step {index} out of range (0..{len(self) - 1})")
        parts = [
            (x[rows], y[rows])
            for x, y, rows in zip(self._x, self._y, self._schedule[index])
        ]
        return _joint_batch(parts, self.keys, self.loss_weights)


def _validation_data(tasks, keys, weights, batch_size):
    parts = [(task.x_val, _labels(task.kind, task.y_val)) for task in tasks]
    if any(isinstance(x, ondisk.DiskArray) for x, _ in parts):
        return JointValidation(parts, keys, weights, batch_size)
    return _joint_batch(parts, keys, weights)


class JointValidation(keras.utils.PyDataset):
    """`_joint_batch` of the fused tasks' val splits, `batch_size` rows a step:
    the batches `model.fit` would slice from the concatenated arrays, read a
    batch at a time (for splits on disk)."""

    def __init__(self, parts, keys, weights, batch_size):
        super().__init__()
        self._xs = [x for x, _ in parts]
        self._targets, self._weights = _joint_targets([y for _, y in parts], keys, weights)
        self._starts = np.cumsum([0] + [len(x) for x in self._xs])
        self.batch_size = batch_size

    def __len__(self):
        return math.ceil(self._starts[-1] / self.batch_size)

    def __getitem__(self, index):
        start = index * self.batch_size
        stop = min(start + self.batch_size, self._starts[-1])
        pieces = [
            x[max(start, first) - first:min(stop, first + len(x)) - first]
            for x, first in zip(self._xs, self._starts)
            if max(start, first) < min(stop, first + len(x))
        ]

        def rows(by_key):
            return {key: values[start:stop] for key, values in by_key.items()}

        return np.concatenate(pieces), rows(self._targets), rows(self._weights)


def fit_fused(model, tasks, head_names, settings, seed, loss_weights=None):
    """Trains a fused model jointly on every task's train split; returns epochs run.

    The model is compiled here with a fresh optimizer (`settings.optimizer`,
    `settings.learning_rate`) and one loss per head (`loss_for(task.kind)`). Each
    step draws one batch of `settings.batch_size` rows per task (cycling the
    smaller tasks) and minimises `sum_t loss_weights[t] * mean loss of task t over
    its own rows`. With `settings.patience`, training stops early on the same
    weighted loss over the tasks' val splits and restores the best weights.

    Args:
        model: keras.Model. From `build_fused`; modified in place.
        tasks: list of `Task`. The fused tasks (e.g. subsampled train splits).
        head_names: dict. `{task name: head layer name}` from `build_fused`.
        settings: `keras_tl.training.FitSettings`.
        seed: int. Seeds the batch order (inside the dataset) and any dropout.
        loss_weights: list of float (one per task, in order), dict
            `{task name: float}` (missing tasks get 1), or None (all 1).

    Returns:
        The number of epochs run.

    Raises:
        TrialFailure: the training loss became NaN or infinite.
        ConfigError: a task has no head, or the loss weights are invalid.

    Example:

    >>> settings = keras_tl.training.FitSettings(epochs=3, batch_size=32)
    >>> epochs = keras_tl.training.fusion.fit_fused(model, tasks, head_names, settings, seed=0)
    """
    tasks = _check_heads(model, tasks, head_names)
    keys = [_key_of(head_names[task.name]) for task in tasks]
    dataset = FusedDataset(
        tasks, keys, settings.batch_size, settings.epochs, seed, loss_weights
    )
    model.compile(
        optimizer=make_optimizer(settings.optimizer, settings.learning_rate),
        loss={key: loss_for(task.kind) for key, task in zip(keys, tasks)},
    )
    callbacks = [keras.callbacks.TerminateOnNaN(), *settings.callbacks]
    validation_data = None
    if settings.patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss",
                patience=settings.patience,
                restore_best_weights=True,
            )
        )
        validation_data = _validation_data(
            tasks, keys, dataset.loss_weights, settings.batch_size
        )
    step_rows = {sum(map(len, dataset.rows(step).values())) for step in range(len(dataset))}
    datasets = [(rows, rows) for rows in step_rows]  # Each step is one batch.
    if validation_data is not None:
        datasets.append((sum(len(task.y_val) for task in tasks), settings.batch_size))
    keras.utils.set_random_seed(seed)
    with fitting(*datasets):
        history = model.fit(
            dataset,
            epochs=settings.epochs,
            steps_per_epoch=dataset.steps_per_epoch,
            shuffle=False,
            validation_data=validation_data,
            validation_batch_size=settings.batch_size,
            callbacks=callbacks,
            verbose=settings.verbose,
        )
    losses = history.history.get("loss", [])
    for epoch, loss in enumerate(losses, start=1):
        if not math.isfinite(loss):
            raise TrialFailure(f"non-finite loss at epoch {epoch}")
    return len(losses)


def evaluate_fused(model, tasks, head_names, split):
    """Every metric of each task, from its own head, on its own split.

    Args:
        model: keras.Model. From `build_fused`.
        tasks: list of `Task`.
        head_names: dict. `{task name: head layer name}` from `build_fused`.
        split: str. `"train"`, `"val"` or `"test"`.

    Returns:
        A dict `{task name: {metric: value}}` from
        `keras_tl.metrics.compute_metrics`.

    Example:

    >>> keras_tl.training.fusion.evaluate_fused(model, tasks, head_names, "test")
    {'digits:0-4': {'accuracy': ..., 'loss': ...}, 'digits:5-9': {...}}
    """
    tasks = _check_heads(model, tasks, head_names)
    results = {}
    for task in tasks:
        key = _key_of(head_names[task.name])
        x, y = task.split(split)
        outputs = [
            keras.ops.convert_to_numpy(
                model(x[start:start + PREDICT_BATCH_SIZE], training=False)[key]
            )
            for start in range(0, len(x), PREDICT_BATCH_SIZE)
        ]
        results[task.name] = compute_metrics(task.kind, np.concatenate(outputs), y)
    return results
