"""``evit-search bench search``: what successive halving and the throughput model buy, measured.

Three arms on one space and real data, with the same seed and the same time each, one after the
other (on a quiet machine wall time is CPU time, and the CPU seconds of each arm, its measuring
processes included, are recorded): (a) ``full``, every feasible candidate trained in full;
(b) ``sh``, successive halving; (c) ``sh+predict``, successive halving and the throughput model.
Per arm: candidates sampled, measured, predicted infeasible, trained to each rung, CPU seconds,
and the hypervolume of the fully trained feasible front (validation top-1 x throughput ratio,
against one reference point for all arms) over time. The candidates (c) skipped are measured
afterwards, outside its time, to count any feasible one it skipped wrongly.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

import efficientvit

from .. import storage as st
from ..env import fingerprint
from ..hooks import Hooks
from ..reporting.markdown import ReportFiles, markdown_table
from ..reporting.plots import figure
from ..reporting.predictions import prediction_error
from ..search.config import RunConfig
from ..search.engine import Worker
from ..search.run import run_search

ARMS = {"full": dict(fidelity="full", predict=False), "sh": dict(fidelity="sh", predict=False),
        "sh+predict": dict(fidelity="sh", predict=True)}


def _cpu_s() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class Arm:
    name: str
    store: st.StudyStore
    started: float
    ended: float
    cpu_s: float
    skipped_feasible: int | None = None  # (c): predicted infeasible, yet measured within budget afterwards
    skipped_checked: int = 0

    def counts(self) -> dict:
        recs = self.store.records()
        rungs = self.store.rungs()
        trained = {}
        for r in recs:
            if r.status != "ok":
                continue
            levels = [e["rung"] for e in rungs.get(r.number, {}).get("rungs", [])] or ["full"]
            for lv in levels:
                trained[lv] = trained.get(lv, 0) + 1
        new = [r for r in recs if r.status not in ("duplicate", "invalid", "running")]
        return {"sampled": len(recs), "new": len(new), "measured": sum(1 for r in recs if r.throughput),
                "predicted_infeasible": sum(1 for r in recs if r.status == "predicted-infeasible"),
                "feasible": sum(1 for r in recs if r.feasible), "trained": trained,
                "fully_trained": sum(1 for r in recs if r.status == "ok" and (r.fidelity or 1.0) >= 1.0)}


def run_arms(base: RunConfig, minutes: float, folder: Path, hooks: Hooks | None = None) -> list[Arm]:
    hooks = hooks or Hooks()
    folder.mkdir(parents=True, exist_ok=True)
    arms = []
    for name, over in ARMS.items():
        rc = replace(base, storage=str(folder / f"{name}.db"), study=f"bench-{name}", trials=None, timeout=minutes * 60,
                     train_reference=False, runs_dir=str(folder / f"{name}-runs"), **over)
        hooks.info(f"arm {name}: {minutes:g} min")
        t0, c0 = time.time(), _cpu_s()
        out = run_search(rc, hooks)
        arms.append(Arm(name, out.store, t0, time.time(), _cpu_s() - c0))
    audit(arms[-1], base, hooks)
    return arms


def audit(arm: Arm, base: RunConfig, hooks: Hooks) -> None:
    """Measure what the throughput model skipped (outside the arm's time) and count the feasible."""
    skipped = [r for r in arm.store.records() if r.status == "predicted-infeasible"]
    if not skipped:
        arm.skipped_feasible, arm.skipped_checked = 0, 0
        return
    worker = Worker(replace(base, storage=arm.store.url, study=arm.store.name))
    wrong = 0
    for r in skipped:
        cands, _ = worker._measure(efficientvit.EfficientViTConfig.from_dict(r.config))
        ratio = cands[base.backend].ratio_to_reference
        wrong += int(ratio is not None and ratio >= worker.budget.min_ratio)
        hooks.info(f"skipped #{r.number}: predicted {r.attrs.get('predicted_ratio', 0):.2f}x, measured "
                   f"{ratio or 0:.2f}x")
    arm.skipped_feasible, arm.skipped_checked = wrong, len(skipped)


def full_points(arm: Arm) -> list[tuple[float, float, float]]:
    """(time since the arm started in minutes, accuracy, ratio) of each fully trained feasible candidate."""
    rungs = arm.store.rungs()
    out = []
    for r in arm.store.records():
        if r.status != "ok" or not r.feasible or r.ratio is None:
            continue
        state = rungs.get(r.number, {}).get("rungs", [])
        if state:
            top = state[-1]
            if top["fraction"] < 1.0:
                continue
            at, acc = top["at"], top["top1"]
        else:
            at, acc = r.completed_at, r.accuracy
        out.append(((at - arm.started) / 60.0, acc, r.ratio))
    return sorted(out)


def hypervolume(points: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    """Area dominated by (accuracy, ratio) points beyond the reference point (both maximised): a
    sweep from high ratio to low, each slab as tall as the best accuracy at that ratio or above."""
    pts = [p for p in points if p[0] > ref[0] and p[1] > ref[1]]
    area, best = 0.0, ref[0]
    ratios = sorted({p[1] for p in pts}, reverse=True) + [ref[1]]
    for hi, lo in zip(ratios, ratios[1:]):
        best = max([best] + [p[0] for p in pts if p[1] >= hi])
        area += (best - ref[0]) * (hi - lo)
    return area


def curve(arm: Arm, ref: tuple[float, float]) -> list[tuple[float, float]]:
    pts = full_points(arm)
    return [(t, hypervolume([(a, r) for _, a, r in pts[:i + 1]], ref)) for i, (t, _, _) in enumerate(pts)]


def reference_point(arms: list[Arm], budget_ratio: float) -> tuple[float, float]:
    """One point for every arm: just below the worst fully trained accuracy of any arm, at the budget."""
    accs = [a for arm in arms for _, a, _ in full_points(arm)]
    return (min(accs) - 0.5 if accs else 0.0, budget_ratio)


def write_report(arms: list[Arm], budget_ratio: float, reports_dir: Path, desc: str) -> ReportFiles:
    """Markdown, CSV and PNG: the arms side by side and their hypervolume over time."""
    ref = reference_point(arms, budget_ratio)
    files = ReportFiles.at(reports_dir, "search-benchmark")
    rows = []
    curves = {a.name: curve(a, ref) for a in arms}
    for a in arms:
        c = a.counts()
        hours = a.cpu_s / 3600.0
        final = curves[a.name][-1][1] if curves[a.name] else 0.0
        err = prediction_error(a.store.records(), "torch-cpu")
        rows.append({"arm": a.name, "minutes": (a.ended - a.started) / 60, "cpu_s": a.cpu_s, "sampled": c["sampled"],
                     "new": c["new"], "measured": c["measured"], "predicted_infeasible": c["predicted_infeasible"],
                     "feasible": c["feasible"], "trained": str(c["trained"]), "fully_trained": c["fully_trained"],
                     "new_per_cpu_hour": c["new"] / hours if hours else None, "final_hypervolume": final,
                     "predictor_mdape": err["mdape"] if err else None,
                     "predictor_spearman": err["spearman"] if err else None,
                     "skipped_feasible": a.skipped_feasible, "skipped_checked": a.skipped_checked})
    df = pd.DataFrame(rows)
    df.to_csv(files.csv, index=False)
    base = curves[arms[0].name][-1][1] if curves[arms[0].name] else 0.0
    lines = [f"# Search benchmark on {fingerprint().get('machine')}", "", desc, "",
             f"Hypervolume of the fully trained feasible front (validation top-1 % x throughput ratio) above the "
             f"reference point ({ref[0]:.2f} %, {ref[1]:g}x), the same for every arm.", "",
             markdown_table(df, [("arm", "arm", 0), ("minutes", "minutes", 1), ("cpu_s", "CPU s", 0),
                                 ("sampled", "sampled", 0), ("new", "new archs", 0), ("measured", "measured", 0),
                                 ("predicted_infeasible", "predicted infeasible", 0), ("trained", "trained per rung", 0),
                                 ("fully_trained", "fully trained", 0), ("new_per_cpu_hour", "new per CPU h", 1),
                                 ("final_hypervolume", "final HV", 3), ("predictor_mdape", "predictor MdAPE", 3),
                                 ("skipped_feasible", "skipped yet feasible", 0)]), "", "## Against the aims", ""]
    for a in arms[1:]:
        first = next((t for t, hv in curves[a.name] if hv >= base > 0), None)
        ratio = (rows[arms.index(a)]["new_per_cpu_hour"] or 0) / (rows[0]["new_per_cpu_hour"] or float("inf"))
        lines.append(f"- {a.name}: {ratio:.1f}x the new candidates per CPU-hour of `full` (aim for sh+predict: >= 3x); "
                     + (f"reached `full`'s final hypervolume after {first:.0f} of {(a.ended - a.started) / 60:.0f} min"
                        if first is not None else "never reached `full`'s final hypervolume") + ".")
    a = arms[-1]
    if a.skipped_checked:
        lines.append(f"- The throughput model skipped {a.skipped_checked} candidate(s); measured afterwards, "
                     f"{a.skipped_feasible} of them met the budget (aim: none).")
    files.write_md(lines, next((r.env for r in arms[0].store.records() if r.env), {}))
    with figure(files.png, figsize=(7, 4.5)) as (fig, ax):
        for name, pts in curves.items():
            if pts:
                ax.step([0.0] + [t for t, _ in pts], [0.0] + [hv for _, hv in pts], where="post", label=name)
        ax.set_xlabel("minutes since the arm started")
        ax.set_ylabel("hypervolume of the fully trained front")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.suptitle("search benchmark: the front over time")
    return files
