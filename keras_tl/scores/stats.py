"""Statistics for repeated trials: intervals, the paired test, Holm, rank agreement.

Every function takes plain numbers or NumPy arrays and returns Python floats, ints,
strings or plain dicts, so results serialise to JSON as they are. A value that is
undefined (a standard deviation from one trial, a correlation with a constant side,
an interval of zero width) is `None`, never NaN.

* **Intervals** (`intervals`): `summarize` gives the Student t interval (Student,
  1908), `None` when the values have no spread, intersected with the bounds of a
  bounded metric (`bounds=(0, 1)` for accuracy).
* **The paired test** (`paired`): arms are paired by seed and a gain is tested with
  the exact two-sided sign-flip permutation test (Fisher, 1935; Pitman, 1937),
  Monte-Carlo beyond 20 pairs (Phipson and Smyth, 2010). Its smallest p-value is
  `2 / 2**n`: **with 3 seeds p >= 0.25, and only from 6 seeds can a gain be
  significant at 0.05** (`min_pairs_for_significance`).
* **Verdicts** (`verdicts`): Holm (1979) adjusts a family of p-values; `verdict`
  says `positive` / `negative` / `inconclusive`, and `explain_inconclusive` what an
  inconclusive gain still rules out and how many seeds would decide.
* **Agreement** (`agreement`): `rank_agreement` compares a cheap score's ranking
  with realised gains (Kendall's tau-b, Vigna's weighted tau, Pearson's r, after
  snapping round-off to ties); `matching_size` finds the scratch train size a
  result matches.

This module is the public entry point (`from keras_tl.scores import stats`);
docs/statistics-tests.md explains each choice with examples and lists the
references.
"""

from keras_tl.scores.agreement import matching_size, rank_agreement
from keras_tl.scores.intervals import summarize
from keras_tl.scores.paired import (  # noqa: F401 (the constants, kept importable)
    MAX_EXACT_PAIRS,
    MONTE_CARLO_SAMPLES,
    MONTE_CARLO_SEED,
    min_pairs_for_significance,
    paired_difference,
    sign_flip_test,
)
from keras_tl.scores.verdicts import explain_inconclusive, holm, verdict

__all__ = [
    "summarize",
    "paired_difference",
    "sign_flip_test",
    "min_pairs_for_significance",
    "holm",
    "verdict",
    "explain_inconclusive",
    "rank_agreement",
    "matching_size",
]
