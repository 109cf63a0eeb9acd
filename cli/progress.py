"""Progress output of `keras-tl evaluate`.

On a terminal, one status line is redrawn in place (trials done / total, the
running trial, its epoch, the ETA and the failures so far) and every finished
trial is printed above it. Anywhere else (a pipe, a file, CI logs) each finished
trial is one plain line and nothing is redrawn.
"""

import shutil
import time

# Redraws of the status line at most this often (seconds), except at a fit's first
# and last epoch: a small model's epoch can take a few milliseconds.
REDRAW_INTERVAL = 0.1


def _duration(seconds):
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _trial(arm, source, depth, size, seed):
    source = f" from {source}" if source else ""
    return f"{arm}{source} depth={depth} size={size} seed={seed}"


class LineProgress:
    """One line per finished trial, with the ETA and the failures so far.

    Args:
        stream: a text stream (e.g. `sys.stdout`).
    """

    def __init__(self, stream):
        self.stream = stream
        self.started = time.monotonic()
        self.run = 0
        self.failed = 0
        self.done = 0
        self.total = None

    def eta(self):
        """Seconds left, from the mean time of the trials run so far, or None."""
        if not self.run or self.total is None:
            return None
        elapsed = time.monotonic() - self.started
        return elapsed / self.run * (self.total - self.done)

    def trial_started(self, done, total, spec):
        """Called before a trial starts (`spec` is a `TrialSpec`)."""

    def epoch(self, epoch, epochs):
        """Called after each training epoch of the running trial."""

    def trial_finished(self, done, total, record):
        """Called after each trial with its record."""
        self.run += 1
        self.failed += record["status"] != "ok"
        self.done, self.total = done, total
        if record["status"] == "ok":
            outcome = " ".join(
                f"{k}={v:.3f}" for k, v in record["test"].items() if v is not None
            )
        else:
            outcome = f"FAILED ({record['error']})"
        trial = _trial(record["arm"], record.get("source"), record["freeze_depth"],
                       record["requested_train_size"], record["seed"])
        self._print(
            f"[{done}/{total}] {trial}: {outcome}  "
            f"(ETA {_duration(self.eta())}, {self.failed} failed)"
        )

    def close(self):
        """Called once when the run ends (or is interrupted)."""

    def _print(self, line):
        self.stream.write(line + "\n")
        self.stream.flush()


class LiveProgress(LineProgress):
    """A status line redrawn in place under the finished trials' lines."""

    def __init__(self, stream):
        super().__init__(stream)
        self.current = None
        self.current_epoch = None
        self.drawn_at = 0.0

    def trial_started(self, done, total, spec):
        self.done, self.total = done, total
        self.current = _trial(spec.arm, spec.source, spec.freeze_depth,
                              spec.train_size, spec.seed)
        self.current_epoch = None
        self._draw()

    def epoch(self, epoch, epochs):
        self.current_epoch = (epoch, epochs)
        first_or_last = epoch in (1, epochs)
        if first_or_last or time.monotonic() - self.drawn_at >= REDRAW_INTERVAL:
            self._draw()

    def trial_finished(self, done, total, record):
        super().trial_finished(done, total, record)
        self.current = None
        self._draw()

    def close(self):
        self._clear()

    def status(self):
        """The status line's text."""
        parts = [f"[{self.done}/{self.total}]"]
        if self.current:
            running = f"running {self.current}"
            if self.current_epoch:
                running += f", epoch {self.current_epoch[0]}/{self.current_epoch[1]}"
            parts.append(running)
        eta = self.eta()
        parts.append("ETA " + ("--" if eta is None else _duration(eta)))
        parts.append(f"{self.failed} failed")
        return " | ".join(parts)

    def _print(self, line):
        self._clear()
        super()._print(line)

    def _clear(self):
        self.stream.write("\r\x1b[K")
        self.stream.flush()

    def _draw(self):
        width = shutil.get_terminal_size().columns
        self.stream.write("\r\x1b[K" + self.status()[: max(width - 1, 20)])
        self.stream.flush()
        self.drawn_at = time.monotonic()


def progress_for(stream, live=True):
    """A `LiveProgress` when `live` and `stream` is a terminal, else a `LineProgress`."""
    is_terminal = getattr(stream, "isatty", lambda: False)()
    return LiveProgress(stream) if live and is_terminal else LineProgress(stream)
