"""How faithful is a proxy protocol? Train M0-M5 with it and compare its ranking with the
paper's ImageNet top-1, and with what params or FLOPs alone would predict."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import efficientvit

from ..env import fingerprint
from ..hooks import Hooks
from ..measure.cost import count_cost
from ..reporting.markdown import ReportFiles, markdown_table
from ..reporting.plots import figure
from ..stats import kendall
from ..training.data import DataBundle
from ..training.protocols import Protocol
from ..training.trainer import prepare_data, train
from . import paper


@dataclass
class ProxyCheck:
    """One row per model (``df``), Kendall taus against the paper, the verdict lines, the report files."""

    df: pd.DataFrame
    taus: dict[str, float]
    verdict: list[str]
    files: ReportFiles


def proxy_check(models: list[str], bundle: DataBundle, protocol: Protocol, seed: int, reports_dir: Path,
                hooks: Hooks | None = None, threads: int | None = None, device: str = "cpu") -> ProxyCheck:
    hooks = hooks or Hooks()
    data = prepare_data(bundle, protocol)
    rows = []
    for name in models:
        cfg = efficientvit.get_config(name)
        on_step, on_epoch = hooks.train(name)
        res = train(cfg, data, protocol, seed=seed, prepared=True, threads=threads, device=device,
                    on_step=on_step, on_epoch=on_epoch)
        cost = count_cost(cfg)  # at 224 px, as the paper reports
        rows.append({"model": name, "status": res.status, "reason": res.reason, "proxy_top1": res.top1,
                     "proxy_top5": res.top5, "wall_s": res.wall_s, "train_images_per_s": res.train_images_per_s,
                     "device": res.device,
                     "params_m": cost.params_m, "flops_m": cost.flops_m, "paper_top1": paper.top1(name)})
    df = pd.DataFrame(rows)
    ok = df[(df.status == "ok") & df.paper_top1.notna()]
    taus = {
        "proxy_top1": kendall(ok.proxy_top1, ok.paper_top1),
        "params_m": kendall(ok.params_m, ok.paper_top1),
        "flops_m": kendall(ok.flops_m, ok.paper_top1),
    }
    verdict = [f"Kendall tau vs the paper's top-1 over {len(ok)} models: proxy {taus['proxy_top1']:.3f}, "
               f"params alone {taus['params_m']:.3f}, FLOPs alone {taus['flops_m']:.3f}."]
    if taus["proxy_top1"] <= taus["flops_m"]:
        verdict.append("This proxy ranks M0-M5 no better than FLOPs alone do (for M0-M5 FLOPs order equals the paper's "
                       "accuracy order, so FLOPs reach tau 1.0; a proxy can only tie it here).")
    else:
        verdict.append("This proxy ranks M0-M5 better than FLOPs alone.")
    if len(ok) >= 2:
        m0 = ok[ok.model == "efficientvit_m0"].proxy_top1
        m5 = ok[ok.model == "efficientvit_m5"].proxy_top1
        if len(m0) and len(m5):
            verdict.append(f"M5 - M0 proxy top-1 margin: {float(m5.iloc[0]) - float(m0.iloc[0]):+.2f} points "
                           f"(paper: {paper.top1('efficientvit_m5') - paper.top1('efficientvit_m0'):+.1f}).")
    m4 = df[df.model == "efficientvit_m4"]
    if len(m4):
        verdict.append(f"Time to train and evaluate M4 with this protocol: {float(m4.wall_s.iloc[0]):.0f} s.")

    files = ReportFiles.at(reports_dir, f"proxy-check-{protocol.name}-{data.name}")
    df.to_csv(files.csv, index=False)
    cols = [("model", "model", 0), ("proxy_top1", "proxy top-1 %", 2), ("paper_top1", "paper top-1 %", 1),
            ("params_m", "params M", 2), ("flops_m", "FLOPs M", 1), ("wall_s", "train+eval s", 0),
            ("train_images_per_s", "train img/s", 0), ("status", "status", 0)]
    env = fingerprint(threads=threads)
    md = [f"# Proxy check: protocol `{protocol.name}` on {data.describe()}", "",
          f"Protocol: {protocol.description}; seed {seed}.", "", markdown_table(df, cols), "", "## Verdict", "",
          *[f"- {v}" for v in verdict]]
    files.write_md(md, env)
    _plot(ok, files.png, protocol.name)
    return ProxyCheck(df, taus, verdict, files)


def _plot(df: pd.DataFrame, path: Path, protocol: str) -> None:
    with figure(path, figsize=(6, 4.5)) as (fig, ax):
        ax.scatter(df.paper_top1, df.proxy_top1)
        for r in df.itertuples():
            ax.annotate(r.model.replace("efficientvit_", "").upper(), (r.paper_top1, r.proxy_top1), xytext=(3, 3),
                        textcoords="offset points")
        ax.set_xlabel("paper ImageNet top-1 (%)")
        ax.set_ylabel(f"proxy top-1 (%), protocol {protocol}")
        ax.grid(alpha=0.3)
