"""Study reports: markdown, CSV and a PNG Pareto plot (reads records, never builds models)."""

from __future__ import annotations

from pathlib import Path

from .. import storage as st
from ..search.budget import budget_ratio
from .markdown import ReportFiles, markdown_table
from .plots import figure


def pareto_plot(recs: list[st.TrialRecord], front: list[st.TrialRecord], path: Path, title: str,
                budget_ratio: float | None = None, reference_top1: float | None = None) -> None:
    with figure(path, figsize=(7, 5)) as (fig, ax):
        _pareto_axes(ax, recs, front, title, budget_ratio, reference_top1)


def _pareto_axes(ax, recs, front, title, budget_ratio, reference_top1) -> None:
    ok = [r for r in recs if r.status == "ok" and r.accuracy is not None]
    infeasible = [r for r in recs if r.status == "infeasible" and r.ratio is not None]
    ax.scatter([r.ratio for r in ok], [r.accuracy for r in ok], color="tab:blue", alpha=0.6, label="trained (feasible)")
    if infeasible:
        # not trained: no accuracy; drawn on the lower edge at their measured ratio
        lo = min([r.accuracy for r in ok] + [reference_top1 or 0]) if ok else 0
        ax.scatter([r.ratio for r in infeasible], [lo] * len(infeasible), marker="x", color="tab:gray",
                   label="infeasible (not trained), at its ratio")
    if front:
        fr = sorted(front, key=lambda r: r.ratio)
        ax.plot([r.ratio for r in fr], [r.accuracy for r in fr], "-o", color="tab:red", label="Pareto front")
        for r in fr:
            ax.annotate(f"#{r.number}", (r.ratio, r.accuracy), xytext=(4, 4), textcoords="offset points", fontsize=8)
    if reference_top1 is not None:
        ax.scatter([1.0], [reference_top1], marker="*", s=160, color="black", label="reference", zorder=5)
    if budget_ratio:
        ax.axvline(budget_ratio, color="tab:green", linestyle="--", label=f"budget {budget_ratio:g}x")
    ax.set_xlabel("throughput / reference (measured side by side)")
    ax.set_ylabel("proxy top-1 (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def write_study_report(store: st.StudyStore, reports_dir: Path) -> ReportFiles:
    s = store.summary()
    attrs = store.attrs
    files = ReportFiles.at(reports_dir, f"study-{store.name}")
    st.to_dataframe(s.records).to_csv(files.csv, index=False)
    ref = attrs.get("reference_result") or {}
    pareto_plot(s.records, s.front, files.png, store.name, budget_ratio(attrs.get("budget")), ref.get("top1"))
    front_df = st.to_dataframe(s.front)
    cols = [("number", "trial", 0), ("knobs", "knobs", 0), ("params_m", "params M", 2), ("flops_m", "FLOPs M", 0),
            ("ratio", "ratio", 3), ("accuracy", "proxy top-1 %", 2)]
    lines = [f"# Study `{store.name}`", "",
             f"Budget {attrs.get('budget')} against {attrs.get('reference')} on {attrs.get('backend')}; "
             f"settings {attrs.get('settings')}.", "",
             "Trials: " + ", ".join(f"{k} {v}" for k, v in sorted(s.counts.items())), "",
             f"Reference proxy top-1: {ref.get('top1'):.2f} %" if ref.get("top1") is not None else "Reference not trained.", "",
             "## Feasible Pareto front", "", markdown_table(front_df, cols) if len(front_df) else "(empty)"]
    failed = [r for r in s.records if r.status == "failed"]
    if failed:
        lines += ["", "## Failed trials", ""] + [f"- #{r.number}: {r.reason}" for r in failed]
    files.write_md(lines, next((r.env for r in s.records if r.env), {}))
    return files
