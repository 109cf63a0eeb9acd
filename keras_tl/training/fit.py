"""Fit, predict and evaluate one model: a seeded training loop with Keras' callbacks."""

import dataclasses
import math
import warnings

import keras
import numpy as np

from keras_tl.config.arms import OPTIMIZERS
from keras_tl.errors import ConfigError
from keras_tl.networks.seeding import made_of_keras, set_random_seed
from keras_tl.scores.task_metrics import compute_metrics
from keras_tl.training.augment import Augmenter
from keras_tl.training.distribution import fitting
from keras_tl.training.loops import EpochGroups, training_loop

PREDICT_BATCH_SIZE = 1024


class TrialFailure(Exception):
    """A trial could not finish (e.g. its loss became non-finite)."""


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """How one model is trained.

    Args:
        epochs: int. Maximum number of epochs.
        batch_size: int.
        optimizer: str. One of `OPTIMIZERS`.
        learning_rate: float.
        patience: int or None. Early-stopping patience on the val loss; the best
            val weights are restored. None trains for exactly `epochs`.
        verbose: int. Keras' own progress output for `fit` (0: none).
        callbacks: tuple of `keras.callbacks.Callback`. Extra callbacks for every
            `fit` of this training (e.g. a progress display).
        augment: tuple of `{name: options}`. The stage's resolved `augment` list,
            applied to each training batch (`keras_tl.training.augment`); empty:
            none.
    """

    epochs: int
    batch_size: int
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    patience: int = None
    verbose: int = 0
    callbacks: tuple = ()
    augment: tuple = ()


def make_optimizer(name, learning_rate):
    if name not in OPTIMIZERS:
        raise ConfigError(
            f"Unknown optimizer {name!r}. Expected one of {', '.join(OPTIMIZERS)}."
        )
    classes = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }
    return classes[name](learning_rate=learning_rate)


def loss_for(kind):
    if kind == "classification":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if kind == "binary":
        return keras.losses.BinaryCrossentropy(from_logits=True)
    return keras.losses.MeanSquaredError()


def compile_model(model, kind, optimizer, learning_rate):
    """Compiles `model` for a task kind with a fresh optimizer."""
    model.compile(optimizer=make_optimizer(optimizer, learning_rate), loss=loss_for(kind))


def _labels_for_fit(kind, y):
    return y.reshape(-1, 1).astype("float32") if kind == "binary" else y


def predict(model, x, batch_size=None):
    """Model outputs on `x` in inference mode, as a NumPy array (a list of them for
    a model with several outputs).

    Calls the model directly, batch by batch, instead of `Model.predict`, which
    traces and compiles a predict function for every new model.
    """
    batch_size = batch_size or PREDICT_BATCH_SIZE
    with warnings.catch_warnings():
        # Models loaded from files declare their one input as a list; a plain
        # array is what they mean, and Keras handles it, but warns on every call.
        warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
        batches = [
            model(x[start:start + batch_size], training=False)
            for start in range(0, len(x), batch_size)
        ]
    if isinstance(batches[0], (list, tuple)):
        return [
            np.concatenate([_numpy(batch[i]) for batch in batches])
            for i in range(len(batches[0]))
        ]
    return np.concatenate([_numpy(batch) for batch in batches])


def _numpy(tensor):
    """A tensor as a NumPy array; half-precision values (the hidden layers of a
    mixed-precision model) as float32, so features and metrics stay float32."""
    array = keras.ops.convert_to_numpy(tensor)
    if str(array.dtype) in ("float16", "bfloat16"):
        return array.astype("float32")
    return array


def evaluate(model, task, split):
    """Every metric of `task`'s kind on one split (`"train"`, `"val"`, `"test"`)."""
    x, y = task.split(split)
    return compute_metrics(task.kind, predict(model, x), y)


def fit(model, task, settings, seed):
    """Trains a compiled model on the task's train split; returns epochs run.

    A seeded loop over epochs with Keras' own callbacks (NaN stop, early
    stopping on the val loss with the best weights restored, the progress bar
    with `settings.verbose`, and `settings.callbacks`). Each epoch visits the
    rows in a permutation drawn from `numpy.random.default_rng(seed)`, in batches
    of `settings.batch_size` (the last one smaller); dropout draws from Keras'
    generators, seeded here too. The backend's training loop
    (`keras_tl.training.loops`) runs the epoch's steps without Keras' per-call
    overhead where it can (`train_on_batch` otherwise), several epochs in one
    call unless early stopping or the progress bar watches every epoch
    (`keras_tl.training.loops.EpochGroups`; the training is the same). With
    `settings.augment`, each training batch goes through the augmentation layers
    (seeded from `seed`) first; the val loss of early stopping reads the inputs
    as they are. `Model.fit` would give the same training but builds a data
    pipeline every epoch, which costs about 60 ms an epoch on tensorflow: more
    than a small model's epoch itself.

    Raises:
        TrialFailure: the training loss became NaN or infinite.
    """
    x = task.x_train
    y = _labels_for_fit(task.kind, task.y_train)
    callbacks = [keras.callbacks.TerminateOnNaN(), *settings.callbacks]
    if settings.patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=settings.patience, restore_best_weights=True
            )
        )
    batch_size = settings.batch_size
    steps = math.ceil(len(y) / batch_size)
    callback_list = keras.callbacks.CallbackList(
        callbacks, add_progbar=settings.verbose != 0, model=model,
        verbose=settings.verbose, epochs=settings.epochs, steps=steps,
    )
    set_random_seed(seed, keras_only=made_of_keras(model))
    order_generator = np.random.default_rng(seed)
    augment = Augmenter(settings.augment, seed) if settings.augment else None
    loop = training_loop(model, augment)
    model.stop_training = False
    losses = []
    # Early stopping reads the weights after every epoch, and Keras' progress
    # bar draws every epoch: then one epoch per loop call.
    groups = EpochGroups(settings.epochs, settings.patience is not None or settings.verbose != 0)
    with fitting((len(y), batch_size)):
        callback_list.on_train_begin()
        while groups.remaining and not model.stop_training:
            epoch = len(losses)
            callback_list.on_epoch_begin(epoch)
            orders = [order_generator.permutation(len(y)) for _ in range(groups.next())]
            group_losses = loop.run_epochs(x, y, orders, batch_size, callback_list)
            groups.done(len(group_losses))
            for offset, loss in enumerate(group_losses):
                if offset:  # The group's first epoch began before the call.
                    callback_list.on_epoch_begin(epoch + offset)
                logs = {"loss": loss}
                if settings.patience is not None:
                    logs["val_loss"] = _mean_loss(model, task.x_val, task.kind, task.y_val)
                losses.append(loss)
                callback_list.on_epoch_end(epoch + offset, logs)
        callback_list.on_train_end()
    for epoch, loss in enumerate(losses, start=1):
        if not math.isfinite(loss):
            raise TrialFailure(f"non-finite loss at epoch {epoch}")
    return len(losses)


def _mean_loss(model, x, kind, labels):
    """The compiled loss over `(x, labels)`, averaged per row, in inference mode."""
    y = _labels_for_fit(kind, labels)
    total = 0.0
    with fitting((len(y), PREDICT_BATCH_SIZE)):
        for start in range(0, len(y), PREDICT_BATCH_SIZE):
            rows = slice(start, start + PREDICT_BATCH_SIZE)
            logs = model.test_on_batch(x[rows], y[rows], return_dict=True)
            total += float(logs["loss"]) * len(y[rows])
    return total / len(y)
