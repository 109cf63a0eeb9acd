"""Progress output of `keras-tl evaluate`: live on a terminal, plain lines elsewhere."""

import io
import os
import pty
import re
import select
import subprocess
import sys

import keras
import pytest
import yaml

from keras_tl.experiment.spec import TrialSpec
from keras_tl_cli.progress import LineProgress, LiveProgress, progress_for

# Trains models end to end: the full suite (tox, CI) runs it; `-m "not slow"` skips it.
pytestmark = pytest.mark.slow

CLEAR_LINE = "\r\x1b[K"
SPEC = TrialSpec(arm="fine_tune", freeze_depth=1, train_size=30, seed=2, source="digits")
RECORD = {
    "status": "ok", "arm": "fine_tune", "source": "digits", "freeze_depth": 1,
    "requested_train_size": 30, "seed": 2, "test": {"accuracy": 0.75, "loss": 0.5},
}


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_a_live_display_and_anything_else_plain_lines():
    assert isinstance(progress_for(Terminal()), LiveProgress)
    assert not isinstance(progress_for(io.StringIO()), LiveProgress)
    assert not isinstance(progress_for(Terminal(), live=False), LiveProgress)


def test_the_status_line_shows_done_total_running_trial_epoch_eta_and_failures():
    stream = Terminal()
    progress = LiveProgress(stream)
    progress.trial_started(3, 10, SPEC)
    assert progress.status() == (
        "[3/10] | running fine_tune from digits depth=1 size=30 seed=2 | ETA -- | 0 failed"
    )
    progress.epoch(4, 20)  # Right after a redraw, an intermediate epoch waits...
    assert "epoch" not in stream.getvalue()
    progress.epoch(20, 20)  # ...the last one does not.
    assert "running fine_tune from digits depth=1 size=30 seed=2, epoch 20/20" in (
        stream.getvalue().split(CLEAR_LINE)[-1]
    )
    progress.trial_finished(4, 10, {**RECORD, "status": "failed", "error": "non-finite loss"})
    status = progress.status()
    assert status.startswith("[4/10] | ETA ") and status.endswith("| 1 failed")
    assert "running" not in status
    # The finished trial is printed on its own line above the redrawn status.
    finished_line = stream.getvalue().split("\n")[0].split(CLEAR_LINE)[-1]
    assert re.fullmatch(
        r"\[4/10\] fine_tune from digits depth=1 size=30 seed=2: "
        r"FAILED \(non-finite loss\)  \(ETA \d+ s, 1 failed\)",
        finished_line,
    )
    progress.close()
    assert stream.getvalue().endswith(CLEAR_LINE)


def test_plain_lines_have_no_control_characters_and_one_line_per_trial():
    stream = io.StringIO()
    progress = LineProgress(stream)
    progress.trial_started(0, 2, SPEC)
    progress.epoch(1, 5)
    progress.trial_finished(1, 2, RECORD)
    progress.trial_finished(2, 2, RECORD)
    progress.close()
    output = stream.getvalue()
    assert "\r" not in output and "\x1b" not in output
    lines = output.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("[1/2] fine_tune from digits depth=1 size=30 seed=2: "
                               "accuracy=0.750 loss=0.500  (ETA ")
    assert lines[1].endswith("0 failed)")


def _run_on_a_terminal(args, env, cwd):
    """Runs a command with stdout on a pseudo-terminal; returns (exit code, output)."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(args, stdout=terminal, stderr=subprocess.DEVNULL,
                               env=env, cwd=cwd)
    os.close(terminal)
    chunks = []
    while True:
        ready, _, _ = select.select([controller], [], [], 300)
        if not ready:
            process.kill()
            break
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # The terminal closes when the process exits.
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    return process.wait(timeout=60), b"".join(chunks).decode(errors="replace")


def test_evaluate_on_a_terminal_redraws_the_running_trial_and_its_epochs(tmp_path):
    experiment = {
        "name": "live", "model": {"builder": "mlp"},
        "source": {"task": "digits:0-4", "epochs": 2, "batch_size": 64},
        "target": {"task": "digits:5-9", "train_sizes": [20], "epochs": 3,
                   "batch_size": 10},
        "arms": ["scratch", "fine_tune"], "seeds": 1, "scores": [],
    }
    config = tmp_path / "live.yaml"
    config.write_text(yaml.safe_dump(experiment))
    env = {**os.environ, "KERAS_BACKEND": keras.config.backend(), "COLUMNS": "200"}
    code, output = _run_on_a_terminal(
        [sys.executable, "-m", "keras_tl_cli", "evaluate", str(config),
         "--out", str(tmp_path / "run")],
        env, tmp_path,
    )
    assert code == 0, output
    statuses = [part.split("\r")[0] for part in output.split(CLEAR_LINE) if part]
    assert "[0/2] | running scratch depth=0 size=20 seed=0 | ETA -- | 0 failed" in statuses
    assert any(
        s.startswith("[1/2] | running fine_tune from digits:0-4 depth=0 size=20 seed=0, "
                     "epoch ") for s in statuses
    )
    assert "[2/2] fine_tune from digits:0-4 depth=0 size=20 seed=0: " in output
    assert "Report: " in output
