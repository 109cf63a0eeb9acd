"""Test-only network builders that kill the Ray worker running a trial.

They build keras-tl's `mlp`, but inside a Ray actor's `trial` call (never in the
driver, nor while an actor starts or trains a source) a target network (one
output: `digits:parity`) first ends its process with `os._exit`, as a crash or
an out-of-memory kill would, mid-trial.
"""

import os

from keras_tl.networks.network import mlp


def _building_a_target_in_a_ray_trial(num_outputs):
    import ray

    if num_outputs != 1 or not ray.is_initialized():
        return False
    return (ray.get_runtime_context().get_task_name() or "").endswith(".trial")


def mlp_killing_once(input_shape, num_outputs, marker):
    """Kills the first worker that builds a target in a trial; creates `marker`."""
    if _building_a_target_in_a_ray_trial(num_outputs) and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return mlp(input_shape, num_outputs)


def mlp_killing_always(input_shape, num_outputs, marker):
    """Kills every worker that builds a target in a trial; adds a line to `marker`."""
    if _building_a_target_in_a_ray_trial(num_outputs):
        with open(marker, "a") as file:
            file.write("died\n")
        os._exit(1)
    return mlp(input_shape, num_outputs)
