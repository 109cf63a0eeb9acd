"""Properties of linear CKA and delta_m, checked on generated inputs.

Each assertion compares the function with itself under a transformation the
definition says it must ignore (or reverse), never with a second implementation.
LogME's width invariance (F Q with orthonormal rows, appended zero columns) is
already a property test in test_transferability.py
(`test_logme_depends_only_on_the_span_of_the_features`) and is not repeated here.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keras_tl.scores.multitask import FORMS, delta_m
from keras_tl.scores.similarity import linear_cka

PROPERTY_SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)


# ---------------------------------------------------------------------------------
# Linear CKA


def activations(rng, num_samples, width):
    """Correlated, non-centred, unevenly scaled activations."""
    mixing = rng.normal(size=(width, width)) * rng.uniform(0.1, 3.0, size=width)
    return rng.normal(size=(num_samples, width)) @ mixing + rng.normal(size=width)


def orthogonal(rng, size):
    q, r = np.linalg.qr(rng.normal(size=(size, size)))
    return q * np.sign(np.diag(r))  # Haar-distributed, reflections included.


def related_pair(rng, num_samples, width_x, width_y):
    """y partly a linear function of x, so the CKA is neither 0 nor 1."""
    x = activations(rng, num_samples, width_x)
    y = x @ rng.normal(size=(width_x, width_y)) + activations(rng, num_samples, width_y)
    return x, y


CKA_SHAPES = dict(
    seed=st.integers(0, 2**32 - 1),
    # Both of linear_cka's paths: the Gram matrix (N < D) and the features (N >= D).
    num_samples=st.integers(4, 40),
    width_x=st.integers(1, 50),
    width_y=st.integers(1, 50),
    debiased=st.booleans(),
)


@PROPERTY_SETTINGS
@given(**CKA_SHAPES)
def test_cka_is_invariant_to_rotating_either_representation(
    seed, num_samples, width_x, width_y, debiased
):
    rng = np.random.default_rng(seed)
    x, y = related_pair(rng, num_samples, width_x, width_y)
    expected = linear_cka(x, y, debiased=debiased)

    assert linear_cka(x @ orthogonal(rng, width_x), y, debiased=debiased) == pytest.approx(
        expected, abs=1e-9
    )
    assert linear_cka(x, y @ orthogonal(rng, width_y), debiased=debiased) == pytest.approx(
        expected, abs=1e-9
    )


@PROPERTY_SETTINGS
@given(
    **CKA_SHAPES,
    scale_x=st.floats(1e-3, 1e3),
    scale_y=st.floats(1e-3, 1e3),
)
def test_cka_is_invariant_to_isotropic_scaling(
    seed, num_samples, width_x, width_y, debiased, scale_x, scale_y
):
    rng = np.random.default_rng(seed)
    x, y = related_pair(rng, num_samples, width_x, width_y)
    expected = linear_cka(x, y, debiased=debiased)

    assert linear_cka(scale_x * x, y, debiased=debiased) == pytest.approx(
        expected, abs=1e-9
    )
    assert linear_cka(x, scale_y * y, debiased=debiased) == pytest.approx(
        expected, abs=1e-9
    )
    assert linear_cka(scale_x * x, scale_y * y, debiased=debiased) == pytest.approx(
        expected, abs=1e-9
    )


@PROPERTY_SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    num_samples=st.integers(4, 40),
    width=st.integers(1, 50),
    debiased=st.booleans(),
)
def test_cka_of_identical_inputs_is_one(seed, num_samples, width, debiased):
    x = activations(np.random.default_rng(seed), num_samples, width)

    assert linear_cka(x, x, debiased=debiased) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(x, x.copy(), debiased=debiased) == pytest.approx(1.0, abs=1e-9)


# ---------------------------------------------------------------------------------
# delta_m

METRIC_DIRECTIONS = {"accuracy": "higher", "auc": "higher", "loss": "lower", "error": "lower"}


@st.composite
def baselines(draw):
    """{task: {metric: positive value}}: 1-3 tasks, each with 1-4 metrics."""
    tasks = draw(st.lists(st.sampled_from("abcd"), min_size=1, max_size=3, unique=True))
    return {
        task: {
            metric: draw(st.floats(1e-3, 1e3))
            for metric in draw(
                st.lists(st.sampled_from(sorted(METRIC_DIRECTIONS)), min_size=1,
                         max_size=4, unique=True)
            )
        }
        for task in tasks
    }


@st.composite
def better_everywhere(draw):
    """(baselines, fused): the fused model strictly better on every metric."""
    base = draw(baselines())
    fused = {}
    for task, metrics in base.items():
        fused[task] = {}
        for metric, value in metrics.items():
            factor = draw(st.floats(1.001, 5.0))
            better_higher = METRIC_DIRECTIONS[metric] == "higher"
            fused[task][metric] = value * factor if better_higher else value / factor
    return base, fused


@PROPERTY_SETTINGS
@given(base=baselines(), form=st.sampled_from(FORMS))
def test_delta_m_is_zero_when_fused_and_baselines_are_equal(base, form):
    same = {task: dict(metrics) for task, metrics in base.items()}

    assert delta_m(same, base, METRIC_DIRECTIONS, form=form) == 0.0


@PROPERTY_SETTINGS
@given(pair=better_everywhere(), form=st.sampled_from(FORMS))
def test_delta_m_changes_sign_when_fused_and_baselines_are_swapped(pair, form):
    # With every metric on the same side of its baseline, swapping the roles
    # reverses every term's sign, so the mean's. (With terms of both signs a swap
    # need not flip it: the terms are relative to different denominators.)
    base, fused = pair
    forward = delta_m(fused, base, METRIC_DIRECTIONS, form=form)
    swapped = delta_m(base, fused, METRIC_DIRECTIONS, form=form)

    assert forward > 0.0
    assert swapped < 0.0


@PROPERTY_SETTINGS
@given(
    fused=st.floats(1e-3, 1e3),
    baseline=st.floats(1e-3, 1e3),
    metric=st.sampled_from(sorted(METRIC_DIRECTIONS)),
    form=st.sampled_from(FORMS),
)
def test_delta_m_of_one_metric_changes_sign_when_swapped(fused, baseline, metric, form):
    forward = delta_m({"t": {metric: fused}}, {"t": {metric: baseline}},
                      METRIC_DIRECTIONS, form=form)
    swapped = delta_m({"t": {metric: baseline}}, {"t": {metric: fused}},
                      METRIC_DIRECTIONS, form=form)

    assert np.sign(forward) == -np.sign(swapped)
    assert (forward == 0.0) == (fused == baseline)
