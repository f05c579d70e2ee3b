"""Small statistics used by measurements and reports (no torch, no optuna): order-statistic
intervals of medians, paired ratios, rank correlations, and the seed noise of accuracies."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Hashable, Mapping, Sequence


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def spread(values: Sequence[float]) -> float:
    """max/min - 1: the relative range of repeated measurements."""
    lo = min(values)
    return float(max(values) / lo - 1.0) if lo > 0 else math.inf


MIN_ROUNDS_95 = 6  # the fewest values whose order-statistic interval of the median covers >= 95 %


def median_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Distribution-free confidence interval of the median from order statistics, and the
    coverage it really has: ``(low, high, coverage)``.

    The narrowest interval ``[x_(k), x_(n-1-k)]`` whose coverage is at least ``confidence`` is
    taken. Below :data:`MIN_ROUNDS_95` values no interval reaches 95 %: the whole range is
    returned with its real coverage (93.75 % at 5 values, 87.5 % at 4, 75 % at 3).
    """
    xs = sorted(values)
    n = len(xs)
    lo_i = _order_index(n, confidence)
    return float(xs[lo_i]), float(xs[n - 1 - lo_i]), median_ci_coverage(n, confidence)


def _order_index(n: int, confidence: float) -> int:
    """The k of the narrowest interval [x_k, x_(n-1-k)] (0-indexed) reaching ``confidence``
    (0, the whole range, when none does)."""
    # [x_k, x_(n-1-k)] covers the median with probability 1 - 2 P(Bin(n, 1/2) <= k)
    lo_i, cum = 0, 0.0
    for k in range(n // 2):
        cum += math.comb(n, k) / 2**n
        if 2 * cum > 1 - confidence:
            break
        lo_i = k
    return lo_i


def median_ci_coverage(n: int, confidence: float = 0.95) -> float:
    """The real coverage of :func:`median_ci`'s interval over ``n`` values: it depends on ``n``
    alone (0.9375 at 5, 0.96875 at 6), so it can be told for records that did not store it."""
    if n < 2:
        return 0.0
    lo_i = _order_index(n, confidence)
    return 1.0 - 2.0 * sum(math.comb(n, j) for j in range(lo_i + 1)) / 2**n


def stored_ci_coverage(m: dict | None) -> float | None:
    """The real coverage of a stored throughput measurement's intervals (a ThroughputRecord as a
    dict): as stored, else from its rounds (records stored before the coverage was; it depends
    on the count alone); None when neither is known."""
    if not m:
        return None
    if not is_missing(m.get("ci_coverage")):
        return float(m["ci_coverage"])
    return median_ci_coverage(int(m["rounds"])) if m.get("rounds") else None


def relative_ci_width(values: Sequence[float], confidence: float = 0.95) -> float:
    lo, hi, _ = median_ci(values, confidence)
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


def kendall_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Kendall's tau(-b) and its two-sided p-value: exact without ties (n = 6 needs tau >= 0.867
    for p < 0.05), scipy's asymptotic one with ties."""
    from scipy.stats import kendalltau  # scipy: half a second, not paid by every measuring worker

    if len(a) < 2:
        return math.nan, math.nan
    r = kendalltau(a, b, method=kendall_method(a, b))
    return float(r.statistic), float(r.pvalue)


def kendall_method(a: Sequence[float], b: Sequence[float]) -> str:
    """How :func:`kendall_test` computes its p: ``exact`` (up to 50 pairs of values, no ties: scipy's
    exact method refuses ties), else ``auto`` (scipy's asymptotic one)."""
    ties = len(set(a)) < len(a) or len(set(b)) < len(b)
    return "exact" if len(a) <= 50 and not ties else "auto"


# --------------------------------------------------------------------------- seed noise
@dataclass(frozen=True)
class SeedNoise:
    """Repeated runs of one design that differ only in the seed."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(statistics.fmean(self.values))

    @property
    def sd(self) -> float | None:
        """Sample standard deviation (None below two runs: the noise is not measured)."""
        return float(statistics.stdev(self.values)) if self.n >= 2 else None


def pooled_sd(groups: Sequence[Sequence[float]]) -> tuple[float | None, int]:
    """Seed SD pooled over designs (each group: one design's runs) and its degrees of freedom."""
    ss = sum(sum((v - statistics.fmean(g)) ** 2 for v in g) for g in groups if len(g) >= 2)
    df = sum(len(g) - 1 for g in groups if len(g) >= 2)
    return (math.sqrt(ss / df), df) if df > 0 else (None, 0)


def _seed_table(runs: Mapping[Hashable, Mapping[Hashable, float]]) -> list[list[float]] | None:
    """The runs as a designs x seeds table (seeds in order) when every design was run with the same
    seeds, two designs and two seeds at least; else None."""
    seeds = {frozenset(v) for v in runs.values()}
    if len(runs) < 2 or len(seeds) != 1 or len(next(iter(seeds))) < 2:
        return None
    order = sorted(next(iter(seeds)))
    return [[v[s] for s in order] for v in runs.values()]


def blocked_sd(runs: Mapping[Hashable, Mapping[Hashable, float]]) -> tuple[float | None, int]:
    """Seed SD with the seeds as blocks: ``runs`` maps each design to its runs by seed. When every
    design was run with the same seeds (two designs and two seeds at least), a seed shifts every
    design alike (same data order and augmentation), so the SD that bears on a difference between
    two designs is the residual of the additive fit design + seed, with (designs - 1)(seeds - 1)
    degrees of freedom; a paired difference of means over n seeds then has variance 2 sd^2 / n.
    (None, 0) when the design is not complete, or the fit is exact (no noise measured)."""
    table = _seed_table(runs)
    if table is None:
        return None, 0
    grand = statistics.fmean(x for row in table for x in row)
    row_means = [statistics.fmean(row) for row in table]
    seed_means = [statistics.fmean(col) for col in zip(*table)]
    ss = sum((x - rm - sm + grand) ** 2 for row, rm in zip(table, row_means) for x, sm in zip(row, seed_means))
    df = (len(table) - 1) * (len(table[0]) - 1)
    return (math.sqrt(ss / df), df) if ss > 0 else (None, 0)  # an exact fit measures no noise


def seed_shift_p(runs: Mapping[Hashable, Mapping[Hashable, float]]) -> float | None:
    """The F test's p that the seeds shift the designs' runs at all (the seed term of the additive
    fit of :func:`blocked_sd` against its residual); None when that fit does not apply."""
    from scipy.stats import f as fisher_f  # scipy: half a second, not paid by every measuring worker

    sd, df = blocked_sd(runs)
    if sd is None:
        return None
    cols = list(zip(*_seed_table(runs)))
    grand = statistics.fmean(x for col in cols for x in col)
    between = len(runs) * sum((statistics.fmean(c) - grand) ** 2 for c in cols) / (len(cols) - 1)
    return float(fisher_f.sf(between / sd ** 2, len(cols) - 1, df))


@dataclass(frozen=True)
class Delta:
    """A difference between two designs' accuracies with its interval from the measured seed
    noise, and what it allows one to say."""

    delta: float
    low: float | None
    high: float | None
    confidence: float

    @property
    def verdict(self) -> str:
        """``better`` or ``worse`` when the interval excludes 0, else ``indistinguishable`` (also
        when the noise was not measured)."""
        if self.low is None or self.high is None:
            return "indistinguishable"
        if self.low > 0:
            return "better"
        if self.high < 0:
            return "worse"
        return "indistinguishable"


def delta_interval(a_mean: float, n_a: int, b_mean: float, n_b: int, sd: float | None, df: int,
                   confidence: float = 0.95) -> Delta:
    """``a - b`` with a Student-t interval: the difference has variance sd^2 (1/n_a + 1/n_b), with
    ``sd`` the seed noise measured with ``df`` degrees of freedom, assumed the same for both designs:
    the SD of one design's runs for independent runs, or the residual SD of :func:`blocked_sd` for
    designs paired by seed (a shift that a seed gives both designs cancels in the difference). The
    confidence holds per comparison; several deltas judged at once are not corrected together."""
    from scipy.stats import t as student_t  # scipy: half a second, not paid by every measuring worker

    d = a_mean - b_mean
    if sd is None or df < 1:
        return Delta(d, None, None, confidence)
    half = float(student_t.ppf(0.5 + confidence / 2, df)) * sd * math.sqrt(1 / n_a + 1 / n_b)
    return Delta(d, d - half, d + half, confidence)


def half_widths(sd: float | None, n: int, confidence: float = 0.95) -> dict[str, float | None]:
    """Half widths of Student-t intervals from a seed SD measured over ``n`` runs of one design
    (``n - 1`` degrees of freedom): ``delta`` for one run of a candidate minus that design's mean,
    ``pair`` for one run minus another, ``single`` for one run around its own mean."""
    if sd is None or n < 2:
        return {"delta": None, "pair": None, "single": None}
    from scipy.stats import t as student_t  # scipy: half a second, not paid by every measuring worker

    q = float(student_t.ppf(0.5 + confidence / 2, n - 1)) * sd
    return {"delta": q * math.sqrt(1 + 1 / n), "pair": q * math.sqrt(2), "single": q}
