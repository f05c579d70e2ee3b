"""Study reports: markdown, CSV and a PNG Pareto plot (reads records, never builds models)."""

from __future__ import annotations

from pathlib import Path

from .. import storage as st
from .accuracy import delta_text, delta_to_reference, indistinguishable_from, reference_noise
from .markdown import ReportFiles, markdown_table, ratio_ci_text
from .pareto import LONG_TITLES, ParetoInfo, pareto_info, reference_sessions
from .plots import figure
from .predictions import prediction_error

COLORS = {"front": "tab:red", "trained": "tab:blue", "untrained": "tab:gray", "failed": "darkred",
          "reference": "black", "paper": "goldenrod", "budget": "tab:green"}


def pareto_plot(info: ParetoInfo, path: Path, title: str) -> None:
    """The front as a labelled staircase over every trained trial, the reference and the paper's
    models labelled, the budget in the legend, and a strip below for the trials without accuracy."""
    strip = info.has_strip
    grid = {"height_ratios": [7, 1]} if strip else None
    with figure(path, nrows=2 if strip else 1, sharex=True, figsize=(9, 5.6), gridspec_kw=grid) as (fig, axes):
        ax, sax = (axes[0], axes[1]) if strip else (axes, None)
        draw_front_axes(ax, info)
        if sax is not None:
            draw_strip(sax, info)
        (sax if sax is not None else ax).set_xlabel(LONG_TITLES[info.axes[0]])
        ax.set_ylabel(LONG_TITLES[info.axes[1]])
        ax.set_xlim(*info.xlim)
        ax.set_ylim(*info.ylim)
        ax.set_title(title)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def draw_front_axes(ax, info: ParetoInfo) -> None:
    """Everything with a y value: trained trials, the front's staircase, error bars, markers, budget."""
    trained = [p for p in info.points if p.y is not None and p.kind == "trained" and not p.paper]
    if trained:
        ax.scatter([p.x for p in trained], [p.y for p in trained], s=18, color=COLORS["trained"], alpha=0.55,
                   label="trained")
    others = [p for p in info.points if p.y is not None and p.kind in ("untrained", "failed") and not p.paper]
    for kind, marker in (("untrained", "x"), ("failed", "x")):
        pts = [p for p in others if p.kind == kind]
        if pts:  # only on axes where y is a measurement they have (speed against cost)
            ax.scatter([p.x for p in pts], [p.y for p in pts], marker=marker, color=COLORS[kind], label=kind.replace("untrained", "not trained"))
    bars = [p for p in info.points if p.ci and p.y is not None]
    if bars:
        ax.errorbar([p.x for p in bars], [p.y for p in bars],
                    yerr=[[p.y - p.ci[0] for p in bars], [p.ci[1] - p.y for p in bars]], fmt="none",
                    ecolor="0.35", elinewidth=1, capsize=3, label="seed interval", zorder=3)
    if info.step:
        ax.step([x for x, _ in info.step], [y for _, y in info.step], where="post", color=COLORS["front"], lw=2,
                zorder=4)
    if info.front:
        ax.scatter([p.x for p in info.front], [p.y for p in info.front], s=70, marker="D", color=COLORS["front"],
                   edgecolor="white", zorder=5, label="Pareto front (feasible)")
        for p in info.front:
            ax.annotate(p.label, (p.x, p.y), xytext=(6, 5), textcoords="offset points", fontsize=9,
                        color=COLORS["front"], fontweight="bold")
    paper = [p for p in info.points if p.paper and p.y is not None and p.kind != "front"]
    if paper:
        ax.scatter([p.x for p in paper], [p.y for p in paper], s=70, marker="^", color=COLORS["paper"],
                   edgecolor="black", zorder=5, label="the paper's models")
        for p in paper:
            ax.annotate(p.label, (p.x, p.y), xytext=(6, -10), textcoords="offset points", fontsize=9)
    ref = info.reference
    if ref is not None and ref.y is not None:
        ax.scatter([ref.x], [ref.y], marker="*", s=200, color=COLORS["reference"], zorder=6, label=ref.label)
        ax.annotate(ref.label, (ref.x, ref.y), xytext=(8, -4), textcoords="offset points", fontsize=9)
    _budget(ax, info, label=True)
    ax.grid(alpha=0.3)


def _budget(ax, info: ParetoInfo, label: bool) -> None:
    if info.budget:
        axis, b = info.budget
        line = ax.axvline if axis == "x" else ax.axhline
        line(b, color=COLORS["budget"], linestyle="--", label=info.budget_label if label else None)


def draw_strip(ax, info: ParetoInfo) -> None:
    """Trials without a y value, at their measured x: not at a made-up accuracy."""
    for kind, marker, color in (("untrained", "x", COLORS["untrained"]), ("failed", "x", COLORS["failed"])):
        pts = [p for p in info.strip if p.kind == kind and not p.paper]
        if pts:
            ax.scatter([p.x for p in pts], [0] * len(pts), marker=marker, color=color,
                       label=f"{info.strip_label} ({'failed' if kind == 'failed' else 'infeasible, screened, ...'})")
    for p in (q for q in info.strip if q.paper):
        ax.scatter([p.x], [0], marker="^", s=60, color=COLORS["paper"], edgecolor="black")
        ax.annotate(p.label, (p.x, 0), xytext=(6, -3), textcoords="offset points", fontsize=9)
    if info.reference is not None and info.reference.y is None:
        ax.scatter([info.reference.x], [0], marker="*", s=160, color=COLORS["reference"])
    _budget(ax, info, label=False)
    ax.set_yticks([0], [info.strip_label])
    ax.set_ylim(-1, 1)
    ax.grid(alpha=0.3, axis="x")
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.2), fontsize=8, frameon=False)


def write_study_report(store: st.StudyStore, reports_dir: Path) -> ReportFiles:
    s = store.summary()
    attrs = store.attrs
    files = ReportFiles.at(reports_dir, f"study-{store.name}")
    st.to_dataframe(s.records).to_csv(files.csv, index=False)
    ref = attrs.get("reference_result") or {}
    pareto_plot(pareto_info(s.records, {r.number for r in s.front}, attrs), files.png,
                f"{store.name}: feasible Pareto front, budget {attrs.get('budget')} vs {attrs.get('reference')}")
    noise = reference_noise(attrs)
    same = indistinguishable_from(s.front, noise)
    front_df = st.to_dataframe(s.front)
    if len(front_df):
        front_df["delta"] = [delta_text(delta_to_reference(r, noise)) for r in s.front]
        front_df["same_as"] = [" ".join(f"#{n}" for n in same[r.number]) for r in s.front]
        front_df["ratio_ci"] = [ratio_ci_text(r.primary_throughput) or "-" for r in s.front]
        front_df["budget_verdict"] = [r.budget_verdict or "-" for r in s.front]
        front_df["trial"] = [f"{r.number} ({r.paper_model.replace('efficientvit_', '').upper()})" if r.paper_model
                             else str(r.number) for r in s.front]
    cols = [("trial", "trial", 0), ("knobs", "knobs", 0), ("params_m", "params M", 2), ("flops_m", "FLOPs M", 0),
            ("ratio", "ratio", 3), ("ratio_ci", "ratio [CI]", 0), ("budget_verdict", "budget", 0),
            ("accuracy", "val top-1 %", 2), ("delta", "Δ vs reference [95 % CI]", 0),
            ("same_as", "indistinguishable from", 0), ("test_top1", "test top-1 %", 2)]
    err = prediction_error(s.records, attrs.get("backend") or "torch-cpu")
    lines = [f"# Study `{store.name}`", "",
             f"Budget {attrs.get('budget')} against {attrs.get('reference')} on {attrs.get('backend')}; "
             f"settings {attrs.get('settings')}.", "",
             "Trials: " + ", ".join(f"{k} {v}" for k, v in sorted(s.counts.items())), "",
             (f"Reference proxy top-1: {noise.describe()} on the validation split (held out from train); test split "
              f"{ref['test_top1']:.2f} %." if ref.get("test_top1") is not None else noise.describe().capitalize() + "."), "",
             "Candidates are selected on the validation split; the test split is reported beside it and never "
             "selected on. Δ is one candidate run against the reference's mean, with a 95 % Student-t interval from "
             "the reference's seed SD; 'indistinguishable' means the interval contains 0.", "",
             ("Ratio: the median of per-round ratios to the reference measured in the same session; [CI]: the "
              "order-statistic interval of that median with its real coverage (95 % needs 6 rounds or more; 5 give "
              "93.8 %). Budget: 'borderline' when the interval still contained the budget after a second, longer "
              "measurement (decided on the median)."), "",
             "The " + reference_sessions(s.records, attrs).text().replace("ratios", "throughput ratios", 1) + ".", ""]
    if err:
        lines += [f"Throughput model: {err['n']} predictions made before measuring, median absolute error "
                  f"{100 * err['mdape']:.1f} %, Spearman {err['spearman']:.2f} against the measurements.", ""]
    lines += ["## Feasible Pareto front", "", markdown_table(front_df, cols) if len(front_df) else "(empty)"]
    failed = [r for r in s.records if r.status == "failed"]
    if failed:
        lines += ["", "## Failed trials", ""] + [f"- #{r.number}: {r.reason}" for r in failed]
    files.write_md(lines, next((r.env for r in s.records if r.env), {}))
    return files
