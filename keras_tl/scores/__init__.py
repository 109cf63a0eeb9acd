"""Pure numbers (NumPy/SciPy, no keras): transferability scores, statistics, continual
and multi-task measures, task metrics and linear CKA."""
