"""The Pareto picture of a study, computed once and drawn twice (the report's PNG, the TUI's plot).

Which trials are on the front and in what order, which carry no value on the y axis (they go on a
strip of their own, never at a made-up accuracy), where the reference, the paper's models and the
budget go, and axis limits with a margin. No matplotlib and no Textual here: this module only
decides what to draw.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

from .. import storage as st
from ..search.budget import budget_ratio

# the pairs (x, y) a plot can show: every measured objective against accuracy, cost against speed
AXES: list[tuple[str, str]] = [("ratio", "accuracy"), ("images_per_s", "accuracy"), ("flops_m", "accuracy"),
                               ("params_m", "accuracy"), ("flops_m", "ratio"), ("params_m", "ratio")]
OBJECTIVES = ("ratio", "accuracy")  # the study's own objectives: the only pair whose front is a staircase
TITLES = {"ratio": "ratio to the reference (same session)", "accuracy": "proxy top-1 %", "images_per_s": "img/s",
          "flops_m": "FLOPs M", "params_m": "params M"}
SHORT_TITLES = {"ratio": "ratio to the reference"}  # where the plot has no room for the whole title
LONG_TITLES = {**TITLES, "ratio": "throughput / the reference's, each measured in the trial's own session",
               "images_per_s": "throughput (img/s)", "flops_m": "FLOPs (M, fused)", "params_m": "params (M)"}
MARGIN = 0.08  # of the span, on each side of the axis: no point sits on the frame


def value(r: st.TrialRecord, key: str) -> float | None:
    """A measured quantity of a trial (None when it was not measured)."""
    if key in ("ratio", "accuracy"):
        return getattr(r, key)
    if key == "images_per_s":
        return r.images_per_s
    return (r.cost or {}).get(key)


def short_model(name: str | None) -> str:
    """``efficientvit_m3`` -> ``M3``; other names unchanged."""
    m = re.fullmatch(r"efficientvit_m(\d)", name or "")
    return f"M{m.group(1)}" if m else (name or "?")


@dataclass(frozen=True)
class PlotPoint:
    number: int | None  # the trial; None for the reference
    x: float
    y: float | None  # None: drawn on the strip below the axis, at its measured x
    kind: str  # front | trained | untrained | failed | reference
    label: str | None = None  # "#5", "M3", "#5 M3", "ref M4"
    paper: str | None = None  # the paper's model, short ("M3")
    ci: tuple[float, float] | None = None  # an interval on y (seed noise), drawn as an error bar


@dataclass(frozen=True)
class ReferenceSessions:
    """The reference's throughput over the study's sessions: every trial's ratio is to its own."""

    model: str
    backend: str
    sessions: int
    median: float | None
    low: float | None
    high: float | None

    def text(self) -> str:
        if not self.sessions:
            return f"reference {self.model}: no session measured yet"
        return (f"ratios are to {self.model} measured in each trial's own session ({self.backend}: median "
                f"{self.median:.1f} img/s, range {self.low:.1f}-{self.high:.1f} over {self.sessions} sessions)")


def reference_sessions(records: list[st.TrialRecord], attrs: dict) -> ReferenceSessions:
    backend = attrs.get("backend") or next((b for r in records for b in r.reference_throughput), "-")
    ips = [m["images_per_s"] for r in records for b, m in r.reference_throughput.items()
           if b == backend and m.get("images_per_s")]
    return ReferenceSessions(short_model(attrs.get("reference") or "the reference"), backend, len(ips),
                             statistics.median(ips) if ips else None, min(ips, default=None), max(ips, default=None))


@dataclass(frozen=True)
class ParetoInfo:
    axes: tuple[str, str]
    points: tuple[PlotPoint, ...]  # every trial with an x value, the front last
    front: tuple[PlotPoint, ...]  # the front's members that have both values, by x
    step: tuple[tuple[float, float], ...]  # the front as a staircase (only on the objectives' own axes)
    reference: PlotPoint | None
    budget: tuple[str, float] | None  # ("x" or "y", the budget's ratio) when an axis is the ratio
    budget_label: str
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    strip_label: str  # what the strip below the axis holds: "not trained" or "not measured"

    @property
    def titles(self) -> tuple[str, str]:
        return TITLES[self.axes[0]], TITLES[self.axes[1]]

    @property
    def strip(self) -> tuple[PlotPoint, ...]:
        return tuple(p for p in self.points if p.y is None)

    @property
    def has_strip(self) -> bool:
        return bool(self.strip) or (self.reference is not None and self.reference.y is None)

    def kinds(self) -> set[str]:
        return {p.kind for p in self.points}


def _kind(r: st.TrialRecord, front: set[int]) -> str:
    if r.number in front:
        return "front"
    if r.accuracy is not None:
        return "trained"
    return "failed" if r.status == "failed" else "untrained"


def _limits(values: list[float]) -> tuple[float, float]:
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    span = hi - lo or (abs(hi) * 0.1 or 1.0)
    return lo - MARGIN * span, hi + MARGIN * span


def _reference(records: list[st.TrialRecord], attrs: dict, axes: tuple[str, str]) -> PlotPoint | None:
    if not attrs.get("reference"):  # an ablation study, say: nothing to mark
        return None
    known = {"ratio": 1.0, "accuracy": (attrs.get("reference_result") or {}).get("top1"),
             "images_per_s": reference_sessions(records, attrs).median,
             **{k: (attrs.get("reference_cost") or {}).get(k) for k in ("flops_m", "params_m")}}
    x, y = known.get(axes[0]), known.get(axes[1])
    if x is None:
        return None
    return PlotPoint(None, x, y, "reference", f"ref {short_model(attrs.get('reference'))}")


def pareto_info(records: list[st.TrialRecord], front: set[int], attrs: dict,
                axes: tuple[str, str] = OBJECTIVES) -> ParetoInfo:
    """What a Pareto plot of these trials on ``axes`` (x, y) shows; ``front``: the front's trial numbers."""
    pts = []
    for r in records:
        x, y = value(r, axes[0]), value(r, axes[1])
        if x is None:
            continue
        kind = _kind(r, front)
        paper = short_model(r.paper_model) if r.paper_model else None
        label = " ".join(t for t in (f"#{r.number}" if kind == "front" else None, paper) if t) or None
        pts.append(PlotPoint(r.number, x, y, kind, label, paper, r.accuracy_ci if axes[1] == "accuracy" else None))
    pts.sort(key=lambda p: p.kind == "front")
    fr = tuple(sorted((p for p in pts if p.kind == "front" and p.y is not None), key=lambda p: (p.x, -p.y)))
    # maximising both: from each member the front runs right at its height, then down to the next
    step = tuple((p.x, p.y) for p in fr) if axes == OBJECTIVES else ()
    ref = _reference(records, attrs, axes)
    b = budget_ratio(attrs.get("budget"))
    budget = ("x", b) if b and axes[0] == "ratio" else ("y", b) if b and axes[1] == "ratio" else None
    xs = [p.x for p in pts] + ([ref.x] if ref else []) + ([budget[1]] if budget and budget[0] == "x" else [])
    ys = [v for p in pts if p.y is not None for v in (p.y, *(p.ci or ()))] + \
         ([ref.y] if ref and ref.y is not None else []) + ([budget[1]] if budget and budget[0] == "y" else [])
    return ParetoInfo(axes, tuple(pts), fr, step, ref, budget, f"budget {b:g}x" if b else "", _limits(xs),
                      _limits(ys), "not trained" if axes[1] == "accuracy" else "not measured")
