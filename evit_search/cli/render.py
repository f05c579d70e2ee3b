"""Rich tables of the domain's results: the front beside the reference, the trials, the status
line (the CLI's only place that formats them)."""

from __future__ import annotations

from rich.table import Table

from .. import storage as st
from ..reporting.accuracy import delta_text, delta_to_reference, indistinguishable_from, reference_noise
from ..reporting.markdown import fmt, ratio_ci_text
from ..reporting.pareto import reference_sessions

ALWAYS = ("ok", "infeasible", "invalid", "duplicate", "failed")  # statuses the status line always counts
RATIO_CAPTION = ("ratio: median of the per-round ratios to the reference in the same session; [CI]: the "
                 "order-statistic interval of that median with its real coverage (95 % needs 6 rounds or more). "
                 "budget: 'borderline' when the interval still contained the budget after a second, longer "
                 "measurement (decided on the median). ")


def status_line(s: st.Summary, total: int | None = None) -> str:
    """Counts per status and the most accurate member of the front (the same trial the front
    table shows)."""
    c = s.counts
    best = s.best
    # the front table's cells, from the same record: the same trial, accuracy and ratio
    best_txt = (f"best on the front: trial {_trial_label(best)}, {best.accuracy:.2f}% at {best.ratio:.2f}x" if best
                else "no feasible trained yet")
    parts = [f"{k} {c.get(k, 0)}" for k in ALWAYS] + [f"{k} {v}" for k, v in sorted(c.items()) if k not in ALWAYS]
    return f"trials {s.trials}{'/' + str(total) if total else ''} | " + " | ".join(parts) + \
        f" | front {len(s.front)} | {best_txt}"


def _ratio_text(m: dict | None) -> str:
    if not m:
        return "-"
    if m.get("status") != "ok":
        return m.get("status") or "-"
    return f"{m['ratio_to_reference']:.2f}" if m.get("ratio_to_reference") else "-"


def _ratio_cell(r: st.TrialRecord) -> str:
    """The ratio with its interval and the interval's real coverage: ``1.62 [1.55, 1.70] 93.8 % CI``."""
    if r.ratio is None:
        return "-"
    ci = ratio_ci_text(r.primary_throughput, 2)
    return f"{r.ratio:.2f}" + (f" {ci}" if ci else "")


def front_table(s: st.Summary, attrs: dict, width: int | None = None) -> Table:
    """The feasible Pareto front beside the reference: each ratio with its interval and that
    interval's real coverage, its budget verdict, and each accuracy as a difference to the
    reference's with its 95 % interval from the measured seed noise and the verdict. On a
    terminal narrower than :data:`KNOBS_MIN_WIDTH` the stage-wise knobs are left out (the caption
    says where they are) so that the figures a row is read for are never cut."""
    noise = reference_noise(attrs)
    same = indistinguishable_from(s.front, noise)
    ref_res = attrs.get("reference_result") or {}
    t = Table(title=f"feasible Pareto front (budget {attrs.get('budget')}, reference {attrs.get('reference')})")
    # backends measured beside the budget's one (run --also-measure), in the order stored
    extra = list(dict.fromkeys(b for r in s.records for b in list(r.throughput)[1:]))
    n_knobs = 6 if width is None or width >= KNOBS_MIN_WIDTH else 0
    knobs = [col for col, _ in st.KNOBS[:n_knobs]]
    for col in ("trial", *knobs, "params M", "FLOPs M", "img/s", "ratio [CI]", "budget", "val top-1 %", "trained",
                "Δ vs ref [95 % CI]", "same as", "test top-1 %", *(f"{b} ratio" for b in extra)):
        # a narrow terminal shrinks the stage-wise knobs first; the figures a row is read for are folded, never cut
        t.add_column(col, justify="left" if col in ("C", "L", "H", "budget", "Δ vs ref [95 % CI]", "same as")
                     else "right", overflow="fold", min_width=FRONT_MIN_WIDTH.get(col))
    ref_cost = attrs.get("reference_cost") or {}
    sessions = reference_sessions(s.records, attrs)
    ref_cfg = attrs.get("reference_config")
    t.add_row("ref", *(st.stage_values(ref_cfg, key) for _, key in st.KNOBS[:n_knobs]),
              fmt(ref_cost.get("params_m"), 2), fmt(ref_cost.get("flops_m"), 0), fmt(sessions.median), "1.00", "",
              fmt(ref_res.get("top1"), 2) + (f" ± {ref_res['top1_sd']:.2f}" if ref_res.get("top1_sd") is not None else ""),
              "100 %" if ref_res.get("top1") is not None else "-", f"{noise.n} seeds" if noise.n else "-", "", fmt(ref_res.get("test_top1"), 2),
              *("1.00" for _ in extra), style="bold")
    for r in s.front:
        t.add_row(*_candidate_cells(r, n_knobs), delta_text(delta_to_reference(r, noise)),
                  " ".join(f"#{n}" for n in same.get(r.number, [])), fmt((r.train or {}).get("test_top1"), 2),
                  *(_ratio_text(r.throughput.get(b)) for b in extra))
    lower = st.lower_rung_front(s.records)
    for r in lower:  # may yet join the front: their accuracy is a rung's, not comparable to the rows above
        t.add_row(*_candidate_cells(r, n_knobs), NOT_COMPARABLE, "",
                  "-", *(_ratio_text(r.throughput.get(b)) for b in extra), style="italic")
    shown = {r.number for r in lower}
    for r, where in paper_models_off_the_front(s):
        if r.number in shown:
            continue
        t.add_row(*_candidate_cells(r, n_knobs), where, "",
                  fmt((r.train or {}).get("test_top1"), 2),
                  *(_ratio_text(r.throughput.get(b)) for b in extra), style="dim")
    # the ref row's img/s is the median over the sessions; each ratio is to its own session's reference
    t.caption = (("no feasible candidate was trained yet. " if not s.front else
                  f"val top-1: the split candidates are selected on (held out from train); test top-1: reported, never "
                  f"selected on. {noise.describe()}; Δ: one candidate run against the reference's mean, 95 % Student-t "
                  f"interval from the reference's seed SD. 'same as': front members it cannot be told apart from. "
                  f"trained: the share of the protocol's training behind the val top-1 (rung r of successive halving); "
                  f"the front holds fully trained candidates only, rows below 100 % are {NOT_COMPARABLE}. ")
                 + RATIO_CAPTION
                 + sessions.text()
                 + ("" if n_knobs else f" The stage-wise knobs (C, L, H, N, QK, V) need {KNOBS_MIN_WIDTH} columns: see "
                                       "`show --csv` or the TUI."))
    return t


NOT_COMPARABLE = "not comparable: a lower rung's accuracy"
# the narrowest each figure may get: wide enough for its usual value ("83.18 ± 0.75", "-0.10 [-3.80, +3.60]")
KNOBS_MIN_WIDTH = 170  # below this the knobs would squeeze the figures into ellipses
FRONT_MIN_WIDTH = {"trial": 6, "params M": 5, "FLOPs M": 4, "img/s": 5, "ratio [CI]": 6, "budget": 6,
                   "val top-1 %": 7, "trained": 5, "Δ vs ref [95 % CI]": 8, "test top-1 %": 5}


def _candidate_cells(r: st.TrialRecord, n_knobs: int) -> list[str]:
    """A candidate row's leading cells, the same for the front, lower-rung and paper-model rows:
    trial, stage-wise knobs, params, FLOPs, img/s, ratio, budget verdict, accuracy, fidelity."""
    cost = r.cost or {}
    return [_trial_label(r), *(st.stage_values(r.config, key) for _, key in st.KNOBS[:n_knobs]),
            fmt(cost.get("params_m"), 2), fmt(cost.get("flops_m"), 0), fmt(r.images_per_s), _ratio_cell(r),
            r.budget_verdict or "-", fmt(r.accuracy, 2), trained_text(r)]


def trained_text(r: st.TrialRecord) -> str:
    """How much of the protocol's training the accuracy reflects: ``100 %``, ``11 % rung 0``."""
    if r.accuracy is None or r.fidelity is None:
        return "-"
    return f"{100 * r.fidelity:.0f} %" + (f" rung {r.rung}" if r.rung is not None else "")


def _trial_label(r: st.TrialRecord) -> str:
    return f"{r.number} ({r.paper_model.replace('efficientvit_', '').upper()})" if r.paper_model else str(r.number)


def paper_models_off_the_front(s: st.Summary) -> list[tuple[st.TrialRecord, str]]:
    """The paper's models of the study that are not on the front, with where they stand."""
    on_front = {r.number for r in s.front}
    out = []
    for r in s.records:
        if not r.paper_model or r.number in on_front or r.status == "duplicate":
            continue
        if r.status == "ok" and (r.fidelity or 1.0) < 1.0:  # a rung's accuracy says nothing against the front's
            out.append((r, f"{NOT_COMPARABLE}; not promoted yet"))
        elif r.status == "ok":
            by = next((f.number for f in s.front if f.accuracy >= r.accuracy and f.ratio >= r.ratio), None)
            out.append((r, f"dominated by #{by}" if by is not None else "dominated"))
        else:
            out.append((r, f"{r.status}: {r.reason or ''}"[:60]))
    return out


def trials_table(s: st.Summary) -> Table:
    t = Table("trial", "status", "val top-1 %", "trained", "ratio", "budget", "params M", "FLOPs M", "knobs", "reason",
              title="all trials (val top-1 after the share of the protocol's training in 'trained')")
    for r in s.records:
        t.add_row(_trial_label(r), r.status, fmt(r.accuracy, 2), trained_text(r), fmt(r.ratio, 3), r.budget_verdict or "-",
                  fmt((r.cost or {}).get("params_m"), 2),
                  fmt((r.cost or {}).get("flops_m"), 0), r.knob_text(), r.reason or "")
    return t
