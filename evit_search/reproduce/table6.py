"""``evit-search ablate table6``: the paper's Table 6 reproduced side by side.

The rows come from the built-in ``table6.yaml`` (base model + switch overrides) or a user's file
of the same form. First the rows the paper compared at similar throughput (2, 3, 4 and 8) are
matched to row 1 on the budget's backend (:mod:`.table6_match`); then all rows, matched
variants in place of the stated ones, are measured in ONE interleaved session on every requested
backend, scored with the zero-cost scores and proxy-trained. Everything is stored in a study
(kind ``ablation``) in the same storage as ``run``: an interrupted or repeated ablation resumes,
skipping what is stored (the match, the measurement, every scored or trained row).
"""

from __future__ import annotations

import os
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
from ..training.splits import prepare_data
from ..training.trainer import train
from ..training.zerocost import DEFAULT_BATCH, THREADS, protocol_batch, score_config, torch_threads
from .table6_compare import comparison, run_seed
from .table6_match import MATCH_ROWS, MeasureFn, RowMatch, match_throughput
from .zerocost_calibration import Calibration, CalibrationRow, calibrate


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
    seeds: int = 1  # trained runs per row (seeds seed, seed+1, ...): the rows' deltas get intervals from their spread
    epochs: int | None = None
    img_size: int = 224
    train_threads: int | None = None
    match_rows: tuple[int, ...] = MATCH_ROWS  # empty: every row as the table states it
    zerocost: bool = True
    zerocost_batch: int = DEFAULT_BATCH
    device: str = "cpu"
    precision: str = "fp32"

    @property
    def train_seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.seeds)] if self.train else [self.seed]


@dataclass
class Ablation:
    """What ``ablate`` found: the comparison rows, the throughput matches, the zero-cost
    calibration over the rows, and its study."""

    store: st.StudyStore
    rows: list[dict]
    matches: dict[int, RowMatch]
    protocol: Any
    calibration: Calibration | None = None
    zerocost_data: str | None = None


# --------------------------------------------------------------------------- the command
def ablate(cfg: AblateConfig, hooks: Hooks | None = None, measure_fn: MeasureFn = measure) -> Ablation:
    """``measure_fn`` measures throughput (tests pass a fake backend)."""
    hooks = hooks or Hooks()
    base, rows = load_table(cfg.table)
    protocol = get_protocol(cfg.protocol, epochs=cfg.epochs)
    cfgs = {r.row: r.config(base, img_size=cfg.img_size) for r in rows}
    unknown = sorted(set(cfg.match_rows) - set(cfgs) - {1})
    if unknown or 1 in cfg.match_rows:
        raise UserError(f"--match-throughput: rows {unknown or [1]} are not rows to match (the table has rows "
                        f"{min(cfgs)}-{max(cfgs)}; row 1 is the reference)")
    # a missing dataset fails before anything is stored
    bundle = prepare_data(load_dataset(cfg.data, cfg.data_dir), protocol) if cfg.train else None

    name = cfg.study or f"{Path(cfg.table).stem}-{cfg.data.split(':')[0]}-{protocol.name}-{cfg.img_size}px"
    store = st.create_study(name, cfg.storage, {st.KIND_ATTR: "ablation", "table": cfg.table, "base": base},
                            {"table": cfg.table, "protocol": protocol.name, "data": cfg.data, "img_size": cfg.img_size})
    hooks.info(f"ablation study {name} in {store.display_url}")
    primary = cfg.backends[0]

    # 1. rows 2-4 and 8 at row 1's throughput on the budget's backend (stored: measured once)
    matches = _matches(store, cfg, {r: cfgs[r] for r in cfg.match_rows}, cfgs[1], primary, measure_fn, hooks)
    for r, m in matches.items():
        cfgs[r] = efficientvit.EfficientViTConfig.from_dict(m.config)

    # 2. every row in one interleaved session (skipped when these very models are stored)
    ids = {f"row {r.row}": cfgs[r.row].arch_id() for r in rows}
    meas = store.attrs.get("measurement")
    if not meas or sorted(meas.get("backends", [])) != sorted(cfg.backends) or meas.get("arch_ids") != ids:
        specs = [ModelSpec(f"row {r.row}", config=cfgs[r.row].to_dict(), img_size=cfg.img_size) for r in rows]
        before = os.getloadavg()
        recs = measure_fn(specs, cfg.backends, cfg.measure, reference="row 1", listener=hooks.measure)
        meas = {"backends": cfg.backends, "records": [st.measurement_attr(r) for r in recs], "arch_ids": ids,
                "env": next((r.env for r in recs if r.env), {}), "load_avg": [before, os.getloadavg()]}
        store.set_attr("measurement", meas)
    by = {(m["backend"], m["model"]): m for m in meas["records"]}

    # 3. cost, zero-cost scores and one trial per row and seed (trained when asked), resumable run by run
    done = {(r.row, run_seed(r) if cfg.train else cfg.seed) for r in store.records() if r.row in cfgs
            and r.arch_id == cfgs[r.row].arch_id() and (r.status == "ok" or (not cfg.train and r.status == "measured"))}
    todo = [(r, seed) for r in rows for seed in cfg.train_seeds if (r.row, seed) not in done]
    batch = None
    if cfg.zerocost and todo:
        batch = protocol_batch(protocol, cfg.data, cfg.data_dir, cfg.zerocost_batch, cfg.seed, prepared=bundle)
    row_attrs: dict[int, dict] = {}  # what every seed's trial of a row shares, computed once
    for r, seed in todo:
        trial = store.ask()
        thr = {b: by[(b, f"row {r.row}")] for b in cfg.backends if (b, f"row {r.row}") in by}
        if r.row not in row_attrs:
            with torch_threads(THREADS):  # counting FLOPs: one thread is the fast choice on a shared small CPU
                cost = count_cost(cfgs[r.row]).to_dict()
            row_attrs[r.row] = {"row": r.row, "label": r.ablation, "model": r.model, "config": cfgs[r.row].to_dict(),
                                "arch_id": cfgs[r.row].arch_id(), "cost": cost,
                                "stated_config": r.config(base, img_size=cfg.img_size).to_dict()}
            if batch is not None:
                row_attrs[r.row]["zerocost"] = score_config(cfgs[r.row], batch, seed=cfg.seed).to_dict()
        for k, v in {**row_attrs[r.row], "throughput": thr, "seed": seed}.items():
            trial.set(k, v)
        ratio = (thr.get(primary) or {}).get("ratio_to_reference")
        if not cfg.train:
            trial.finish("measured")
            continue
        if ratio is None:  # nothing to pair an accuracy with: not trained
            trial.finish("failed", reason=f"no {primary} throughput for row {r.row}")
            continue
        on_step, on_epoch = hooks.train(f"row {r.row}" + (f" seed {seed}" if cfg.seeds > 1 else ""))
        res = train(cfgs[r.row], bundle, protocol, seed=seed, threads=cfg.train_threads, device=cfg.device,
                    precision=cfg.precision, on_step=on_step, on_epoch=on_epoch)
        if res.status != "ok":
            trial.finish("failed", reason=f"training: {res.reason}", train=res.to_dict())
            continue
        trial.finish("ok", values=[float(res.top1), float(ratio)], train=res.to_dict())

    table = comparison(store.records(), cfg.backends)
    cal = calibrate("Table 6", calibration_rows(table)) if any(r.get("zerocost") for r in table) else None
    data_note = next((r["zerocost_settings"].get("data") for r in table if r.get("zerocost_settings")), None)
    return Ablation(store, table, matches, protocol, cal, data_note)


def _matches(store: st.StudyStore, cfg: AblateConfig, to_match: dict, reference, backend: str, measure_fn: MeasureFn,
             hooks: Hooks) -> dict[int, RowMatch]:
    """The stored match when it was made for these rows on this backend, else a new one (stored)."""
    if not to_match:
        return {}
    saved = store.attrs.get("throughput_match") or {}
    rows = {int(k): RowMatch.from_dict(v) for k, v in (saved.get("rows") or {}).items()}
    if saved.get("backend") == backend and set(to_match) <= set(rows):
        return {r: rows[r] for r in sorted(to_match)}
    before = os.getloadavg()
    found = match_throughput(to_match, reference, backend, cfg.measure, measure_fn, hooks)
    store.set_attr("throughput_match", {"backend": backend, "settings": cfg.measure.to_dict(),
                                        "load_avg": [before, os.getloadavg()],
                                        "rows": {str(r): m.to_dict() for r, m in found.items()}})
    return found


def calibration_rows(table: list[dict]) -> list[CalibrationRow]:
    """The comparison rows as calibration rows (scores, size, trained top-1, the paper's)."""
    return [CalibrationRow(f"row {r['row']}", r.get("params_m"), r.get("flops_m"), dict(r.get("zerocost") or {}),
                           r.get("top1"), r.get("paper_top1")) for r in table if r.get("params_m") is not None]
