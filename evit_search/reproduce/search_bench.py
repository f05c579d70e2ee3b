"""``evit-search bench search``: what successive halving and the throughput model buy, measured.

Three arms on one space and real data, with the same seed and the same CPU time each, one after
the other (an arm starts no trial after its CPU seconds, its measuring processes included, are
spent; the trial in progress finishes, and a successive-halving arm stops sampling early enough
to carry one candidate to the top rung, see :mod:`..search.fidelity`; so the report states each
arm's CPU seconds and whether they are equal within :data:`CPU_TOLERANCE`): (a) ``full``, every
feasible candidate trained in full; (b) ``sh``, successive halving; (c) ``sh+predict``,
successive halving and the throughput model.
Per arm: candidates sampled, measured, predicted infeasible, trained to each rung, CPU seconds,
and the hypervolume of the fully trained feasible front (validation top-1 x throughput ratio,
against one reference point for all arms) over time. The candidates (c) skipped are measured
afterwards, outside its time, to count any feasible one it skipped wrongly. The report ends
with the issue's aims, each met or not met.
"""

from __future__ import annotations

import resource
import time
from fractions import Fraction
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import pandas as pd

import efficientvit

from .. import storage as st
from ..env import fingerprint
from ..errors import UserError
from ..hooks import Hooks
from ..reporting.markdown import ReportFiles, markdown_table
from ..reporting.plots import figure
from ..reporting.predictions import prediction_error
from ..search.config import RunConfig
from ..search.engine import Worker
from ..search.predictor import WARMUP
from ..search.run import run_search

ARM_ATTR = "bench_arm"  # study attribute: the arm's start, end and CPU seconds, and the audit's counts
CPU_TOLERANCE = 0.10  # the arms' CPU seconds count as equal within 10 % of the budget
WALL_CAP = 4.0  # an arm also stops after this many times its CPU minutes of wall time (a loaded host)
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
    minutes: float | None = None  # the CPU minutes the arm was given
    run: float | None = None  # when the benchmark started: the same in every arm of one run
    audited: list[dict] | None = None  # the audit, per skipped candidate: number, predicted and measured ratio

    def save(self) -> None:
        """Keep what the report needs beyond the trials (the arm's clock, CPU seconds, the audit)
        in the arm's study, so ``bench search --report-only`` rewrites the report later."""
        self.store.set_attr(ARM_ATTR, {"started": self.started, "ended": self.ended, "cpu_s": self.cpu_s,
                                       "skipped_feasible": self.skipped_feasible,
                                       "skipped_checked": self.skipped_checked, "minutes": self.minutes,
                                       "run": self.run, "audited": self.audited})

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


def cpu_budget(budget_s: float, t0: float, c0: float, cpu_s: Callable[[], float] = _cpu_s,
               clock: Callable[[], float] = time.time) -> Callable[[], float]:
    """``remaining`` for a run: the CPU seconds left of ``budget_s`` as wall seconds at the CPU
    rate the arm has had so far (its training takes several cores, its measuring one, a loaded
    host less), the unit successive halving measures its rungs in; the CPU seconds left as they
    are before the rate is known. At most zero once the CPU seconds are spent."""
    def remaining() -> float:
        used, wall = cpu_s() - c0, clock() - t0
        rate = used / wall if wall > 1.0 and used > 0 else 1.0
        return (budget_s - used) / max(rate, 0.1)
    return remaining


def run_arms(base: RunConfig, minutes: float, folder: Path, hooks: Hooks | None = None) -> list[Arm]:
    """Each arm in turn, until it has spent ``minutes`` of CPU time (one worker)."""
    hooks = hooks or Hooks()
    folder.mkdir(parents=True, exist_ok=True)
    arms, run = [], time.time()
    for name, over in ARMS.items():
        rc = replace(base, storage=str(folder / f"{name}.db"), study=f"bench-{name}", trials=None, jobs=1,
                     timeout=WALL_CAP * minutes * 60, train_reference=False, runs_dir=str(folder / f"{name}-runs"),
                     **over)
        hooks.info(f"arm {name}: {minutes:g} CPU min")
        t0, c0 = time.time(), _cpu_s()
        out = run_search(rc, hooks, remaining=cpu_budget(minutes * 60, t0, c0))
        arms.append(Arm(name, out.store, t0, time.time(), _cpu_s() - c0, minutes=minutes, run=run))
        arms[-1].save()
    audit(arms[-1], base, hooks)
    arms[-1].save()
    return arms


def load_arms(folder: Path) -> list[Arm]:
    """The arms of a finished ``bench search`` from their studies in ``folder`` (``--report-only``)."""
    arms = []
    for name in ARMS:
        path = folder / f"{name}.db"
        if not path.exists():
            raise UserError(f"--report-only: no study of arm {name!r} at {path}; run `bench search` with the same "
                            "--reports first, or give the run's --no-paper-models, --protocol, --epochs and --seed "
                            "(they name its studies)")
        store = st.load_study(f"bench-{name}", f"sqlite:///{path.resolve()}")
        saved = store.attrs.get(ARM_ATTR)
        if not saved:
            raise UserError(f"--report-only: arm {name!r} in {path} has no stored summary (the run stopped before "
                            "the arm ended); run `bench search` again")
        arms.append(Arm(name, store, **saved))
    if len({a.run for a in arms}) > 1:
        raise UserError(f"--report-only: the arms' studies in {folder} come from different runs of `bench search` (one "
                        "was interrupted and run again?); run it again into an empty --reports folder")
    return arms


def audit(arm: Arm, base: RunConfig, hooks: Hooks) -> None:
    """Measure what the throughput model skipped (outside the arm's time) and count the feasible."""
    skipped = [r for r in arm.store.records() if r.status == "predicted-infeasible"]
    if not skipped:
        arm.skipped_feasible, arm.skipped_checked, arm.audited = 0, 0, []
        return
    # the benchmark's own settings have no trial count or timeout (its arms run on CPU time)
    worker = Worker(replace(base, storage=arm.store.url, study=arm.store.name, trials=len(skipped)))
    wrong, audited = 0, []
    for r in skipped:
        cands, _ = worker._measure(efficientvit.EfficientViTConfig.from_dict(r.config))
        ratio = cands[base.backend].ratio_to_reference
        wrong += int(ratio is not None and ratio >= worker.budget.min_ratio)
        audited.append({"number": r.number, "predicted": r.attrs.get("predicted_ratio"), "measured": ratio})
        hooks.info(f"skipped #{r.number}: predicted {audited[-1]['predicted'] or 0:.2f}x, measured {ratio or 0:.2f}x")
    arm.skipped_feasible, arm.skipped_checked, arm.audited = wrong, len(skipped), audited


def closest_skip(audited: list[dict] | None) -> str | None:
    """The skipped candidate measured fastest afterwards, as the report names it (None: no audit stored)."""
    measured = [a for a in audited or [] if a.get("measured") is not None]
    if not measured:
        return None
    a = max(measured, key=lambda a: a["measured"])
    pred = f"predicted {a['predicted']:.2f}x, " if a.get("predicted") is not None else ""
    return f"#{a['number']}: {pred}measured {a['measured']:.2f}x"


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


def feasible_share_after_warmup(records: list[st.TrialRecord], warmup: int = WARMUP) -> tuple[float | None, int]:
    """(share of feasible, count) among the candidates measured after the first ``warmup`` measured
    ones (the throughput model's warm-up), in trial order; (None, 0) when none was."""
    measured = sorted((r for r in records if r.throughput and r.feasible is not None), key=lambda r: r.number)
    after = measured[warmup:]
    return (sum(1 for r in after if r.feasible) / len(after) if after else None), len(after)


def halving_share(fracs: list[float], eta: int) -> float:
    """k: the share of a full training a feasible candidate gets under successive halving when the
    top 1/eta of each rung goes on: every one trains to ``fracs[0]``, 1/eta of them on to
    ``fracs[1]``, 1/eta^2 to ``fracs[2]``... (5/9 for rungs 1/3, 1 and eta 3)."""
    return fracs[0] + sum(float(eta) ** -i * (fracs[i] - fracs[i - 1]) for i in range(1, len(fracs)))


def _median(xs: list[float]) -> float | None:
    xs = sorted(xs)
    return None if not xs else (xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2)


@dataclass(frozen=True)
class Costs:
    """A run's per-candidate costs, read from its stored trials, and the steady state they allow:
    the CPU seconds one more sampled candidate costs in each arm, so the candidates per CPU-hour
    of each arm relative to ``full`` once the arms are long enough for their shares to settle.
    The paper's models (a head start enqueued once, not sampled) are left out of every part."""
    measure_s: float  # m: a sampled trial up to the end of its measuring (wall s; sampling, cost pass, build,
    #                   throughput beside the reference on one thread, zero-cost scores, a re-measure if borderline)
    measured_n: int
    train_cpu_s: float  # T: one full proxy training of a sampled candidate, CPU seconds
    trained_n: int
    infeasible: float  # q: share of the measured sampled candidates outside the budget (arms that measure all)
    infeasible_n: int
    skip_s: float | None  # s: a candidate the throughput model skips (its prediction only); None: none skipped
    fracs: tuple[float, ...]
    eta: int

    ASSUMED_SKIP_S = 1.0  # s when the run skipped nothing

    @property
    def halving(self) -> float:
        return halving_share(list(self.fracs), self.eta)

    def per_candidate(self, arm: str, infeasible: float | None = None) -> float:
        m, t, k = self.measure_s, self.train_cpu_s, self.halving
        q = self.infeasible if infeasible is None else infeasible
        s = self.ASSUMED_SKIP_S if self.skip_s is None else self.skip_s
        if arm == "full":
            return m + (1 - q) * t
        if arm == "sh":
            return m + (1 - q) * k * t
        return q * s + (1 - q) * (m + k * t)  # every infeasible one skipped: the model at its best

    def gain(self, arm: str, infeasible: float | None = None) -> float:
        return self.per_candidate("full", infeasible) / self.per_candidate(arm, infeasible)

    def infeasible_share_for(self, gain: float, arm: str = "sh+predict") -> float | None:
        """The least share of infeasible candidates in [0, 0.999] at which ``arm`` reaches ``gain``
        with these costs; None when none does. The gain is a ratio of two linear functions of q, so
        monotone: it grows with q unless skipping costs more than m (m + kT) / (m + T)."""
        lo, hi = 0.0, 0.999
        if self.gain(arm, lo) >= gain:
            return 0.0
        if self.gain(arm, hi) < gain:
            return None
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if self.gain(arm, mid) < gain else (lo, mid)
        return hi


def costs(arms: list[Arm]) -> Costs | None:
    """The run's costs over its sampled candidates (the paper's models left out): m, the median
    duration of every arm's measured infeasible trials; T, the median training CPU seconds of
    ``full``'s trained ones; q, the share outside the budget of those ``full`` and ``sh`` measured
    (both measure every candidate); s, the median duration of a skipped one; the halving arms'
    rungs. None when a part is missing."""
    by = {a.name: [r for r in a.store.records() if not r.paper_model] for a in arms}
    every = [r for recs in by.values() for r in recs]
    m = [r.duration_s for r in every if r.status == "infeasible" and r.throughput and r.duration_s]
    t = [r.train["cpu_s"] for r in by.get("full", []) if r.status == "ok" and r.train and r.train.get("cpu_s")]
    measured = [r for name in ("full", "sh") for r in by.get(name, []) if r.throughput and r.feasible is not None]
    skips = [r.duration_s for r in every if r.status == "predicted-infeasible" and r.duration_s]
    settings = next((cfg for cfg in (a.store.attrs.get("settings") or {} for a in arms) if cfg.get("rungs")), {})
    if not (m and t and measured and settings):
        return None
    infeasible = sum(1 for r in measured if not r.feasible)
    return Costs(_median(m), len(m), _median(t), len(t), infeasible / len(measured), len(measured), _median(skips),
                 tuple(settings["rungs"]), int(settings["eta"]))


def cost_lines(c: Costs | None, rows: list[dict]) -> list[str]:
    """The report's section on what the candidates-per-CPU-hour aim allows at this run's costs."""
    if c is None:
        return ["Not computed: the run has no measured infeasible sampled candidate, no fully trained one in `full`, "
                "or no halving arm's rungs."]
    rungs = ", ".join(str(Fraction(f).limit_denominator(1000)) for f in c.fracs)
    need = c.infeasible_share_for(3.0)
    measured = {r["arm"]: r["new_per_cpu_hour"] for r in rows}
    base = measured.get("full") or 0.0
    skip = (f"a skipped one costs s = {c.skip_s:.1f} s" if c.skip_s is not None
            else f"none was skipped (s = {c.ASSUMED_SKIP_S:g} s assumed)")
    s = c.ASSUMED_SKIP_S if c.skip_s is None else c.skip_s
    if need == 0.0:
        gain = c.gain("sh+predict")
        three = (f"holds even with no infeasible candidate (q = 0: sh+predict {c.gain('sh+predict', 0.0):.2f}x)"
                 + ("." if gain >= 3.0 else
                    f", but not at this run's q ({gain:.2f}x): here skipping costs more than it saves."))
    elif need is not None:
        three = f"needs q >= {need:.2f} infeasible."
    else:
        three = (f"needs more than any share infeasible up to 0.999 gives (as q -> 1 the gain tends to m/s = "
                 f"{c.measure_s / s:.1f}x).")
    gains = ", ".join(f"{arm} {c.gain(arm):.2f}x" + (f" (measured {measured[arm] / base:.2f}x)"
                                                    if base and measured.get(arm) else "") for arm in ("sh", "sh+predict"))
    return [f"- Over the sampled candidates (the paper's models left out): a trial up to the end of its measuring takes "
            f"m = {c.measure_s:.0f} s (median of {c.measured_n} measured infeasible ones; wall s, mostly one thread); "
            f"a full proxy training T = {c.train_cpu_s:.0f} CPU s (median of `full`'s {c.trained_n}); q = "
            f"{c.infeasible:.2f} of the {c.infeasible_n} that `full` and `sh` measured miss the budget; {skip}. Under "
            f"halving (rungs {rungs}, eta {c.eta}) a feasible candidate gets k = {c.halving:.2f} of a training.",
            "- CPU seconds per sampled candidate: full m + (1-q)T, sh m + (1-q)kT, sh+predict with every infeasible "
            f"one skipped q*s + (1-q)(m + kT). Steady-state candidates per CPU-hour against `full`: {gains}; whatever "
            f"measuring costs, sh+predict's stays below max(1/k, 1/(1-q)) = "
            f"{max(1 / c.halving, 1 / (1 - c.infeasible)):.2f}x (1/k = {1 / c.halving:.2f}x when training dominates, "
            f"1/(1-q) = {1 / (1 - c.infeasible):.2f}x when measuring does).",
            "- 3x the candidates per CPU-hour at these m, T, k and s " + three]


@dataclass(frozen=True)
class Aim:
    what: str
    measured: str
    met: bool | None  # None: could not be judged (nothing to judge it on)

    def line(self) -> str:
        verdict = "not judged" if self.met is None else "met" if self.met else "NOT met"
        return f"- {self.what}: {self.measured} -- **{verdict}**"


def aims(rows: list[dict], curves: dict[str, list[tuple[float, float]]], budget_cpu_s: float | None) -> list[Aim]:
    """The issue's aims against the arms' rows (``full`` first, ``sh+predict`` last) and
    hypervolume curves (minutes since the arm started, hypervolume)."""
    full, best = rows[0], rows[-1]
    out = []
    cpu = [r["cpu_s"] for r in rows]
    spread = (max(cpu) - min(cpu)) / (budget_cpu_s or max(cpu) or 1.0)
    out.append(Aim("equal CPU time per arm (within 10 %)", ", ".join(f"{r['arm']} {r['cpu_s']:.0f} s" for r in rows)
                   + f" (spread {100 * spread:.0f} %)", spread <= CPU_TOLERANCE))
    if full["new_per_cpu_hour"] and best["new_per_cpu_hour"] is not None:
        x = best["new_per_cpu_hour"] / full["new_per_cpu_hour"]
        out.append(Aim(f"{best['arm']} evaluates >= 3x the candidates per CPU-hour of {full['arm']}",
                       f"{x:.1f}x ({best['new_per_cpu_hour']:.1f} vs {full['new_per_cpu_hour']:.1f})", x >= 3.0))
    else:
        out.append(Aim(f"{best['arm']} evaluates >= 3x the candidates per CPU-hour of {full['arm']}",
                       "no candidate per CPU-hour for full", None))
    target = curves[full["arm"]][-1][1] if curves.get(full["arm"]) else 0.0
    half = full["minutes"] / 2
    first = next((t for t, hv in curves.get(best["arm"], []) if hv >= target), None) if target > 0 else None
    out.append(Aim(f"{best['arm']} reaches {full['arm']}'s final hypervolume ({target:.3f}) in half its time "
                   f"({half:.1f} min)", "never reached" if first is None else f"after {first:.1f} min",
                   None if target <= 0 else first is not None and first <= half))
    share, n = best.get("feasible_after_warmup"), best.get("measured_after_warmup") or 0
    out.append(Aim(f"after the warm-up ({WARMUP} measured), >= 80 % of {best['arm']}'s measured candidates are feasible",
                   "none measured after the warm-up" if share is None else f"{100 * share:.0f} % of {n}",
                   None if share is None else share >= 0.8))
    checked, wrong = best.get("skipped_checked") or 0, best.get("skipped_feasible")
    out.append(Aim("no feasible candidate wrongly skipped (the skipped ones measured afterwards)",
                   (f"{wrong} of {checked} skipped met the budget"
                    + (f" (closest {best['skipped_closest']})" if best.get("skipped_closest") else ""))
                   if checked else "none skipped",
                   wrong == 0 if wrong is not None else None))
    return out


def write_report(arms: list[Arm], budget_ratio: float, reports_dir: Path, desc: str,
                 budget_cpu_s: float | None = None, name: str = "search-benchmark") -> ReportFiles:
    """Markdown, CSV and PNG (``name``-<machine>.*): the arms side by side and their hypervolume
    over time."""
    ref = reference_point(arms, budget_ratio)
    env = next((r.env for r in arms[0].store.records() if r.env), {})
    files = ReportFiles.at(reports_dir, name, machine=env.get("machine"))  # the run's machine (--report-only: elsewhere)
    rows = []
    curves = {a.name: curve(a, ref) for a in arms}
    run_costs = costs(arms)
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
                     "skipped_feasible": a.skipped_feasible, "skipped_checked": a.skipped_checked,
                     **dict(zip(("feasible_after_warmup", "measured_after_warmup"),
                                feasible_share_after_warmup(a.store.records()))),
                     "steady_state_gain": run_costs.gain(a.name) if run_costs else None,
                     "skipped_closest": closest_skip(a.audited)})
    df = pd.DataFrame(rows)
    df.to_csv(files.csv, index=False)
    base = curves[arms[0].name][-1][1] if curves[arms[0].name] else 0.0
    lines = [f"# Search benchmark on {env.get('machine') or fingerprint().get('machine')}", "", desc, "",
             f"Hypervolume of the fully trained feasible front (validation top-1 % x throughput ratio) above the "
             f"reference point ({ref[0]:.2f} %, {ref[1]:g}x), the same for every arm.", "",
             markdown_table(df, [("arm", "arm", 0), ("minutes", "minutes", 1), ("cpu_s", "CPU s", 0),
                                 ("sampled", "sampled", 0), ("new", "new archs", 0), ("measured", "measured", 0),
                                 ("predicted_infeasible", "predicted infeasible", 0), ("trained", "trained per rung", 0),
                                 ("fully_trained", "fully trained", 0), ("new_per_cpu_hour", "new per CPU h", 1),
                                 ("final_hypervolume", "final HV", 3), ("predictor_mdape", "predictor MdAPE", 3),
                                 ("feasible_after_warmup", "feasible after warm-up", 2),
                                 ("skipped_feasible", "skipped yet feasible", 0)]), "", "## Against the aims", ""]
    for a in arms[1:-1]:  # the middle arms: what successive halving alone buys
        first = next((t for t, hv in curves[a.name] if hv >= base > 0), None)
        ratio = (rows[arms.index(a)]["new_per_cpu_hour"] or 0) / (rows[0]["new_per_cpu_hour"] or float("inf"))
        lines.append(f"- {a.name} (no aim of its own): {ratio:.1f}x the new candidates per CPU-hour of `full`; "
                     + (f"reached `full`'s final hypervolume after {first:.0f} of {(a.ended - a.started) / 60:.0f} min"
                        if first is not None else "never reached `full`'s final hypervolume") + ".")
    lines += [aim.line() for aim in aims(rows, curves, budget_cpu_s)]
    lines += ["", "## What the candidates-per-CPU-hour aim allows at this run's costs", ""] + cost_lines(run_costs, rows)
    files.write_md(lines, env)
    with figure(files.png, figsize=(7, 4.5)) as (fig, ax):
        for a in arms:  # each curve runs on, flat, to its arm's end
            pts, end = curves[a.name], (a.ended - a.started) / 60
            if pts:
                ax.step([0.0] + [t for t, _ in pts] + [max(end, pts[-1][0])], [0.0] + [hv for _, hv in pts] + [pts[-1][1]],
                        where="post", label=a.name)
        ax.set_xlabel("minutes since the arm started")
        ax.set_ylabel("hypervolume of the fully trained front")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.suptitle("search benchmark: the front over time")
    return files
