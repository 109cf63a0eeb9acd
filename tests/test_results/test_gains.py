"""Verdicts on synthetic trial records whose right answer is known.

The records are built by hand (no training), so each test knows the true gain;
the expected statistics are computed here from their definitions: the exact
sign-flip p-value by enumerating the 2**n sign patterns, Holm by its step-down
formula.
"""

import itertools

import numpy as np
import pytest

import keras_tl
from keras_tl.config.schema import load_experiment
from keras_tl.results.summary import build_results

SIZE = 40


def _config(arms, seeds):
    return load_experiment({
        "name": "synthetic",
        "model": {"builder": "mlp"},
        "source": {"task": "digits"},
        "target": {"task": "digits:parity", "train_sizes": [SIZE]},
        "arms": arms,
        "freeze_depths": [0],
        "seeds": seeds,
        "scores": [],
    }).to_dict()


CONTEXT = {
    "primary_metric": "accuracy",
    "source_metric": "accuracy",
    "scores": [],
    "sources": [{"name": "digits", "untrained": False, "transferable": ["dense_0"],
                 "task": {"name": "digits", "kind": "classification"}}],
    "transferable": ["dense_0"],
    "target_task": {"name": "digits:parity", "kind": "classification"},
    "notes": [],
}


def _record(arm, seed, accuracy, depth=0, source="digits"):
    return {
        "key": f"{arm}-{depth}-{seed}", "arm": arm, "recipe": arm,
        "source": None if arm == "scratch" else source,
        "freeze_depth": 0 if arm == "scratch" else depth,
        "requested_train_size": SIZE, "train_size": SIZE, "seed": seed,
        "status": "ok", "error": None,
        "test": {"accuracy": accuracy}, "val": {"accuracy": accuracy},
    }


def _records(accuracies_by_arm):
    return [_record(arm, seed, value)
            for arm, values in accuracies_by_arm.items()
            for seed, value in enumerate(values)]


def _summary(accuracies_by_arm, seeds=None):
    arms = list(accuracies_by_arm)
    seeds = seeds or len(next(iter(accuracies_by_arm.values())))
    results = build_results(_config(arms, seeds), CONTEXT, _records(accuracies_by_arm), {})
    return results.summary


def _sign_flip_p(differences):
    """Two-sided exact sign-flip p-value, by enumerating every sign pattern."""
    d = np.asarray(differences, dtype=float)
    observed = abs(d.sum())
    sums = [abs(np.dot(signs, np.abs(d)))
            for signs in itertools.product((-1.0, 1.0), repeat=len(d))]
    return float(np.mean([s >= observed - 1e-12 for s in sums]))


SCRATCH = [0.80, 0.82, 0.79, 0.81, 0.80, 0.83, 0.78, 0.81]


def test_a_clear_gain_is_positive_a_clear_loss_negative_and_noise_inconclusive():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.01, len(SCRATCH))
    summary = _summary({
        "scratch": SCRATCH,
        "fine_tune": [s + 0.10 + e for s, e in zip(SCRATCH, noise)],
        "linear_probe": [s - 0.10 + e for s, e in zip(SCRATCH, noise)],
        "lp_ft": [s + e for s, e in zip(SCRATCH, noise * 3)],
    })
    verdicts = {gain["arm"]: gain["verdict"] for gain in summary["gains"]}
    assert verdicts == {"fine_tune": "positive", "linear_probe": "negative",
                        "lp_ft": "inconclusive"}
    noisy = next(g for g in summary["gains"] if g["arm"] == "lp_ft")
    assert "ruled out" in noisy["explanation"]
    assert "explanation" not in next(g for g in summary["gains"] if g["arm"] == "fine_tune")


def test_gains_use_the_exact_sign_flip_test_and_holm_over_the_family():
    scratch = SCRATCH[:6]
    fine = [0.85, 0.86, 0.84, 0.88, 0.82, 0.87]
    probe = [0.81, 0.80, 0.80, 0.83, 0.79, 0.84]
    summary = _summary({"scratch": scratch, "fine_tune": fine, "linear_probe": probe})
    raw = [_sign_flip_p(np.subtract(fine, scratch)), _sign_flip_p(np.subtract(probe, scratch))]
    # Holm with m = 2: the smaller p times 2, the larger times 1, kept monotone.
    order = np.argsort(raw)
    expected = [0.0, 0.0]
    expected[order[0]] = min(1.0, 2 * raw[order[0]])
    expected[order[1]] = min(1.0, max(expected[order[0]], raw[order[1]]))
    by_arm = {g["arm"]: g for g in summary["gains"]}
    assert by_arm["fine_tune"]["p_value"] == pytest.approx(raw[0], abs=1e-12)
    assert by_arm["linear_probe"]["p_value"] == pytest.approx(raw[1], abs=1e-12)
    assert by_arm["fine_tune"]["p_value_adjusted"] == pytest.approx(expected[0], abs=1e-12)
    assert by_arm["linear_probe"]["p_value_adjusted"] == pytest.approx(expected[1], abs=1e-12)
    # Every difference positive at 6 seeds: p = 2 / 64 = 0.031, but Holm over two
    # comparisons doubles it past 0.05.
    assert raw[0] == pytest.approx(2 / 64)
    assert by_arm["fine_tune"]["p_value_adjusted"] == pytest.approx(4 / 64)
    assert by_arm["fine_tune"]["verdict"] == "inconclusive"


def test_random_transfer_is_a_comparator_in_the_same_holm_family():
    random_init = [s + 0.05 for s in SCRATCH]
    fine = [s + 0.051 + 0.002 * (i % 2) for i, s in enumerate(SCRATCH)]
    summary = _summary({"scratch": SCRATCH, "fine_tune": fine, "random_transfer": random_init})
    (control,) = summary["gains_vs_control"]
    assert control["arm"] == "fine_tune" and control["comparator"] == "random_transfer"
    assert control["mean"] == pytest.approx(np.mean(np.subtract(fine, random_init)))
    # Family: fine_tune and random_transfer vs scratch, fine_tune vs the control.
    raw = [g["p_value"] for g in summary["gains"]] + [control["p_value"]]
    smallest = min(raw)
    adjusted = [g["p_value_adjusted"] for g in summary["gains"]] + [control["p_value_adjusted"]]
    assert min(adjusted) == pytest.approx(min(1.0, 3 * smallest))
    best = summary["best"]
    assert best["arm"] == "fine_tune" and best["comparator"] == "scratch"
    assert best["control_ran"] is True
    assert best["vs_control"]["p_value"] == control["p_value"]


def test_without_the_control_the_best_says_so():
    summary = _summary({"scratch": SCRATCH, "fine_tune": [s + 0.1 for s in SCRATCH]})
    assert summary["gains_vs_control"] == []
    assert summary["best"]["control_ran"] is False
    assert summary["best"]["vs_control"] is None


def test_identical_differences_have_no_interval_and_bounded_means_stay_in_bounds():
    summary = _summary({"scratch": [0.9] * 4, "fine_tune": [0.95] * 4,
                        "linear_probe": [1.0, 1.0, 1.0, 0.9]})
    gain = summary["gains"][0]
    assert gain["ci_low"] is None and gain["ci_high"] is None
    probe = next(c for c in summary["conditions"] if c["arm"] == "linear_probe")
    assert probe["test"]["accuracy"]["ci_high"] == 1.0
    assert probe["test"]["accuracy"]["ci_low"] < 0.975


@pytest.mark.parametrize("true_gain, verdict, decided_at", [(0.10, "positive", 5),
                                                           (-0.10, "negative", 5)])
def test_adaptive_seeds_decide_a_large_gain_at_the_first_look(true_gain, verdict, decided_at):
    rng = np.random.default_rng(1)
    scratch = list(0.8 + rng.normal(0, 0.01, 5))
    fine = [s + true_gain + e for s, e in zip(scratch, rng.normal(0, 0.01, 5))]
    summary = _summary({"scratch": scratch, "fine_tune": fine}, seeds={"min": 5, "max": 30})
    (gain,) = summary["gains"]
    assert gain["verdict"] == verdict
    assert gain["sequential"]["n"] == decided_at
    assert summary["seeds"] == {"min": 5, "max": 30, "run": 5, "undecided": False}


def test_adaptive_seeds_wait_for_more_seeds_on_noise_and_end_inconclusive_at_max():
    rng = np.random.default_rng(2)
    scratch = list(0.8 + rng.normal(0, 0.02, 7))
    fine = list(0.8 + rng.normal(0, 0.02, 7))
    summary = _summary({"scratch": scratch[:5], "fine_tune": fine[:5]},
                       seeds={"min": 5, "max": 7})
    assert summary["gains"][0]["verdict"] == "continue"
    assert summary["seeds"]["undecided"] is True
    summary = _summary({"scratch": scratch, "fine_tune": fine}, seeds={"min": 5, "max": 7})
    gain = summary["gains"][0]
    assert gain["verdict"] == "inconclusive"
    assert "ruled out" in gain["explanation"]
    assert summary["seeds"]["undecided"] is False


def _fake_trial(gain):
    """A trial runner that trains nothing: scratch scores 0.8 + noise, the other
    arms `gain` more (the noise is fixed by the seed, so pairs are exact)."""

    def run_one(plan, spec, sources, pool, feature_cache):
        noise = np.random.default_rng(spec.seed).normal(0, 0.01)
        value = 0.8 + noise + (0 if spec.arm == "scratch" else gain)
        return {"train_size": spec.train_size, "test": {"accuracy": value},
                "val": {"accuracy": value}}

    return run_one


@pytest.mark.parametrize("gain, seeds_run", [(0.1, 5), (0.0, 10)])
def test_evaluate_stops_adding_seeds_once_every_verdict_is_decided(tmp_path, gain, seeds_run):
    experiment = _config(["scratch", "fine_tune"], {"min": 5, "max": 10})
    started = []
    results = keras_tl.evaluate(
        experiment, out=str(tmp_path / "run"), trial_runner=_fake_trial(gain),
        on_trial_start=lambda done, total, spec: started.append(spec.seed),
    )
    assert sorted(set(started)) == list(range(seeds_run))
    assert results.summary["seeds"]["run"] == seeds_run
    # Resuming the finished run adds no seed.
    again = []
    keras_tl.evaluate(experiment, out=str(tmp_path / "run"), trial_runner=_fake_trial(gain),
                      on_trial_start=lambda done, total, spec: again.append(spec.seed))
    assert again == []
