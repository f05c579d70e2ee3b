"""``evit-search export``: a stored candidate as config YAML, ONNX and a loadable state dict."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

import efficientvit

from .. import storage as st
from ..errors import UserError
from ..measure.onnx_export import export_onnx


def export_trial(study_name: str, number: int, out_dir: str, storage: str | None = None) -> tuple[list[Path], str | None]:
    """Writes ``trial-N-config.yaml``, ``trial-N.pt`` and ``trial-N.onnx``; returns the paths and a
    note when there are no trained weights (random weights at the measured input size)."""
    store = st.load_study(study_name, storage)
    recs = {r.number: r for r in store.records()}
    if number not in recs:
        raise UserError(f"trial {number} is not in study {study_name!r} (trials 0..{max(recs) if recs else -1})")
    rec = recs[number]
    if rec.duplicate_of is not None:
        rec = recs[rec.duplicate_of]
    if not rec.config:
        raise UserError(f"trial {number} has no valid config ({rec.status}: {rec.reason})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    note = None
    ckpt = store.resolve_path(rec.checkpoint)  # stored relative to the storage file: found from any folder
    if ckpt is not None and ckpt.is_file():
        model = efficientvit.load_model(ckpt)
        cfg = model.config
    else:
        cfg = efficientvit.EfficientViTConfig.from_dict(rec.config)
        model = efficientvit.build(cfg).eval()
        note = (f"trial {rec.number} has no trained weights here ({rec.status}); the ONNX file and state dict hold "
                "random weights at the measured input size")
    cfg_path = out / f"trial-{number}-config.yaml"
    cfg_path.write_text(yaml.safe_dump({"config": cfg.to_dict(), "study": study_name, "trial": number,
                                        "accuracy": rec.accuracy, "ratio": rec.ratio, "cost": rec.cost}, sort_keys=False))
    sd_path = out / f"trial-{number}.pt"
    torch.save({"config": cfg.to_dict(), "state_dict": model.state_dict()}, sd_path)
    onnx_path = export_onnx(efficientvit.fuse(model), out / f"trial-{number}.onnx", (cfg.in_chans, cfg.img_size, cfg.img_size))
    return [cfg_path, sd_path, onnx_path], note
