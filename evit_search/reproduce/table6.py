"""``evit-search ablate table6``: the paper's Table 6 reproduced side by side.

The rows come from the built-in ``table6.yaml`` (base model + switch overrides) or a user's file
of the same form. All rows are measured in ONE interleaved session on every requested backend,
then each row is proxy-trained. Everything is stored in a study (kind ``ablation``) in the same
storage as ``run``: an interrupted ablation resumes, skipping what is stored (the measurement,
the depth suggestions, every trained row).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import efficientvit

from .. import storage as st
from ..errors import SpaceError, UserError
from ..hooks import Hooks
from ..measure.cost import count_cost
from ..measure.records import ModelSpec, Settings
from ..measure.runner import measure
from ..search.space import builtin_file
from ..training.data import load_dataset
from ..training.protocols import get_protocol
from ..training.trainer import prepare_data, train
from .table6_compare import comparison, depth_check


@dataclass(frozen=True)
class AblationRow:
    row: int
    model: str
    ablation: str
    overrides: dict

    def config(self, base: str, **extra):
        return efficientvit.get_config(base).with_overrides(**_tuples(self.overrides), **extra).validate()


def _tuples(d: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def load_table(name: str = "table6") -> tuple[str, list[AblationRow]]:
    path = Path(name) if Path(name).is_file() else builtin_file(f"{name}.yaml")
    if path is None or not path.is_file():
        raise UserError(f"ablate: {name!r} is neither a file nor a built-in table (built-in: table6)")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or "rows" not in data or "base" not in data:
        raise SpaceError(f"{path}: needs 'base' and 'rows'")
    rows = []
    for i, r in enumerate(data["rows"]):
        missing = {"row", "model", "ablation", "overrides"} - set(r)
        if missing:
            raise SpaceError(f"{path}: rows[{i}]: missing {sorted(missing)}")
        rows.append(AblationRow(int(r["row"]), str(r["model"]), str(r["ablation"]), dict(r["overrides"] or {})))
    return str(data["base"]), rows


@dataclass
class AblateConfig:
    """What ``ablate`` is asked to do."""

    table: str = "table6"
    backends: list[str] = field(default_factory=lambda: ["torch-cpu", "onnx-cpu"])
    protocol: str = "proxy"
    data: str = "fashion-mnist"
    data_dir: str | None = None
    train: bool = True
    storage: str | None = None
    study: str | None = None
    measure: Settings = field(default_factory=Settings)
    seed: int = 0
    epochs: int | None = None
    img_size: int = 224
    train_threads: int | None = None
    suggest_depths: bool = True
    device: str = "cpu"


@dataclass
class Ablation:
    """What ``ablate`` found: the comparison rows, depth notes and suggestions, and its study."""

    store: st.StudyStore
    rows: list[dict]
    depth_notes: list[dict]
    suggestions: dict[int, dict]
    protocol: Any


# --------------------------------------------------------------------------- the command
def ablate(cfg: AblateConfig, hooks: Hooks | None = None) -> Ablation:
    hooks = hooks or Hooks()
    base, rows = load_table(cfg.table)
    protocol = get_protocol(cfg.protocol, epochs=cfg.epochs)
    cfgs = {r.row: r.config(base, img_size=cfg.img_size) for r in rows}
    # a missing dataset fails before anything is stored
    bundle = prepare_data(load_dataset(cfg.data, cfg.data_dir), protocol) if cfg.train else None

    name = cfg.study or f"{Path(cfg.table).stem}-{cfg.data.split(':')[0]}-{protocol.name}-{cfg.img_size}px"
    store = st.create_study(name, cfg.storage, {st.KIND_ATTR: "ablation", "table": cfg.table, "base": base},
                            {"table": cfg.table, "protocol": protocol.name, "data": cfg.data, "img_size": cfg.img_size})
    hooks.info(f"ablation study {name} in {store.display_url}")

    # 1. every row in one interleaved session (skipped when stored)
    meas = store.attrs.get("measurement")
    if not meas or sorted(meas.get("backends", [])) != sorted(cfg.backends):
        specs = [ModelSpec(f"row {r.row}", config=cfgs[r.row].to_dict(), img_size=cfg.img_size) for r in rows]
        recs = measure(specs, cfg.backends, cfg.measure, reference="row 1", listener=hooks.measure)
        meas = {"backends": cfg.backends, "records": [st.measurement_attr(r) for r in recs],
                "env": next((r.env for r in recs if r.env), {})}
        store.set_attr("measurement", meas)
    by = {(m["backend"], m["model"]): m for m in meas["records"]}

    # 2. cost + one trial per row (trained when asked), resumable row by row
    done = {r.row for r in store.records() if r.status == "ok" or (not cfg.train and r.status == "measured")}
    primary = cfg.backends[0]
    for r in rows:
        if r.row in done:
            continue
        trial = store.ask()
        thr = {b: by[(b, f"row {r.row}")] for b in cfg.backends if (b, f"row {r.row}") in by}
        for k, v in {"row": r.row, "label": r.ablation, "model": r.model, "config": cfgs[r.row].to_dict(),
                     "arch_id": cfgs[r.row].arch_id(), "cost": count_cost(cfgs[r.row]).to_dict(), "throughput": thr}.items():
            trial.set(k, v)
        ratio = (thr.get(primary) or {}).get("ratio_to_reference")
        if not cfg.train:
            trial.finish("measured")
            continue
        on_step, on_epoch = hooks.train(f"row {r.row}")
        res = train(cfgs[r.row], bundle, protocol, seed=cfg.seed, prepared=True, threads=cfg.train_threads,
                    device=cfg.device, on_step=on_step, on_epoch=on_epoch)
        if res.status != "ok" or ratio is None:
            trial.finish("failed", reason=res.reason or f"no {primary} throughput for row {r.row}", train=res.to_dict())
            continue
        trial.finish("ok", values=[float(res.top1), float(ratio)], train=res.to_dict())

    table = comparison(store.records(), cfg.backends)
    depth_notes = depth_check(table, cfg.backends)
    suggestions = {int(k): v for k, v in (store.attrs.get("depth_suggestions") or {}).items()}
    off = [n for n in depth_notes if n["off"] and n["backend"] == primary]
    if cfg.suggest_depths and off and not suggestions:
        suggestions = suggest_depth(rows, base, off, primary, cfg.measure, cfg.img_size, hooks)
        store.set_attr("depth_suggestions", {str(k): v for k, v in suggestions.items()})
    return Ablation(store, table, depth_notes, suggestions, protocol)


def suggest_depth(rows: list[AblationRow], base: str, off_notes: list[dict], backend: str, settings: Settings,
                  img_size: int, hooks: Hooks) -> dict[int, dict]:
    """For rows whose throughput is >10 % off row 1, measure nearby depths in one session and
    suggest the one closest to row 1's throughput."""
    rows_off = sorted({n["row"] for n in off_notes})
    specs = [ModelSpec("row 1", config=rows[0].config(base, img_size=img_size).to_dict(), img_size=img_size)]
    for rnum in rows_off:
        r = next(x for x in rows if x.row == rnum)
        cur = tuple(s.depth for s in r.config(base, img_size=img_size).stages)
        cands = {tuple(max(1, d + k) for d, k in zip(cur, delta)) for delta in itertools.product((-1, 0, 1), repeat=3)}
        cands.discard(cur)
        for depth in sorted(cands, key=lambda c: (sum(abs(a - b) for a, b in zip(c, cur)), c))[:6]:
            cfg = r.config(base, img_size=img_size).with_overrides(depth=depth)
            specs.append(ModelSpec(f"row {rnum} depth {depth}", config=cfg.to_dict(), img_size=img_size))
    recs = measure(specs, [backend], settings, reference="row 1", listener=hooks.measure)
    out = {}
    for rnum in rows_off:
        current = next(n["ratio"] for n in off_notes if n["row"] == rnum)
        cur_depth = str(tuple(s.depth for s in next(x for x in rows if x.row == rnum).config(base, img_size=img_size).stages))
        tried = {rec.model.split("depth ")[1]: rec.ratio_to_reference for rec in recs
                 if rec.model.startswith(f"row {rnum} depth") and rec.status == "ok" and rec.ratio_to_reference}
        if not tried:
            continue
        depth, ratio = min(tried.items(), key=lambda kv: abs(kv[1] - 1.0))
        better = abs(ratio - 1.0) < abs(current - 1.0)
        out[rnum] = {"depth": depth if better else cur_depth, "ratio": ratio if better else current, "better": better,
                     "current": cur_depth, "backend": backend, "tried": tried}
    return out


def suggestion_text(s: dict) -> str:
    if s["better"]:
        return f"depth {s['depth']} would match best ({s['ratio']:.3f}x on {s['backend']})"
    return (f"no nearby depth of at least one block per stage is closer on {s['backend']} than the current "
            f"{s['current']}; tried {', '.join(f'{d}: {r:.3f}x' for d, r in s['tried'].items())}")
