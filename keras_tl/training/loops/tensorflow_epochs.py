"""A whole epoch in one `tf.function` call.

`Model.train_on_batch` on TensorFlow pays a function dispatch, an argument
trace lookup and a metrics reset per step; `Model.fit` with
`steps_per_execution` runs many steps in one graph call instead. This loop does
that on keras-tl's own batches: the model's public `train_step(data)` in a
graph loop over slices of the epoch's rows, compiled with XLA when the model is
(`jit_compile`), traced once per model (`reduce_retracing` generalises the
shapes). Inputs beyond 64 MB, or read from disk, go in several calls
(`keras_tl.training.loops.chunks`).
"""

from keras_tl.training.loops import build_for_training, chunks


class TensorFlowEpochLoop:
    """Trains epochs of one compiled model, one graph call per epoch.

    `keras_tl.training.loops.training_loop` keeps one per model, optimizer and
    trainable variables, so a pooled model traces its function once.
    """

    def __init__(self, model):
        import tensorflow as tf

        self.model = model

        def run(x, y, batch_size):
            for start in tf.range(0, tf.shape(x)[0], batch_size):
                model.train_step((x[start:start + batch_size], y[start:start + batch_size]))

        self._tf = tf
        self._run = tf.function(run, jit_compile=bool(model.jit_compile), reduce_retracing=True)

    def run_epoch(self, x, y, order, batch_size, callbacks):
        """Trains one epoch over the rows of `order`; returns the mean loss per row."""
        model = self.model
        build_for_training(model, x[order[:batch_size]], y[order[:batch_size]])
        model.reset_metrics()
        callbacks.on_train_batch_begin(0)
        for start, stop in chunks(x, len(order), batch_size):
            rows = order[start:stop]
            self._run(self._tf.constant(x[rows]), self._tf.constant(y[rows]),
                      self._tf.constant(batch_size))
        # The loss tracker's mean since `reset_metrics`: per row, over the epoch.
        loss = float(model.get_metrics_result()["loss"])
        steps = -(-len(order) // batch_size)
        callbacks.on_train_batch_end(steps - 1, {"loss": loss})
        return loss
