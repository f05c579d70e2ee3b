"""Small statistics used by measurements and reports (no torch, no optuna)."""

from __future__ import annotations

import math
import statistics
from typing import Sequence


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def spread(values: Sequence[float]) -> float:
    """max/min - 1: the relative range of repeated measurements."""
    lo = min(values)
    return float(max(values) / lo - 1.0) if lo > 0 else math.inf


def median_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median from order statistics.

    The largest k whose interval keeps the coverage >= ``confidence`` is taken; below 9 values
    that is k = 0 at 95 %, the whole range.
    """
    xs = sorted(values)
    n = len(xs)
    # [x_k, x_(n-1-k)] (0-indexed) covers the median with probability 1 - 2 P(Bin(n, 1/2) <= k)
    lo_i, cum = 0, 0.0
    for k in range(n // 2):
        cum += math.comb(n, k) / 2**n
        if 2 * cum > 1 - confidence:
            break
        lo_i = k
    hi_i = n - 1 - lo_i
    return float(xs[lo_i]), float(xs[hi_i])


def relative_ci_width(values: Sequence[float], confidence: float = 0.95) -> float:
    lo, hi = median_ci(values, confidence)
    m = median(values)
    return (hi - lo) / m if m > 0 else math.inf


def paired_ratio(values: Sequence[float], reference: Sequence[float]) -> list[float]:
    """Per-round ratios of a model to the reference measured in the same round: slow drifts of
    the machine cancel in each pair."""
    return [v / r for v, r in zip(values, reference) if r > 0]


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic) if len(a) > 1 else math.nan


def kendall(a: Sequence[float], b: Sequence[float]) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(a, b).statistic) if len(a) > 1 else math.nan
