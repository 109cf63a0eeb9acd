"""Transferability scores: could a cheap number predict how well a source transfers?

Each score looks at what a source model produces on the *target* task's inputs and
says, without any fine-tuning, how well that output suits the target labels. Two
kinds of input exist:

* "features": the (N, D) activations of a layer of the source model (LogME,
  H-score, regularized H-score, GBC, TransRate);
* "predictions": the source model's own class probabilities or predicted classes on
  the target inputs (LEEP, NCE).

Every score is higher-is-better, is a pure function (NumPy arrays or backend
tensors in, a Python float out) and computes in float64. `SCORES` maps each name to
the input it needs and its function, so callers can loop over them.

This module is the public entry point; the scores live by family in `logme`,
`label_scores` (LEEP, NCE) and `separability` (H-score, regularized H-score, GBC,
TransRate), sharing the input checks of `_score_inputs`. GBC, TransRate and the
regularized H-score also come in their authors' published normalisation
(`form="authors"`); docs/scores-notes.md says where each form differs from the
published code, and why a score the data make label-independent raises `DataError`
instead of returning a number that would be ranked.
"""

import dataclasses
from typing import Callable

from keras_tl.scores.label_scores import leep, nce
from keras_tl.scores.logme import logme
from keras_tl.scores.separability import gbc, h_score, regularized_h_score, transrate

__all__ = [
    "SCORES",
    "ScoreSpec",
    "gbc",
    "h_score",
    "leep",
    "logme",
    "nce",
    "regularized_h_score",
    "transrate",
]


@dataclasses.dataclass(frozen=True)
class ScoreSpec:
    """What a transferability score needs and how to call it.

    Args:
        name: str. The score's name, a key of `SCORES`.
        needs: str. `"features"` (activations of a source layer on the target
            inputs) or `"predictions"` (the source model's class probabilities
            on the target inputs).
        function: callable. `function(inputs, labels) -> float`, higher is better.
        options: tuple of str. Keyword arguments `function` accepts beyond
            `(inputs, labels)`, each with a default (e.g. `"form"`, which selects
            the authors' normalisation where a score offers it). Default: none.

    Example:

    >>> spec = SCORES["leep"]
    >>> spec.needs
    'predictions'
    >>> SCORES["gbc"].options
    ('pca_dim', 'form')
    """

    name: str
    needs: str
    function: Callable
    options: tuple = ()


SCORES = {
    spec.name: spec
    for spec in (
        ScoreSpec("logme", "features", logme, ("kind",)),
        ScoreSpec("leep", "predictions", leep),
        ScoreSpec("nce", "predictions", nce),
        ScoreSpec("h_score", "features", h_score),
        ScoreSpec(
            "regularized_h_score", "features", regularized_h_score, ("form",)
        ),
        ScoreSpec("gbc", "features", gbc, ("pca_dim", "form")),
        ScoreSpec("transrate", "features", transrate, ("eps", "form")),
    )
}
