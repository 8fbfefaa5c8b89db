"""How unequal a frequency distribution is: the statistic the long-tail analyses report."""

from __future__ import annotations

import numpy as np


def gini(counts) -> float:
    """Gini coefficient of a frequency vector (0: all equal, towards 1: concentrated)."""
    x = np.sort(np.asarray(counts, dtype=float))
    if len(x) == 0 or x.sum() == 0:
        return 0.0
    n = len(x)
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum()))
