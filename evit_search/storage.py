"""Study storage: the one module that touches Optuna objects. It never imports torch, so the
TUI and reports can read studies quickly.

Storage URLs: any Optuna RDB URL (``sqlite:///path.db``, ``postgresql+psycopg2://...``), a
journal file (``journal:PATH`` or a path ending in ``.journal``/``.log``), or a plain path to a
``.db`` file. The default is an SQLite file in ``runs/``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import StorageError

DEFAULT_DB = Path("runs") / "evit-search.db"
SCHEMA_ATTR = "evit_search_schema"
KIND_ATTR = "evit_search_kind"  # "search" | "ablation"

log = logging.getLogger(__name__)


def default_storage_url() -> str:
    return os.environ.get("EVIT_STORAGE") or f"sqlite:///{DEFAULT_DB}"


def normalize_url(url: str | None) -> str:
    """One function that turns what a user typed into a storage URL."""
    url = (url or default_storage_url()).strip()
    if url.startswith("journal:"):
        return url
    if "://" in url:
        return url
    if url.endswith((".journal", ".log", ".jsonl")):
        return f"journal:{url}"
    return f"sqlite:///{url}"


def open_storage(url: str | None = None, create: bool = True):
    """An Optuna storage object, or StorageError with one clear line."""
    import optuna

    url = normalize_url(url)
    try:
        if url.startswith("journal:"):
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            path = Path(url[len("journal:"):])
            if not create and not path.exists():
                raise StorageError(f"journal file {path} does not exist")
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite:///"):
            path = Path(url[len("sqlite:///"):])
            if not create and not path.exists():
                raise StorageError(f"no study database at {path} (run `evit-search run` first, or pass --storage)")
            path.parent.mkdir(parents=True, exist_ok=True)
            # wait for other writers instead of failing with "database is locked"
            kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
        elif url.startswith("postgresql"):
            kwargs["engine_kwargs"] = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
        return optuna.storages.RDBStorage(url, **kwargs)
    except StorageError:
        raise
    except ImportError as e:
        raise StorageError(f"storage {url}: a driver is missing ({e}); for PostgreSQL: pip install 'evit-search[postgres]'") from None
    except Exception as e:  # sqlalchemy errors: unreachable server, bad URL...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StorageError(f"cannot open storage {url}: {first}") from None


def list_studies(url: str | None = None) -> list[dict]:
    import optuna

    storage = open_storage(url, create=False)
    out = []
    for s in optuna.get_all_study_summaries(storage, include_best_trial=False):
        out.append({"name": s.study_name, "n_trials": s.n_trials, "kind": s.user_attrs.get(KIND_ATTR, "search"),
                    "directions": [d.name.lower() for d in s.directions], "datetime_start": s.datetime_start,
                    "user_attrs": s.user_attrs})
    return out


def load_study(name: str, url: str | None = None):
    import optuna

    storage = open_storage(url, create=False)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s["name"] for s in list_studies(url)]
        raise StorageError(f"no study named {name!r} in {normalize_url(url)}; studies there: {', '.join(names) or 'none'}") from None


def create_study(name: str, url: str | None, sampler, attrs: dict[str, Any], resume_check: dict[str, Any] | None = None):
    """Create the study (two objectives, maximised) or resume it. A resumed study must have been
    created with the same settings that change what a trial means (``resume_check``)."""
    import optuna

    storage = open_storage(url)
    try:
        study = optuna.create_study(study_name=name, storage=storage, sampler=sampler,
                                    directions=["maximize", "maximize"], load_if_exists=True)
    except Exception as e:
        raise StorageError(f"cannot create study {name!r} in {normalize_url(url)}: {str(e).splitlines()[0]}") from None
    existing = study.user_attrs
    if existing.get("settings") and resume_check:
        old = existing["settings"]
        diff = {k: (old.get(k), v) for k, v in resume_check.items() if old.get(k) != v}
        if diff:
            k, (was, now) = next(iter(diff.items()))
            raise StorageError(f"study {name!r} was created with {k}={was!r}, this run has {k}={now!r}; "
                               f"use another --study name or the same settings")
    for k, v in attrs.items():
        if k not in existing:
            study.set_user_attr(k, v)
    return study


# --------------------------------------------------------------------------- records
@dataclass
class TrialRecord:
    """What the reports, the CLI and the TUI know of one trial (plain data, no optuna)."""

    number: int
    state: str  # complete | pruned | fail | running | waiting
    status: str  # ok | infeasible | invalid | duplicate | failed | running
    arch_id: str | None = None
    accuracy: float | None = None  # proxy top-1 (%)
    ratio: float | None = None  # throughput / reference throughput, on the primary backend
    feasible: bool | None = None
    reason: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # sampled knobs
    config: dict | None = None
    cost: dict | None = None
    throughput: dict[str, dict] = field(default_factory=dict)  # per backend
    constraints: dict[str, float] = field(default_factory=dict)
    train: dict | None = None
    env: dict | None = None
    duplicate_of: int | None = None
    host: str | None = None
    duration_s: float | None = None
    row: int | None = None  # Table 6 row, for ablation studies
    label: str | None = None
    reference_throughput: dict[str, dict] = field(default_factory=dict)

    @property
    def reference_images_per_s(self) -> float | None:
        primary = next(iter(self.reference_throughput.values()), None)
        return primary.get("images_per_s") if primary else None

    @property
    def images_per_s(self) -> float | None:
        primary = next(iter(self.throughput.values()), None)
        return primary.get("images_per_s") if primary else None

    def to_dict(self) -> dict:
        return asdict(self)

    def knob_text(self) -> str:
        """Compact knobs for tables and text filters: C, L, H, N, QK, V ratio per stage."""
        cfg = self.config or {}
        st = cfg.get("stages") or []
        if not st:
            return " ".join(f"{k}={v}" for k, v in self.params.items())
        def col(k):
            return "/".join(_short(s.get(k)) for s in st)
        return (f"C={col('dim')} L={col('depth')} H={col('num_heads')} N={col('n_ffn')} "
                f"QK={col('key_dim')} V={col('v_ratio')} F={col('ffn_ratio')}")


def _short(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _state(t) -> str:
    return t.state.name.lower()


def trial_record(t) -> TrialRecord:
    ua = t.user_attrs
    values = t.values if t.values else None
    cons = ua.get("constraints") or {}
    feasible = None
    if cons and ua.get("status") != "failed":  # a failed trial's feasibility is unknown
        feasible = all(v <= 0 for v in cons.values())
    status = ua.get("status") or {"complete": "ok", "fail": "failed", "running": "running"}.get(_state(t), _state(t))
    dur = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
    return TrialRecord(
        number=t.number, state=_state(t), status=status, arch_id=ua.get("arch_id"),
        accuracy=values[0] if values else ua.get("accuracy"),
        ratio=values[1] if values else ua.get("ratio"),
        feasible=feasible, reason=ua.get("reason"), params=dict(t.params), config=ua.get("config"),
        cost=ua.get("cost"), throughput=ua.get("throughput") or {}, constraints=cons, train=ua.get("train"),
        env=ua.get("env"), duplicate_of=ua.get("duplicate_of"), host=ua.get("host"), duration_s=dur,
        row=ua.get("row"), label=ua.get("label"), reference_throughput=ua.get("reference_throughput") or {},
    )


def records(study) -> list[TrialRecord]:
    return [trial_record(t) for t in study.get_trials(deepcopy=False)]


def pareto_front(recs: list[TrialRecord]) -> list[TrialRecord]:
    """Feasible, completed trials that no other dominates in (accuracy, ratio), one per arch."""
    pts = [r for r in recs if r.state == "complete" and r.feasible is not False and r.accuracy is not None and r.ratio is not None]
    seen, uniq = set(), []
    for r in sorted(pts, key=lambda r: r.number):
        if r.arch_id not in seen:
            seen.add(r.arch_id)
            uniq.append(r)
    front = []
    for r in uniq:
        dominated = any(o is not r and o.accuracy >= r.accuracy and o.ratio >= r.ratio
                        and (o.accuracy > r.accuracy or o.ratio > r.ratio) for o in uniq)
        if not dominated:
            front.append(r)
    return sorted(front, key=lambda r: -r.ratio)


def summary(study) -> dict:
    recs = records(study)
    front = pareto_front(recs)
    best = max((r for r in recs if r.state == "complete" and r.accuracy is not None), key=lambda r: r.accuracy, default=None)
    counts: dict[str, int] = {}
    for r in recs:
        counts[r.status] = counts.get(r.status, 0) + 1
    return {"trials": len(recs), "counts": counts, "front": front, "best": best, "records": recs}


def to_dataframe(recs: list[TrialRecord]):
    import pandas as pd

    rows = []
    for r in recs:
        row = {"number": r.number, "state": r.state, "status": r.status, "feasible": r.feasible,
               "accuracy": r.accuracy, "ratio": r.ratio, "arch_id": r.arch_id, "reason": r.reason,
               "knobs": r.knob_text(), "duplicate_of": r.duplicate_of, "host": r.host, "duration_s": r.duration_s}
        if r.cost:
            row.update({"params_m": r.cost.get("params_m"), "flops_m": r.cost.get("flops_m")})
        for b, m in r.throughput.items():
            row[f"{b}_images_per_s"] = m.get("images_per_s")
            row[f"{b}_ratio"] = m.get("ratio_to_reference")
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



