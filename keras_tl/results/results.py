"""Results: the summary, trials and provenance of a run, as JSON and CSV."""

import csv
import dataclasses
import datetime
import io
import json
import os
import platform
import subprocess
import sys

from keras_tl.errors import StoreError
from keras_tl.store import json_text, storage_errors, write_atomic

SCHEMA_VERSION = 1


@dataclasses.dataclass
class Results:
    """The outcome of an evaluation: config, provenance, trials and summary.

    Args:
        config: dict. The resolved experiment.
        context: dict. Facts about the run found while planning: primary metric,
            transferred layers, task descriptions.
        provenance: dict. Versions, backend, seeds, git sha, timestamp, command.
        trials: list of dict. One record per trial.
        summary: dict. Per-condition statistics, gains, curves, data efficiency,
            source retention.

    Example:

    >>> results = keras_tl.Results.from_folder("runs/parity")
    >>> results.summary["best"]["verdict"]
    """

    config: dict
    context: dict
    provenance: dict
    trials: list
    summary: dict

    def to_dict(self):
        return {
            "schema_version": SCHEMA_VERSION,
            "config": self.config,
            "context": self.context,
            "provenance": self.provenance,
            "summary": self.summary,
            "trials": self.trials,
        }

    @classmethod
    def from_dict(cls, data):
        return cls(**{field.name: data[field.name] for field in dataclasses.fields(cls)})

    @classmethod
    def from_folder(cls, folder):
        """Reads `FOLDER/results.json`; a file that cannot be read or parsed raises
        one `StoreError` that says how to rebuild it from the trial store."""
        path = os.path.join(folder, "results.json")
        with storage_errors(path, "read"):
            with open(path) as file:
                text = file.read()
        try:
            data = json.loads(text)
            return cls.from_dict(data)
        except (ValueError, TypeError, KeyError) as error:
            raise StoreError(
                f"{path} cannot be read as keras-tl results ({type(error).__name__}: "
                f"{str(error).splitlines()[0] if str(error) else ''}). Rebuild it from the "
                f"trial store with `keras-tl report {folder}`."
            ) from None

    def trials_csv(self):
        """The trial table as CSV text: one row per trial, metrics flattened."""
        rows = [_flatten_trial(trial) for trial in self.trials]
        columns = []
        for row in rows:
            columns += [column for column in row if column not in columns]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()

    def write(self, folder):
        """Writes `results.json` and `trials.csv` atomically into `folder`.

        JSON has no NaN or infinity: a non-finite number (a diverged trial's loss, a
        degenerate score) is written as null, so every JSON reader can load the file.
        A write that fails (a full disk, a read-only folder) raises one `StoreError`
        and leaves the previous files as they were.
        """
        write_atomic(
            os.path.join(folder, "results.json"),
            json_text(self.to_dict(), indent=2, sort_keys=False),
        )
        write_atomic(os.path.join(folder, "trials.csv"), self.trials_csv())


def _flatten_trial(trial):
    row = {}
    for key, value in trial.items():
        if key in ("val", "test") and value:
            for metric, number in value.items():
                row[f"{key}_{metric}"] = number
        elif key == "source_metrics":
            for moment in ("before", "after"):
                for metric, number in ((value or {}).get(moment) or {}).items():
                    row[f"source_{moment}_{metric}"] = number
        elif key == "scores":
            for name, number in (value or {}).items():
                row[f"score_{name}"] = number
        elif key in ("transfer", "validation_by_learning_rate", "validation_by_setting",
                     "stream", "cka", "fused"):
            row[key] = json.dumps(value) if value else ""
        else:
            row[key] = value
    return row


def _git_sha():
    # keras_tl/results/results.py -> the repository root, when run from a checkout.
    folder = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if not os.path.isdir(os.path.join(folder, ".git")):
        return None
    try:
        output = subprocess.run(
            ["git", "-C", folder, "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return output.stdout.strip() or None


def provenance(experiment, command=None):
    """Versions, backend, seeds, git sha, timestamp and command line of a run."""
    import keras
    import numpy

    from keras_tl import __version__
    from keras_tl.backend import installed_version

    backend = keras.config.backend()
    return {
        "keras_tl_version": __version__,
        "git_sha": _git_sha(),
        "keras_version": keras.__version__,
        "backend": backend,
        "backend_version": installed_version(backend),
        "numpy_version": numpy.__version__,
        "python_version": sys.version.split()[0],
        "platform": platform.platform(),
        "seeds": experiment.seeds,
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
    }
