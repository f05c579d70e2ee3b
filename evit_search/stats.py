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
    from scipy.stats import spearmanr  # scipy: half a second, not paid by every measuring worker

    return float(spearmanr(a, b).statistic) if len(a) > 1 else math.nan


def kendall(a: Sequence[float], b: Sequence[float]) -> float:
    from scipy.stats import kendalltau  # scipy: half a second, not paid by every measuring worker

    return float(kendalltau(a, b).statistic) if len(a) > 1 else math.nan


def is_missing(v) -> bool:
    """None or NaN: a value that was not measured (pandas turns None into NaN)."""
    return v is None or (isinstance(v, float) and math.isnan(v))


def pct_change(value: float | None, ref: float | None) -> float | None:
    """Percent change of ``value`` against ``ref``; None when either is missing or ``ref`` is 0."""
    if is_missing(value) or is_missing(ref) or ref == 0:
        return None
    return 100.0 * (value / ref - 1.0)


def sign_agreement(ours: list[float | None], theirs: list[float | None], tol: float = 0.0) -> tuple[int, int]:
    """How many (ours, paper) deltas have the same sign, over the pairs where both are present;
    deltas within ``tol`` of 0 count as 0."""
    def sgn(x):
        return 0 if abs(x) <= tol else (1 if x > 0 else -1)

    pairs = [(a, b) for a, b in zip(ours, theirs) if not is_missing(a) and not is_missing(b)]
    return sum(sgn(a) == sgn(b) for a, b in pairs), len(pairs)
