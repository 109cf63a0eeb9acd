"""Whole epochs in one `tf.function` call.

`Model.train_on_batch` on TensorFlow pays a function dispatch, an argument
trace lookup and a metrics reset per step, and even a call per epoch costs
2.6 ms (a 3-step epoch of `small_cnn` on 2 CPU cores takes 5.3 ms a call, 2.6
ms inside a longer one); `Model.fit` with `steps_per_execution` runs many steps
in one graph call instead. This loop does that on keras-tl's own batches: the
model's public `train_step(data)` in a graph loop over the batches of all the
call's epochs (each batch a slice given by its start and stop), compiled with
XLA when the model is (`jit_compile`), traced once per model for any number of
rows (a trace per new shape cost more than grouping saved: 0.3-0.4 s each).
Inputs beyond 64 MB, or read from disk, go in several calls
(`keras_tl.training.loops.calls`).
"""

import numpy as np

from keras_tl.training.loops import build_for_training, calls, epoch_batches, epoch_means


class TensorFlowEpochLoop:
    """Trains epochs of one compiled model, one graph call per group of epochs.

    `keras_tl.training.loops.training_loop` keeps one per model, optimizer and
    trainable variables, so a pooled model traces its function once.
    """

    def __init__(self, model):
        import tensorflow as tf

        self.model = model
        self._tf = tf
        self._functions = {}  # Input and label specs -> the traced function.

    def _function(self, x, y):
        """The graph function for inputs and labels like `x` and `y`, traced once
        for any number of rows, so that calls of one epoch and of many share it
        (a trace costs 0.3-0.4 s)."""
        tf = self._tf
        specs = (
            tf.TensorSpec((None, *x.shape[1:]), tf.as_dtype(x.dtype)),
            tf.TensorSpec((None, *y.shape[1:]), tf.as_dtype(y.dtype)),
            tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((None,), tf.int32),
        )
        if specs not in self._functions:
            model = self.model

            def run(x, y, starts, stops):
                steps = tf.shape(starts)[0]
                losses = tf.TensorArray(tf.float32, size=steps)
                for step in tf.range(steps):
                    # Reset before each step: the loss tracker then holds this batch's loss.
                    model.reset_metrics()
                    rows = slice(starts[step], stops[step])
                    logs = model.train_step((x[rows], y[rows]))
                    losses = losses.write(step, tf.cast(logs["loss"], tf.float32))
                return losses.stack()

            self._functions[specs] = tf.function(
                run, input_signature=specs, jit_compile=bool(model.jit_compile)
            )
        return self._functions[specs]

    def run_epochs(self, x, y, orders, batch_size, callbacks):
        """Trains one epoch per row order; returns each epoch's mean loss per row."""
        tf = self._tf
        model = self.model
        build_for_training(model, x[orders[0][:batch_size]], y[orders[0][:batch_size]])
        batches = list(epoch_batches(orders, batch_size))
        callbacks.on_train_batch_begin(0)
        step_losses = []
        for call in calls(x, batches):
            rows = np.concatenate([rows for _, rows in call])
            sizes = np.array([len(rows) for _, rows in call], dtype="int32")
            stops = np.cumsum(sizes, dtype="int32")
            starts = stops - sizes
            inputs, labels = x[rows], y[rows]
            run = self._function(inputs, labels)
            step_losses.append(run(tf.constant(inputs), tf.constant(labels),
                                   tf.constant(starts), tf.constant(stops)).numpy())
        epoch_losses = epoch_means(len(orders), np.concatenate(step_losses), batches)
        callbacks.on_train_batch_end(len(batches) - 1, {"loss": epoch_losses[-1]})
        return epoch_losses
