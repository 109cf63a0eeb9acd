"""Torch steps without Keras' per-layer call overhead.

On torch every step runs eagerly, and `Model.train_on_batch` goes through
`Layer.__call__` for every layer (input conversion, autocast, masks, call
context): 1.7 ms of a 4.0 ms `small_cnn` step on 2 CPU cores, where the
layers' own `call` methods take 0.7 ms. This loop runs the same training step
as Keras' torch `train_step` (forward in training mode, `Model.compute_loss`,
`backward`, `optimizer.apply`) but walks the functional graph calling each
layer's `call` directly, through the graph runner that Keras' own functional
`call` uses (`Function._run_through_graph`, internal: see
`tests/test_training/test_loops.py`). The layers, loss and Adam update that
`keras_tl.training.loops.torch_native` covers run as the torch functions
Keras' torch backend would call, without `keras.ops` (same results, bit for
bit): the step then takes 1.9-2.0 ms instead of 2.7-3.1 ms.

It applies to functional models under the float32 dtype policy whose layers
add no activity-regularisation loss; on its first batch it checks that its
forward pass gives `model(x)`'s outputs, and any model it does not apply to
trains with `keras_tl.training.loops.StepLoop`.
"""

import inspect

import keras
import numpy as np

from keras_tl.networks.units import all_layers
from keras_tl.training.loops import StepLoop, build_for_training, epoch_means, run_steps
from keras_tl.training.loops.torch_native import native_adam, native_call, native_loss


# Operation class -> whether its `call` takes `training`.
_TAKES_TRAINING = {}


def _takes_training(operation):
    kind = type(operation)
    if kind not in _TAKES_TRAINING:
        try:
            _TAKES_TRAINING[kind] = "training" in inspect.signature(operation.call).parameters
        except (TypeError, ValueError):
            _TAKES_TRAINING[kind] = False
    return _TAKES_TRAINING[kind]


def _is_functional(model):
    return hasattr(model, "_run_through_graph") and hasattr(model, "_nodes_by_depth")


class DirectForward:
    """`model(inputs, training=training)` of a functional model without
    `Layer.__call__`: each layer covered by `torch_native.native_call` runs its
    torch version, any other its own `call`; nested functional models likewise.

    Args:
        model: a functional `keras.Model`.
    """

    def __init__(self, model):
        self.model = model
        self._calls = {}  # (id(operation), training) -> function of the node's arguments.

    def __call__(self, inputs, training):
        return self._run(self.model, inputs, training)

    def _run(self, model, inputs, training):
        outputs = model._run_through_graph(
            inputs, operation_fn=lambda operation: self._call_of(operation, training)
        )
        return outputs[0] if isinstance(outputs, (list, tuple)) and len(outputs) == 1 else outputs

    def _call_of(self, operation, training):
        key = (id(operation), training)
        if key not in self._calls:
            self._calls[key] = self._make_call(operation, training)
        return self._calls[key]

    def _make_call(self, operation, training):
        if _is_functional(operation):
            return lambda *args, **kwargs: self._run(operation, args[0], training)
        native = native_call(operation)
        if native is not None:
            return native
        if _takes_training(operation):
            return lambda *args, **kwargs: operation.call(*args, **{**kwargs, "training": training})
        return operation.call


def _applies(model):
    """Whether the direct forward can stand in for `model.__call__` (checked
    again against `model(x)` on the first batch)."""
    if not _is_functional(model) or keras.config.dtype_policy().name != "float32":
        return False
    return all(
        layer.dtype_policy.name == "float32"
        and getattr(layer, "activity_regularizer", None) is None
        for layer in all_layers(model)
    )


def torch_loop(model):
    """A `TorchStepLoop` for `model`, or a `StepLoop` where it does not apply."""
    return TorchStepLoop(model) if _applies(model) else StepLoop(model)


class TorchStepLoop:
    """Trains epochs of one compiled functional model with direct layer calls,
    and torch's own loss and Adam update where `torch_native` covers them; on
    its first epoch it falls back to `StepLoop` for good if its forward pass
    does not give the model's outputs."""

    def __init__(self, model):
        self.model = model
        self.forward = DirectForward(model)
        self.fallback = None
        self.checked = False
        self.loss = None  # (labels, predictions) -> loss, or None: Keras' compute_loss.
        self.update = None  # (grads, variables): the optimizer's update.

    def _check(self, x):
        """Whether the direct forward gives the model's own outputs on `x`
        (every output, for a model with several) and adds no loss: a layer that
        calls `add_loss` in `call` needs `Layer.__call__`, which clears the
        previous step's."""
        import torch

        try:
            with torch.no_grad():
                expected = keras.tree.flatten(self.model(x, training=False))
                losses = len(self.model.losses)
                received = keras.tree.flatten(self.forward(x, False))
                if len(self.model.losses) != losses:
                    return False
        except Exception:  # Anything the direct calls cannot run: train as Keras does.
            return False
        return len(expected) == len(received) and all(
            tuple(a.shape) == tuple(b.shape) and np.allclose(
                keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b),
                rtol=1e-4, atol=1e-5)
            for a, b in zip(expected, received)
        )

    def _prepare(self, x):
        """First epoch: checks the forward pass and picks the loss and update."""
        self.checked = True
        if not self._check(keras.ops.convert_to_tensor(x)):
            self.fallback = StepLoop(self.model)
            return
        self.loss = native_loss(self.model)
        self.update = native_adam(self.model.optimizer) or self.model.optimizer.apply

    def _loss(self, inputs, labels, predictions, native):
        loss = self.loss(labels, predictions) if native else None
        if loss is None:
            loss = self.model.compute_loss(x=inputs, y=labels, y_pred=predictions, training=True)
        return loss

    def run_epochs(self, x, y, orders, batch_size, callbacks):
        """Trains one epoch per row order; returns each epoch's mean loss per row
        (fewer when a callback stops the training)."""
        import torch

        model = self.model
        build_for_training(model, x[orders[0][:batch_size]], y[orders[0][:batch_size]])
        if not self.checked:
            self._prepare(x[orders[0][:batch_size]])
        if self.fallback is not None:
            return self.fallback.run_epochs(x, y, orders, batch_size, callbacks)
        trainable = model.trainable_weights
        # A regularizer set after the first epoch: its penalty is in Keras' loss.
        native = self.loss is not None and not any(
            variable.regularizer is not None for variable in trainable)

        def train_step(rows):
            inputs = keras.ops.convert_to_tensor(x[rows])
            labels = keras.ops.convert_to_tensor(y[rows])
            model.zero_grad()
            loss = self._loss(inputs, labels, self.forward(inputs, True), native)
            if trainable:
                model.optimizer.scale_loss(loss).backward()
                with torch.no_grad():
                    self.update([v.value.grad for v in trainable], trainable)
            return loss.detach()

        losses, batches = run_steps(model, train_step, orders, batch_size, callbacks)
        return epoch_means(len(orders), torch.stack(losses).cpu().numpy(), batches)
