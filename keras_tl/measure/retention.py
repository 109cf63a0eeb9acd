"""Source retention: the source task re-evaluated through the target's trained trunk."""

from keras_tl.networks.transfer import transfer_weights
from keras_tl.training.fit import evaluate as evaluate_split


def retention(probe, source_model, target_model, transferred, task):
    """Source-task test metrics of the target's trained trunk with the source head
    re-attached: how much of the source task survives target training.

    Args:
        probe: keras.Model. A source-shaped network to load weights into (reused
            across trials, so no model is built per trial).
        source_model: keras.Model. The trained source (its head is kept).
        target_model: keras.Model. The trained target.
        transferred: list of str. The layers copied from source to target.
        task: Task. The source task; its test split is evaluated.

    Returns:
        A dict of metrics, or None when a transferred layer no longer fits the source.
    """
    probe.set_weights(source_model.get_weights())
    report = transfer_weights(target_model, probe, layers=transferred)
    if report.skipped:
        return None
    return evaluate_split(probe, task, "test")
