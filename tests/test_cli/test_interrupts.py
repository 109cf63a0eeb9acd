"""Ctrl-C at the points a run cannot lose work, delivered deterministically.

The trials are stubbed (no training): what is tested is what the CLI does with
an interrupt after the run, not when one arrives.
"""

import os
import signal

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

import keras_tl.experiment.run
import keras_tl.report
from keras_tl_cli.main import cli


def _stub_trial(plan, spec, sources, pool, feature_cache):
    value = 0.8 + np.random.default_rng(spec.seed).normal(0, 0.01)
    return {"train_size": spec.train_size, "test": {"accuracy": value},
            "val": {"accuracy": value}}


@pytest.fixture
def config(tmp_path, tiny_experiment):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_experiment("tiny", arms=["scratch", "fine_tune"],
                                                   scores=[])))
    return path


def _patch_run(monkeypatch, after_run=None):
    real = keras_tl.experiment.run.evaluate

    def run(*args, **kwargs):
        results = real(*args, trial_runner=_stub_trial, **kwargs)
        if after_run:
            after_run()
        return results

    monkeypatch.setattr(keras_tl.experiment.run, "evaluate", run)


def test_an_interrupt_swallowed_after_the_run_still_exits_130(config, tmp_path, monkeypatch):
    def swallowed_interrupt():
        # What a KeyboardInterrupt raised inside jax's gc callback amounts to: the
        # handler runs, Python prints and drops the exception.
        try:
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
        except KeyboardInterrupt:
            pass

    _patch_run(monkeypatch, swallowed_interrupt)
    out = tmp_path / "run"

    result = CliRunner().invoke(cli, ["evaluate", str(config), "--out", str(out), "--quiet"])

    assert result.exit_code == 130, result.output
    assert "Interrupted while writing the reports" in result.output
    assert f"keras-tl report {out}" in result.output
    assert os.path.isfile(out / "results.json")


def test_an_interrupt_while_plots_are_written_says_how_to_write_the_report(
    config, tmp_path, monkeypatch
):
    _patch_run(monkeypatch)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(keras_tl.report, "write_reports", interrupted)
    out = tmp_path / "run"

    result = CliRunner().invoke(cli, ["evaluate", str(config), "--out", str(out), "--quiet"])

    assert result.exit_code == 130, result.output
    assert "Aborted." not in result.output
    assert "Interrupted while writing the reports" in result.output
    # The trials and results.json are kept, and `report` then writes the reports.
    assert os.path.isfile(out / "results.json")
    monkeypatch.undo()
    written = CliRunner().invoke(cli, ["report", str(out)])
    assert written.exit_code == 0, written.output
    assert os.path.isfile(out / "report.html")
