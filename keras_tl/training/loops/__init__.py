"""Training loops: how one epoch of `keras_tl.training.fit.fit` runs its steps.

`fit` owns what an epoch trains on (the seeded row order, the batches, the
callbacks, early stopping); a loop owns how the steps run:

* `StepLoop` (every backend): one `Model.train_on_batch` call per batch. Keras'
  JAX trainer copies every variable back into the model after each call, and
  its torch trainer pays its eager overhead per step; augmentation and a
  `keras.distribution` run here too.
* `keras_tl.training.loops.jax_epochs.JaxEpochLoop`: the compiled
  `Model.train_step` per batch, the state passed from step to step and written
  back into the model once per epoch, as `Model.fit` does on JAX.
* `keras_tl.training.loops.tensorflow_epochs.TensorFlowEpochLoop`: one
  `tf.function` runs a whole epoch (a graph loop over the batches, calling
  `Model.train_step`), as `Model.fit` does with `steps_per_execution`.
* `keras_tl.training.loops.torch_steps.TorchStepLoop`: Keras' torch training
  step with each layer's `call` run directly, without `Layer.__call__`.

Every loop runs the same `train_step` on the same batches in the same order, so
the trained weights agree to float tolerance
(`tests/test_training/test_loops.py`). The jax and tensorflow loops call Keras'
batch hooks once per epoch (as `Model.fit` does with `steps_per_execution` equal to the
steps of an epoch); `TerminateOnNaN` therefore stops at the end of the epoch.
"""

import keras

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
        A loop with `run_epoch(x, y, order, batch_size, callbacks)`.
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


def chunks(x, rows, batch_size, bytes_per_call=CALL_BYTES):
    """`(start, stop)` positions of the epoch's rows, in whole batches, that one
    compiled call takes: all of them unless their inputs exceed `bytes_per_call`;
    one batch at a time from inputs on disk (`ondisk.DiskArray`), which are read
    a batch at a time."""
    if isinstance(x, ondisk.DiskArray):
        per_call = batch_size
    else:
        row_bytes = max(1, int(x[:1].nbytes))
        per_call = max(1, bytes_per_call // (row_bytes * batch_size)) * batch_size
    for start in range(0, rows, per_call):
        yield start, min(rows, start + per_call)


def all_layers(model):
    """Every layer of `model`, those of nested models included."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from all_layers(layer)


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

    def run_epoch(self, x, y, order, batch_size, callbacks):
        """Trains one epoch over the rows of `order`; returns the mean loss per row."""
        total, seen = 0.0, 0
        for step, start in enumerate(range(0, len(order), batch_size)):
            rows = order[start:start + batch_size]
            callbacks.on_train_batch_begin(step)
            inputs = x[rows] if self.augment is None else self.augment(x[rows])
            logs = self.model.train_on_batch(inputs, y[rows], return_dict=True)
            loss = float(logs["loss"])
            total, seen = total + loss * len(rows), seen + len(rows)
            callbacks.on_train_batch_end(step, {"loss": loss})
            if self.model.stop_training:
                break
        return total / seen
