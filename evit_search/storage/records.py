"""What the reports, the CLI and the TUI know of a trial: plain records read from the study,
with no optuna or torch in sight of their users."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ..stats import stored_ci_coverage

KIND_ATTR = "evit_search_kind"  # "search" | "ablation"
# the outcomes of a trial; only ``ok`` carries objective values
FINISHED = ("ok", "infeasible", "invalid", "duplicate", "screened", "predicted-infeasible", "measured", "trained")
# stage knobs as the tables show them: (column, config field)
KNOBS = (("C", "dim"), ("L", "depth"), ("H", "num_heads"), ("N", "n_ffn"), ("QK", "key_dim"), ("V", "v_ratio"),
         ("FFN", "ffn_ratio"))


def _short(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def stage_values(config: dict | None, key: str) -> str:
    """One knob over the stages, e.g. ``128/256/384`` for ``dim``."""
    return "/".join(_short(s.get(key)) for s in (config or {}).get("stages") or []) or "-"


def knob_text(config: dict | None) -> str:
    """Compact knobs for tables and text filters: ``C=128/256/384 L=1/2/3 ...``."""
    return " ".join(f"{col}={stage_values(config, key)}" for col, key in KNOBS)


@dataclass
class TrialRecord:
    """One trial: what was sampled, measured and trained, and how it ended."""

    number: int
    state: str  # complete | pruned | fail | running | waiting
    status: str  # ok | infeasible | invalid | duplicate | failed | running | ...
    arch_id: str | None = None
    accuracy: float | None = None  # proxy top-1 (%)
    ratio: float | None = None  # throughput / reference throughput, on the budget's backend
    feasible: bool | None = None
    reason: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # sampled knobs
    config: dict | None = None
    cost: dict | None = None
    throughput: dict[str, dict] = field(default_factory=dict)  # per backend, the budget's first
    constraints: dict[str, float] = field(default_factory=dict)
    train: dict | None = None
    env: dict | None = None
    duplicate_of: int | None = None
    retry_of: int | None = None
    host: str | None = None
    duration_s: float | None = None
    completed_at: float | None = None  # seconds since the epoch (Unix time)
    row: int | None = None  # Table 6 row, for ablation studies
    label: str | None = None
    reference_throughput: dict[str, dict] = field(default_factory=dict)
    checkpoint: str | None = None  # trained weights, as stored (relative to the storage file or absolute)
    paper_model: str | None = None  # the paper's model this trial evaluates (e.g. "efficientvit_m3"), if any
    accuracy_ci: tuple[float, float] | None = None  # (low, high) of the proxy top-1 from the seed noise, when measured
    rung: int | None = None  # successive halving: the highest rung reached (None: trained in full at once)
    rungs: list[dict] = field(default_factory=list)  # per rung: fraction of the training, top1, val_loss, seconds
    fidelity: float | None = None  # the fraction of the protocol's training its accuracy reflects
    delta: Any = None  # accuracy minus the reference's with its interval (stats.Delta), set by readers that know the noise
    attrs: dict[str, Any] = field(default_factory=dict, repr=False)  # every stored attribute

    @property
    def reference_images_per_s(self) -> float | None:
        primary = next(iter(self.reference_throughput.values()), None)
        return primary.get("images_per_s") if primary else None

    @property
    def primary_throughput(self) -> dict:
        """The measurement on the budget's backend (stored first), ``{}`` when not measured."""
        return next(iter(self.throughput.values()), None) or {}

    @property
    def images_per_s(self) -> float | None:
        return self.primary_throughput.get("images_per_s")

    @property
    def budget_verdict(self) -> str | None:
        """``within``, ``outside`` or ``borderline`` (the ratio's interval still contained the
        budget after a second, longer measurement; decided on the median); None before it was
        stored or when the throughput was not measured."""
        return self.attrs.get("budget_verdict")

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("attrs")
        d.pop("delta")
        return d

    def knob_text(self) -> str:
        if not (self.config or {}).get("stages"):
            return " ".join(f"{k}={v}" for k, v in self.params.items())
        return knob_text(self.config)


def trial_record(t, rungs: dict | None = None) -> TrialRecord:
    """A record from an Optuna FrozenTrial; ``rungs``: its successive-halving state, kept beside
    the trial (a finished trial cannot change), whose highest rung gives the accuracy."""
    ua = t.user_attrs
    state = t.state.name.lower()
    values = t.values if t.values else None
    cons = ua.get("constraints") or {}
    feasible = None
    if cons and ua.get("status") != "failed":  # a failed trial's feasibility is unknown
        feasible = all(v <= 0 for v in cons.values())
    status = ua.get("status")
    reason = ua.get("reason")
    if status is None:
        status = {"complete": "ok", "fail": "failed", "running": "running"}.get(state, state)
        if state == "fail":  # failed without a word: its worker stopped (heartbeat lost, killed)
            reason = f"interrupted: its worker stopped{' while ' + ua['phase'] if ua.get('phase') else ''}"
    dur = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
    rec = TrialRecord(
        number=t.number, state=state, status=status, arch_id=ua.get("arch_id"),
        accuracy=values[0] if values else ua.get("accuracy"),
        ratio=values[1] if values else ua.get("ratio"),
        feasible=feasible, reason=reason, params=dict(t.params), config=ua.get("config"),
        cost=ua.get("cost"), throughput=ua.get("throughput") or {}, constraints=cons, train=ua.get("train"),
        env=ua.get("env"), duplicate_of=ua.get("duplicate_of"), retry_of=ua.get("retry_of"), host=ua.get("host"),
        duration_s=dur, completed_at=t.datetime_complete.timestamp() if t.datetime_complete else None,
        row=ua.get("row"), label=ua.get("label"),
        reference_throughput=ua.get("reference_throughput") or {}, checkpoint=ua.get("checkpoint"),
        paper_model=ua.get("paper_model"), accuracy_ci=tuple(ua["accuracy_ci"]) if ua.get("accuracy_ci") else None,
        attrs=dict(ua),
    )
    if rungs and rungs.get("rungs"):
        top = rungs["rungs"][-1]
        rec.rung, rec.rungs, rec.fidelity = len(rungs["rungs"]) - 1, list(rungs["rungs"]), top["fraction"]
        rec.accuracy = top["top1"]
        rec.checkpoint = top.get("checkpoint") or rec.checkpoint
        rec.train = {**(rec.train or {}), **{k: top[k] for k in ("test_top1", "test_top5", "test_loss") if k in top}}
    elif rec.train:
        rec.fidelity = rec.train.get("fraction", 1.0)
    return rec


def pareto_front(recs: list[TrialRecord]) -> list[TrialRecord]:
    """Feasible, completed trials trained in full (the top rung of successive halving) that no
    other dominates in (accuracy, ratio), one per arch, fastest first."""
    pts = [r for r in recs if r.state == "complete" and r.feasible is not False and r.accuracy is not None
           and r.ratio is not None and (r.fidelity is None or r.fidelity >= 1.0)]
    seen, uniq = set(), []
    for r in sorted(pts, key=lambda r: r.number):
        if r.arch_id not in seen:
            seen.add(r.arch_id)
            uniq.append(r)
    front = [r for r in uniq if not any(o is not r and _dominates(o.accuracy, o.ratio, r.accuracy, r.ratio)
                                        for o in uniq)]
    return sorted(front, key=lambda r: -r.ratio)


def _dominates(acc: float, ratio: float, other_acc: float, other_ratio: float) -> bool:
    """(acc, ratio) is at least as good as the other in both and better in one."""
    return acc >= other_acc and ratio >= other_ratio and (acc > other_acc or ratio > other_ratio)


def lower_rung_front(recs: list[TrialRecord]) -> list[TrialRecord]:
    """Feasible candidates whose accuracy is still a lower rung's of successive halving (not
    trained in full) that no other candidate dominates at that rung, by the accuracies every
    candidate had at that rung: the ones that may yet join the front. Lowest rung last, fastest
    first within a rung. Their accuracy is not comparable to a fully trained one's."""
    ok = [r for r in recs if r.state == "complete" and r.feasible is not False and r.ratio is not None and r.rungs]
    out = []
    for r in sorted((r for r in ok if r.fidelity is not None and r.fidelity < 1.0 and r.accuracy is not None),
                    key=lambda r: (-(r.rung or 0), -r.ratio)):
        at = {o.number: e["top1"] for o in ok for e in o.rungs if e["rung"] == r.rung and e.get("top1") is not None}
        mine = at.get(r.number, r.accuracy)
        if not any(o.number != r.number and at.get(o.number) is not None
                   and _dominates(at[o.number], o.ratio, mine, r.ratio) for o in ok):
            out.append(r)
    return out


def status_counts(recs: list[TrialRecord]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in recs:
        counts[r.status] = counts.get(r.status, 0) + 1
    return counts


@dataclass
class Summary:
    """A study at a glance: counts per status, the feasible front and its best-accuracy member."""

    records: list[TrialRecord]
    front: list[TrialRecord]
    counts: dict[str, int]

    @property
    def trials(self) -> int:
        return len(self.records)

    @property
    def best(self) -> TrialRecord | None:
        """The most accurate member of the feasible front (the same trial the front table shows)."""
        return max(self.front, key=lambda r: r.accuracy, default=None)


def summarize(recs: list[TrialRecord]) -> Summary:
    return Summary(recs, pareto_front(recs), status_counts(recs))


def to_dataframe(recs: list[TrialRecord]):
    import pandas as pd  # only here: reading a study for the TUI must stay fast

    rows = []
    for r in recs:
        row = {"number": r.number, "state": r.state, "status": r.status, "feasible": r.feasible,
               "accuracy": r.accuracy, "ratio": r.ratio, "arch_id": r.arch_id, "reason": r.reason,
               "knobs": r.knob_text(), "duplicate_of": r.duplicate_of, "retry_of": r.retry_of, "host": r.host,
               "duration_s": r.duration_s, "paper_model": r.paper_model, "rung": r.rung, "fidelity": r.fidelity,
               "rungs": json.dumps(r.rungs) if r.rungs else None, "test_top1": (r.train or {}).get("test_top1"),
               "predicted_ratio": r.attrs.get("predicted_ratio"), "budget_verdict": r.budget_verdict}
        if r.cost:
            row.update({"params_m": r.cost.get("params_m"), "flops_m": r.cost.get("flops_m")})
        for b, m in r.throughput.items():
            row[f"{b}_images_per_s"] = m.get("images_per_s")
            row[f"{b}_ratio"] = m.get("ratio_to_reference")
            row[f"{b}_ratio_ci_low"], row[f"{b}_ratio_ci_high"] = m.get("ratio_ci_low"), m.get("ratio_ci_high")
            row[f"{b}_ci_coverage"] = stored_ci_coverage(m)  # of both intervals; 95 % needs 6 rounds or more
            row[f"{b}_spread"] = m.get("spread")
        for k, v in r.params.items():
            row[f"param_{k}"] = v
        for k, v in r.constraints.items():
            row[f"constraint_{k}"] = v
        rows.append(row)
    return pd.DataFrame(rows)


def measurement_attr(rec) -> dict:
    """A throughput record as a user attr: JSON, without its environment (stored once per trial
    or study, not once per record)."""
    d = rec.to_dict()
    d.pop("env", None)
    return jsonable(d)


def jsonable(obj: Any) -> Any:
    """User attrs must be JSON: drop NaN/inf (JSON has none) and tuples."""
    return json.loads(json.dumps(obj, default=str), parse_constant=lambda c: None)
