"""Tests for keras_tl.scores.continual (GEM's ACC, BWT, FWT and forgetting)."""

import numpy as np
import pytest

from keras_tl.errors import DataError
from keras_tl.scores import continual

# Rows: after training on task 0, 1, 2. Columns: evaluated on task 0, 1, 2.
R3 = [
    [0.90, 0.30, 0.20],
    [0.80, 0.85, 0.40],
    [0.70, 0.80, 0.95],
]


def test_average_accuracy_is_the_mean_of_the_last_row():
    assert continual.average_accuracy([[0.9, 0.1], [0.8, 0.7]]) == pytest.approx(0.75)
    assert continual.average_accuracy(R3) == pytest.approx((0.70 + 0.80 + 0.95) / 3)


def test_backward_transfer_hand_computed():
    # 2x2: R[1, 0] - R[0, 0] = 0.8 - 0.9.
    assert continual.backward_transfer([[0.9, 0.1], [0.8, 0.7]]) == pytest.approx(-0.1)
    # 3x3: ((0.70 - 0.90) + (0.80 - 0.85)) / 2.
    assert continual.backward_transfer(R3) == pytest.approx(-0.125)


def test_backward_transfer_is_positive_when_later_training_improves_old_tasks():
    improving = [[0.6, 0.2], [0.8, 0.9]]
    assert continual.backward_transfer(improving) == pytest.approx(0.2)


def test_backward_transfer_for_a_lower_is_better_metric():
    losses = [[0.5, 2.0], [0.3, 0.4]]  # the old task's loss went down: better
    assert continual.backward_transfer(losses, higher_is_better=False) == (
        pytest.approx(0.2)
    )


def test_forward_transfer_hand_computed():
    random_init = [0.1, 0.25, 0.3]
    # ((R[0, 1] - b1) + (R[1, 2] - b2)) / 2 = ((0.30 - 0.25) + (0.40 - 0.30)) / 2.
    assert continual.forward_transfer(R3, random_init) == pytest.approx(0.075)
    two = continual.forward_transfer([[0.9, 0.3], [0.8, 0.7]], [0.5, 0.1])
    assert two == pytest.approx(0.2)


def test_forward_transfer_is_negative_when_earlier_tasks_hurt():
    assert continual.forward_transfer([[0.9, 0.05], [0.8, 0.7]], [0.5, 0.1]) == (
        pytest.approx(-0.05)
    )
    losses = [[0.5, 1.0], [0.4, 0.3]]  # head-start loss 1.0 vs random 2.0: helps
    assert continual.forward_transfer(losses, [2.0, 2.0], higher_is_better=False) == (
        pytest.approx(1.0)
    )


def test_forward_transfer_needs_one_baseline_per_task():
    with pytest.raises(DataError, match="one number per task"):
        continual.forward_transfer(R3, [0.1, 0.2])


def test_forgetting_is_positive_when_the_source_got_worse():
    assert continual.forgetting(0.90, 0.85) == pytest.approx(0.05)
    assert continual.forgetting(0.85, 0.90) == pytest.approx(-0.05)
    assert continual.forgetting(0.30, 0.45, higher_is_better=False) == pytest.approx(
        0.15
    )
    assert continual.forgetting(0.45, 0.30, higher_is_better=False) == pytest.approx(
        -0.15
    )


def test_forgetting_of_an_undefined_metric_is_none():
    assert continual.forgetting(None, 0.8) is None
    assert continual.forgetting(0.9, float("nan")) is None
    with pytest.raises(DataError, match="after"):
        continual.forgetting(0.9, "high")


def test_results_are_python_floats():
    values = [
        continual.average_accuracy(np.array(R3, dtype=np.float32)),
        continual.backward_transfer(R3),
        continual.forward_transfer(R3, [0.0, 0.0, 0.0]),
        continual.forgetting(np.float32(0.9), np.float32(0.8)),
    ]
    assert all(type(value) is float for value in values)


@pytest.mark.parametrize(
    "matrix",
    [
        [[0.9]],
        [[0.9, 0.1, 0.2], [0.8, 0.7, 0.3]],
        [0.9, 0.8],
        [[0.9, np.nan], [0.8, 0.7]],
    ],
)
def test_non_square_small_or_non_finite_matrices_are_rejected(matrix):
    for function in (continual.average_accuracy, continual.backward_transfer):
        with pytest.raises(DataError, match="R must"):
            function(matrix)
