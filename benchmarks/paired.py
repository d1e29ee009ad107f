"""Paired comparison of two methods over the same seeds: mean difference and its 95% t-interval."""

from __future__ import annotations

import numpy as np
from scipy import stats


def paired_interval(differences) -> tuple[float, float, float]:
    """(mean, low, high) of per-seed differences; the interval is NaN with fewer than two seeds."""
    diff = np.asarray(differences, dtype=np.float64)
    mean = float(diff.mean())
    if len(diff) < 2:
        return mean, np.nan, np.nan
    half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
    return mean, mean - half, mean + half
