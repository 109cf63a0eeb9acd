"""Training loops: how the epochs of `keras_tl.training.fit.fit` run their steps.

`fit` owns what each epoch trains on (the seeded row order, the callbacks,
early stopping) and how many epochs one loop call runs (`EpochGroups`); a loop
owns how the steps run, through `run_epochs(x, y, orders, batch_size,
callbacks)`, which trains one epoch per row order and returns each epoch's mean
loss per row:

* `StepLoop` (every backend): one `Model.train_on_batch` call per batch. Keras'
  JAX trainer copies every variable back into the model after each call, and
  its torch trainer pays its eager overhead per step; augmentation and a
  `keras.distribution` run here too.
* `keras_tl.training.loops.jax_epochs.JaxEpochLoop`: the compiled
  `Model.train_step` per batch, the state passed from step to step and written
  back into the model once per call, as `Model.fit` does on JAX once per epoch.
* `keras_tl.training.loops.tensorflow_epochs.TensorFlowEpochLoop`: one
  `tf.function` runs all the call's epochs (a graph loop over the batches,
  calling `Model.train_step`), as `Model.fit` does with `steps_per_execution`.
* `keras_tl.training.loops.torch_steps.TorchStepLoop`: Keras' torch training
  step with each layer's `call` run directly, without `Layer.__call__`, and
  common layers, keras-tl's losses and Adam as the torch functions Keras would
  call (`keras_tl.training.loops.torch_native`).

Every loop runs the same `train_step` on the same batches in the same order, so
the trained weights agree to float tolerance, and do not depend on how the
epochs are grouped into calls (`tests/test_training/test_loops.py`). The jax
and tensorflow loops call Keras' batch hooks once per call (as `Model.fit`
does once per `steps_per_execution` steps); `TerminateOnNaN` therefore stops
at the end of the call.
"""

import time

import keras
import numpy as np

from keras_tl.data import ondisk

# Inputs one compiled call of an epoch loop takes at most; an epoch over more
# runs in several calls (the batches of a call are copied to the device at once).
CALL_BYTES = 64 * 2**20


def training_loop(model, augment=None):
    """The loop that trains `model` (compiled) on this backend.

    Args:
        model: keras.Model. Compiled.
        augment: callable or None. Applied to each training batch's inputs
            (NumPy in, NumPy out); forces the step loop.

    Returns:
        A loop with `run_epochs(x, y, orders, batch_size, callbacks)`.
    """
    if augment is not None or keras.distribution.distribution() is not None:
        return StepLoop(model, augment)
    # Kept on the model, for as long as its optimizer and the variables it
    # trains stay the same (a new `compile` or freeze needs a new loop): a
    # pooled model compiles its step once. On the model, not in a registry, so
    # the loop goes when the model goes.
    made_for = (model.optimizer, tuple(model.trainable_variables))
    kept = model.__dict__.get(_KEPT)
    if kept is None or not _same(kept[0], made_for):
        kept = (made_for, _backend_loop(model))
        object.__setattr__(model, _KEPT, kept)
    return kept[1]


_KEPT = "_keras_tl_training_loop"


def _same(first, second):
    (optimizer, variables), (other_optimizer, other_variables) = first, second
    return optimizer is other_optimizer and len(variables) == len(other_variables) and all(
        a is b for a, b in zip(variables, other_variables)
    )


def _backend_loop(model):
    backend = keras.config.backend()
    if backend == "jax":
        from keras_tl.training.loops.jax_epochs import JaxEpochLoop

        return JaxEpochLoop(model)
    if backend == "tensorflow":
        from keras_tl.training.loops.tensorflow_epochs import TensorFlowEpochLoop

        return TensorFlowEpochLoop(model)
    if backend == "torch":
        from keras_tl.training.loops.torch_steps import torch_loop

        return torch_loop(model)
    return StepLoop(model)


def epoch_batches(orders, batch_size):
    """`(epoch, rows)` of every batch of the epochs, in training order: each
    epoch's row order cut into batches of `batch_size`, its last one smaller."""
    for epoch, order in enumerate(orders):
        for start in range(0, len(order), batch_size):
            yield epoch, order[start:start + batch_size]


def calls(x, batches, bytes_per_call=CALL_BYTES):
    """`batches` (a list of `(epoch, rows)`) split into the lists one compiled
    call takes: all of them unless their inputs exceed `bytes_per_call`; one
    batch a call from inputs on disk (`ondisk.DiskArray`), which are read a
    batch at a time."""
    if isinstance(x, ondisk.DiskArray):
        yield from ([batch] for batch in batches)
        return
    row_bytes = max(1, int(x[:1].nbytes))
    call, rows = [], 0
    for batch in batches:
        if call and (rows + len(batch[1])) * row_bytes > bytes_per_call:
            yield call
            call, rows = [], 0
        call.append(batch)
        rows += len(batch[1])
    if call:
        yield call


def epoch_means(epochs, step_losses, batches):
    """The mean loss per row of each of `epochs` epochs, from each step's mean
    loss (`step_losses`, a float array) and its `(epoch, rows)` batch."""
    totals = np.zeros(epochs)
    counts = np.zeros(epochs)
    for loss, (epoch, rows) in zip(np.asarray(step_losses, dtype="float64"), batches):
        totals[epoch] += loss * len(rows)
        counts[epoch] += len(rows)
    ran = counts > 0
    return (totals[ran] / counts[ran]).tolist()


def run_steps(model, train_step, orders, batch_size, callbacks):
    """Runs `train_step(rows) -> loss` on every batch of the epochs, with Keras'
    batch hooks around each step (the batch's index within its epoch), until
    the last batch or until a callback stops the training; returns the steps'
    losses and their `(epoch, rows)` batches (for `epoch_means`)."""
    losses, batches = [], []
    for epoch, order in enumerate(orders):
        for step, start in enumerate(range(0, len(order), batch_size)):
            rows = order[start:start + batch_size]
            callbacks.on_train_batch_begin(step)
            loss = train_step(rows)
            losses.append(loss)
            batches.append((epoch, rows))
            callbacks.on_train_batch_end(step, {"loss": loss})
            if model.stop_training:
                return losses, batches
    return losses, batches


class EpochGroups:
    """How many epochs `fit` asks the loop to run in one call.

    One per call while something watches every epoch (early stopping on the
    val loss, Keras' progress bar). Otherwise the first call runs one epoch
    (it also compiles), and each later one as many as took about
    `seconds` by the time per epoch of the call before: a loop call then costs
    its overhead (2.6 ms on tensorflow, 0.6 ms on jax for a 3-step epoch) once
    per group, while progress callbacks still hear of epochs about every
    `seconds`. The grouping never changes the training, only how it is split
    into calls.

    Args:
        epochs: int. Epochs of the fit.
        per_epoch: bool. One epoch per call.
        seconds: float. The wall time a call aims at.
    """

    def __init__(self, epochs, per_epoch, seconds=1.0):
        self.remaining = epochs
        self.per_epoch = per_epoch
        self.seconds = seconds
        self._next = 1
        self._started = None

    def next(self):
        """The epochs of the next call; starts its clock."""
        self._started = time.perf_counter()
        return min(self._next, self.remaining)

    def done(self, epochs):
        """Records that the call ran `epochs` epochs."""
        elapsed = time.perf_counter() - self._started
        self.remaining -= epochs
        if not self.per_epoch and epochs:
            self._next = max(1, int(self.seconds / max(elapsed / epochs, 1e-6)))


def build_for_training(model, x, y):
    """Builds what a compiled `model`'s first training step would create (its
    optimizer variables, compiled loss and metrics), from one batch's structure.

    `Model.fit` and `Model.train_on_batch` do this through the trainer's
    `_symbolic_build`; a loop that calls `train_step` inside its own compiled
    function must do it first, since a compiled function cannot create
    variables. `tests/test_training/test_loops.py` fails if a Keras upgrade
    removes or renames it.
    """
    model._symbolic_build(data_batch=(x, y))


class StepLoop:
    """One `train_on_batch` call per batch, with Keras' batch hooks per step.

    Args:
        model: keras.Model. Compiled.
        augment: callable or None. Applied to each batch's inputs first.
    """

    def __init__(self, model, augment=None):
        self.model = model
        self.augment = augment

    def run_epochs(self, x, y, orders, batch_size, callbacks):
        """Trains one epoch per row order; returns each epoch's mean loss per row
        (fewer when a callback stops the training)."""

        def train_step(rows):
            inputs = x[rows] if self.augment is None else self.augment(x[rows])
            logs = self.model.train_on_batch(inputs, y[rows], return_dict=True)
            return float(logs["loss"])

        losses, batches = run_steps(self.model, train_step, orders, batch_size, callbacks)
        return epoch_means(len(orders), losses, batches)
