"""Are the zero-cost scores worth anything here? Kendall tau of each score against the paper's
top-1 and against our trained proxy, beside what params and FLOPs alone give, and whether the
score does more than count size. Pure maths over plain rows (no torch): the Table 6 report, the
zero-cost calibration report and proxy-check use it.

White et al. (2022) found FLOPs had the best average rank over 12 tasks and that synflow behaves
as a soft parameter counter; a score is named "tracks size" when |tau| against params or FLOPs is
at least :data:`SIZE_TAU` over the same rows, because then it adds nothing a size count does not.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ..reporting.markdown import fmt
from ..stats import is_missing

ZEROCOST_SCORES = ("synflow", "snip", "grad_norm", "naswot")  # the order of evit_search.training.zerocost.SCORES
SIZE = ("params_m", "flops_m")
SIZE_TAU = 0.9


@dataclass
class CalibrationRow:
    """One model: its size, its scores, its trained proxy top-1 (None when not trained) and the
    paper's top-1."""

    name: str
    params_m: float | None
    flops_m: float | None
    scores: dict[str, float] = field(default_factory=dict)
    proxy_top1: float | None = None
    paper_top1: float | None = None

    def value(self, key: str) -> float | None:
        if key in SIZE:
            return getattr(self, key)
        return self.scores.get(key)


@dataclass
class ScoreTau:
    """One predictor (a score, or params/FLOPs themselves) against each reference."""

    name: str
    tau_paper: float | None
    p_paper: float | None
    n_paper: int
    tau_proxy: float | None
    p_proxy: float | None
    n_proxy: int
    tau_params: float | None
    tau_flops: float | None
    tracks_size: bool


@dataclass
class Calibration:
    """The taus of every predictor over one set of models (e.g. ``M0-M5`` or ``Table 6``)."""

    set_name: str
    rows: list[CalibrationRow]
    taus: list[ScoreTau]

    def to_dict(self) -> dict:
        return asdict(self)

    def tau(self, name: str) -> ScoreTau | None:
        return next((t for t in self.taus if t.name == name), None)

    @property
    def trained(self) -> bool:
        return any(not is_missing(r.proxy_top1) for r in self.rows)


def kendall_with_p(a: list[float], b: list[float]) -> tuple[float | None, float | None]:
    """Kendall tau-b and its two-sided p-value (exact for small sets without ties); None when
    fewer than 3 pairs or either side is constant."""
    if len(a) < 3:
        return None, None
    from scipy.stats import kendalltau  # scipy: half a second, only when a calibration is computed

    res = kendalltau(a, b)
    tau, p = float(res.statistic), float(res.pvalue)
    return (None, None) if math.isnan(tau) else (tau, None if math.isnan(p) else p)


def _pairs(rows: list[CalibrationRow], key: str, ref: str) -> tuple[list[float], list[float]]:
    pairs = [(r.value(key), getattr(r, ref) if ref in ("proxy_top1", "paper_top1") else r.value(ref)) for r in rows]
    pairs = [(a, b) for a, b in pairs if not is_missing(a) and not is_missing(b)]
    return [a for a, _ in pairs], [b for _, b in pairs]


def calibrate(set_name: str, rows: list[CalibrationRow], scores: tuple[str, ...] = ZEROCOST_SCORES) -> Calibration:
    """Kendall tau of each score (and of params and FLOPs) against the paper's top-1, against the
    trained proxy, and against params and FLOPs; scores with |tau| >= SIZE_TAU against either
    size count are flagged as tracking size."""
    taus = []
    for name in (*scores, *SIZE):
        tp, pp = kendall_with_p(*_pairs(rows, name, "paper_top1"))
        tq, pq = kendall_with_p(*_pairs(rows, name, "proxy_top1"))
        t_params = kendall_with_p(*_pairs(rows, name, "params_m"))[0]
        t_flops = kendall_with_p(*_pairs(rows, name, "flops_m"))[0]
        size_like = name not in SIZE and any(t is not None and abs(t) >= SIZE_TAU for t in (t_params, t_flops))
        taus.append(ScoreTau(name, tp, pp, len(_pairs(rows, name, "paper_top1")[0]), tq, pq,
                             len(_pairs(rows, name, "proxy_top1")[0]), t_params, t_flops, size_like))
    return Calibration(set_name, rows, taus)


def significance_note(n: int) -> str:
    """What a tau over ``n`` models can show (exact two-sided test, p < 0.05)."""
    need = {6: "0.867", 11: "about 0.49"}.get(n)
    return (f"over {n} models a tau must reach {need} to be significant (p < 0.05)" if need
            else f"over {n} models; p-values are exact two-sided Kendall tests")


def calibration_md(cal: Calibration) -> list[str]:
    """Markdown: one line per predictor, with what it says in words."""
    lines = [f"| predictor ({cal.set_name}) | tau vs paper top-1 | p | tau vs trained proxy | p | tau vs params | "
             "tau vs FLOPs | reads as |", "|---|---|---|---|---|---|---|---|"]
    for t in cal.taus:
        if t.name in SIZE:
            word = "size count (baseline)"
        elif t.tracks_size:
            word = "tracks size"
        else:
            word = "more than size"
        proxy = (fmt(t.tau_proxy, 3), fmt(t.p_proxy, 3)) if cal.trained else ("no trained proxy yet", "-")
        lines.append(f"| {t.name} | {fmt(t.tau_paper, 3)} | {fmt(t.p_paper, 3)} | {proxy[0]} | {proxy[1]} | "
                     f"{fmt(t.tau_params, 3)} | {fmt(t.tau_flops, 3)} | {word} |")
    n = max((t.n_paper for t in cal.taus), default=0)
    lines += ["", f"Kendall tau-b; {significance_note(n)}. A score is named \"tracks size\" when |tau| against params "
              f"or FLOPs is >= {SIZE_TAU}: then it ranks these models as a size count would and adds nothing to it."]
    scores = [t for t in cal.taus if t.name not in SIZE and t.tau_paper is not None]
    size_best = max((t.tau_paper for t in cal.taus if t.name in SIZE and t.tau_paper is not None), default=None)
    if scores and size_best is not None:
        above = [f"{t.name} ({t.tau_paper:.3f})" for t in scores if t.tau_paper > size_best]
        sig = [t for t in scores if t.p_paper is not None and t.p_paper < 0.05]
        pos = ", ".join(t.name for t in sig if t.tau_paper > 0) or "none"
        neg = ", ".join(t.name for t in sig if t.tau_paper < 0) or "none"
        lines.append(f"Against the paper's top-1: the better size count reaches tau {size_best:.3f}; scores above it: "
                     f"{', '.join(above) or 'none'}; significant (p < 0.05) in the paper's direction: {pos}; "
                     f"significant against it (ranking backwards): {neg}.")
    return lines
