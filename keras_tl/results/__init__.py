"""Results of a run: `Results` (JSON/CSV, provenance), the summary and `rebuild`."""

from keras_tl.results.results import SCHEMA_VERSION, Results, provenance
from keras_tl.results.summary import build_results, rebuild, results_from_store

__all__ = [
    "SCHEMA_VERSION",
    "Results",
    "build_results",
    "provenance",
    "rebuild",
    "results_from_store",
]
