"""JAX epochs with the model's variables synced once per call.

Keras' JAX trainer copies every variable back into the model after each
`train_on_batch` (2.1 ms a step for `small_cnn` on 2 CPU cores, against 0.9 ms
with this loop); `Model.fit` threads the state through its compiled step instead and
writes it back once per epoch. This loop does what `Model.fit` does, on
keras-tl's own batches, for all the epochs of a call: the model's public
`train_step(state, data)` (the documented way to customise `fit` on JAX),
compiled once per model, called once per batch with the state of the previous
call. (A whole epoch under `jax.lax.scan` was slower on CPU: 3.0 ms a step.)

An epoch's last, smaller batch would compile the step a second time (0.5 s for
`small_cnn`). Unless the model has a BatchNormalization layer in training mode
(whose statistics would see the padding), the last batch is padded to the batch
size with rows of weight 0 and its real rows weighted `batch_size / rows`:
Keras' loss divides by the rows of the batch, so the loss and its gradient are
the mean over the real rows, as without padding (to float rounding; dropout then
draws its masks for the padded shape, a different draw of the same
distribution).
"""

import keras
import numpy as np

from keras_tl.networks.units import all_layers
from keras_tl.training.loops import build_for_training, epoch_batches, epoch_means


def _trained_state(model):
    # The first three parts of the JAX trainer's `train_step` state.
    return (model.trainable_variables, model.non_trainable_variables,
            model.optimizer.variables)


def _batch_dependent(model):
    """Whether some layer's training output depends on the other rows of its
    batch (BatchNormalization in training mode), so padding would change it."""
    return any(
        isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
        for layer in all_layers(model)
    )


class JaxEpochLoop:
    """Trains epochs of one compiled model, its state kept out of the model
    between the steps of an epoch.

    `keras_tl.training.loops.training_loop` keeps one per model, optimizer and
    trainable variables, so a pooled model compiles its step once.
    """

    def __init__(self, model):
        import jax

        self.model = model
        self.pad = not _batch_dependent(model)

        def step(state, metrics, x, y, weights):
            # Fresh metrics each step, as `train_on_batch` resets them: the
            # loss in the logs is this batch's.
            logs, (*state, _) = model.train_step((*state, metrics), (x, y, weights))
            return tuple(state), logs["loss"]

        self._step = jax.jit(step, donate_argnums=0)

    def _batch(self, x, y, rows, batch_size):
        """`(inputs, labels, weights)` of one batch."""
        if len(rows) == batch_size or not self.pad:
            return x[rows], y[rows], np.ones(len(rows), dtype="float32")
        padded = np.resize(rows, batch_size)  # The real rows, repeated.
        weights = np.zeros(batch_size, dtype="float32")
        weights[:len(rows)] = batch_size / len(rows)
        return x[padded], y[padded], weights

    def run_epochs(self, x, y, orders, batch_size, callbacks):
        """Trains one epoch per row order; returns each epoch's mean loss per row."""
        import jax

        model = self.model
        build_for_training(model, x[orders[0][:batch_size]], y[orders[0][:batch_size]])
        model.reset_metrics()
        metrics = [variable.value for variable in model.metrics_variables]
        state = tuple([variable.value for variable in group]
                      for group in _trained_state(model))
        batches = list(epoch_batches(orders, batch_size))
        callbacks.on_train_batch_begin(0)
        losses = []
        try:
            for _, rows in batches:
                state, loss = self._step(state, metrics, *self._batch(x, y, rows, batch_size))
                losses.append(loss)
        finally:
            # The state's buffers replace the model's (donated) ones, also when
            # the call is interrupted.
            for group, values in zip(_trained_state(model), state):
                for variable, value in zip(group, values):
                    variable.assign(value)
        epoch_losses = epoch_means(len(orders), jax.device_get(losses), batches)
        callbacks.on_train_batch_end(len(losses) - 1, {"loss": epoch_losses[-1]})
        return epoch_losses
