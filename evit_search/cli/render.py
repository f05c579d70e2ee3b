"""Rich tables of the domain's results: the front beside the reference, the trials, the status
line (the CLI's only place that formats them)."""

from __future__ import annotations

from rich.table import Table

from .. import storage as st
from ..reporting.markdown import fmt
from ..reporting.pareto import reference_sessions

ALWAYS = ("ok", "infeasible", "invalid", "duplicate", "failed")  # statuses the status line always counts


def status_line(s: st.Summary, total: int | None = None) -> str:
    """Counts per status and the most accurate member of the front (the same trial the front
    table shows)."""
    c = s.counts
    best = s.best
    best_txt = f"best on the front {best.accuracy:.2f}% at {best.ratio:.2f}x" if best else "no feasible trained yet"
    parts = [f"{k} {c.get(k, 0)}" for k in ALWAYS] + [f"{k} {v}" for k, v in sorted(c.items()) if k not in ALWAYS]
    return f"trials {s.trials}{'/' + str(total) if total else ''} | " + " | ".join(parts) + \
        f" | front {len(s.front)} | {best_txt}"


def _ratio_text(m: dict | None) -> str:
    if not m:
        return "-"
    if m.get("status") != "ok":
        return m.get("status") or "-"
    return f"{m['ratio_to_reference']:.2f}" if m.get("ratio_to_reference") else "-"


def front_table(s: st.Summary, attrs: dict) -> Table:
    """The feasible Pareto front beside the reference."""
    ref_res = attrs.get("reference_result") or {}
    t = Table(title=f"feasible Pareto front (budget {attrs.get('budget')}, reference {attrs.get('reference')})")
    # backends measured beside the budget's one (run --also-measure), in the order stored
    extra = list(dict.fromkeys(b for r in s.records for b in list(r.throughput)[1:]))
    knobs = [col for col, _ in st.KNOBS[:6]]
    for col in ("trial", *knobs, "params M", "FLOPs M", "img/s", "ratio", "proxy top-1 %", *(f"{b} ratio" for b in extra)):
        t.add_column(col, justify="left" if col in ("C", "L", "H") else "right")
    ref_cost = attrs.get("reference_cost") or {}
    sessions = reference_sessions(s.records, attrs)
    ref_cfg = attrs.get("reference_config")
    t.add_row("ref", *(st.stage_values(ref_cfg, key) for _, key in st.KNOBS[:6]),
              fmt(ref_cost.get("params_m"), 2), fmt(ref_cost.get("flops_m"), 0), fmt(sessions.median), "1.00",
              fmt(ref_res.get("top1"), 2), *("1.00" for _ in extra), style="bold")
    for r in s.front:
        t.add_row(str(r.number), *(st.stage_values(r.config, key) for _, key in st.KNOBS[:6]),
                  fmt((r.cost or {}).get("params_m"), 2), fmt((r.cost or {}).get("flops_m"), 0), fmt(r.images_per_s),
                  f"{r.ratio:.2f}", f"{r.accuracy:.2f}", *(_ratio_text(r.throughput.get(b)) for b in extra))
    # the ref row's img/s is the median over the sessions; each ratio is to its own session's reference
    t.caption = ("no feasible candidate was trained yet; " if not s.front else "") + sessions.text()
    return t


def trials_table(s: st.Summary) -> Table:
    t = Table("trial", "status", "top-1 %", "ratio", "params M", "FLOPs M", "knobs", "reason", title="all trials")
    for r in s.records:
        t.add_row(str(r.number), r.status, fmt(r.accuracy, 2), fmt(r.ratio, 3), fmt((r.cost or {}).get("params_m"), 2),
                  fmt((r.cost or {}).get("flops_m"), 0), r.knob_text(), r.reason or "")
    return t
