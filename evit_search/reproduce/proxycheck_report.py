"""The proxy check's report: per protocol, M0-M5 with their seed noise beside the paper; for a
sweep, the protocols side by side (fidelity against cost) and what limits the fidelity."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..env import fingerprint
from ..reporting.markdown import ReportFiles, markdown_table
from ..reporting.plots import figure
from ..stats import is_missing
from .proxycheck import Fidelity, ProxyCheck

LITERATURE = [
    "Yang et al., ICLR 2020 (NAS evaluation is frustratingly hard): for close architectures the seed SD of short "
    "runs is about half the spread between them (0.10 vs 0.21 points over 24 DARTS cells).",
    "EcoNAS (Zhou et al., CVPR 2020): at equal compute, more images and fewer epochs beat more epochs of fewer images.",
    "White et al., 2022 (A deeper look at zero-cost proxies): the loss after a short run often ranks better than top-1.",
    "Kendall tau significance at n = 6 (exact, two-sided p < 0.05) needs tau >= 0.867.",
]


def _tau(t: float | None, p: float | None) -> str:
    return "-" if is_missing(t) else f"{t:.3f} (p {p:.3f})"


def verdict(f: Fidelity) -> list[str]:
    lines = [f"Kendall tau against the paper's top-1 over {len(f.models)} models: {_tau(f.tau_paper, f.p_paper)} by "
             f"validation top-1, {_tau(f.tau_paper_loss, f.p_paper_loss)} by validation loss."]
    if f.tau_paper is not None and f.p_paper is not None:
        lines.append("The ranking agrees with the paper's beyond chance (p < 0.05)." if f.p_paper < 0.05 else
                     "The agreement is not significant (p >= 0.05): with six models only tau >= 0.867 is.")
    if f.tau_long is not None:
        lines.append(f"Kendall tau against the long run on the same data: {_tau(f.tau_long, f.p_long)}.")
    if f.seed_sd is not None:
        apart = (f"; the best and worst models are {f.spread_over_sd:.1f} SD apart, the closest pair in the paper's "
                 f"order {f.min_gap_over_sd:.2f} SD" if f.spread_over_sd is not None and f.min_gap_over_sd is not None
                 else "")
        lines.append(f"Seed SD of M4 over {f.seed_sd_runs} seeds: {f.seed_sd:.3f} points{apart}.")
    elif f.seed_sd_runs:
        lines.append("One seed of M4: the seed noise is not measured (give --seeds or --m4-seeds >= 2).")
    grid = "x".join(str(g) for g in f.protocol.token_grid())
    lines.append(f"Token grid per stage at {f.protocol.img_size} px: {grid}"
                 + (" -- the last stage has one token: attention knobs there (key dim, Q kernels, biases) cannot change "
                    "accuracy; this protocol is blind to them." if f.protocol.blind_to_attention() else "."))
    if f.seconds_per_m4 is not None:
        lines.append(f"Training and evaluating M4 took {f.seconds_per_m4:.0f} s ({f.cpu_s_per_m4:.0f} CPU s).")
    return lines


def _model_table(f: Fidelity) -> str:
    df = pd.DataFrame([{**m, "sd": m["sd"] if m["sd"] is not None else float("nan")} for m in f.models])
    cols = [("model", "model", 0), ("runs", "seeds", 0), ("mean", "val top-1 % (mean)", 2), ("sd", "SD", 2),
            ("val_loss", "val loss", 3), ("test_mean", "test top-1 %", 2), ("paper_top1", "paper top-1 %", 1),
            ("params_m", "params M", 2), ("flops_m", "FLOPs M", 0), ("seconds", "s per run", 0)]
    return markdown_table(df, cols)


def sweep_rows(pc: ProxyCheck) -> pd.DataFrame:
    rows = []
    for f in pc.fidelities + ([pc.long] if pc.long else []):
        rows.append({"protocol": f.protocol.name + (" (long run)" if f is pc.long else ""),
                     "grid": "x".join(map(str, f.protocol.token_grid())), "blind": f.protocol.blind_to_attention(),
                     "seconds_per_m4": f.seconds_per_m4, "tau_paper": f.tau_paper, "p_paper": f.p_paper,
                     "tau_paper_loss": f.tau_paper_loss, "tau_long": f.tau_long, "p_long": f.p_long,
                     "seed_sd": f.seed_sd, "spread_over_sd": f.spread_over_sd, "min_gap_over_sd": f.min_gap_over_sd})
    return pd.DataFrame(rows)


def limits(pc: ProxyCheck) -> list[str]:
    """Which error limits each protocol: its own (short training: low tau against the long run) or
    the dataset gap (high tau against the long run, low against the paper)."""
    out = []
    for f in pc.fidelities:
        if is_missing(f.tau_long) or is_missing(f.tau_paper):
            continue
        own = "its own error (short training)" if f.tau_long < f.tau_paper or f.tau_long < 0.867 else None
        gap = "the dataset gap (Fashion-MNIST is not ImageNet)" if f.tau_long >= 0.867 and f.tau_paper < 0.867 else None
        out.append(f"{f.protocol.name}: tau {f.tau_long:.2f} against the long run, {f.tau_paper:.2f} against the paper; "
                   f"limited by {own or gap or 'neither at this sample size'}.")
    if pc.long is not None and not is_missing(pc.long.tau_paper):
        out.append(f"The long run itself ranks M0-M5 at tau {pc.long.tau_paper:.2f} against the paper: the best any "
                   "proxy on this data can hope for.")
    return out


def write_report(pc: ProxyCheck, reports_dir: Path, data_desc: str, json_path: Path | None = None) -> ReportFiles:
    sweep = len(pc.fidelities) > 1 or pc.long is not None
    stem = f"proxy-study-{pc.store.attrs.get('data', 'data')}" if sweep else \
        f"proxy-check-{pc.fidelities[0].protocol.name}-{pc.store.attrs.get('data', 'data')}"
    files = ReportFiles.at(reports_dir, stem)
    env = fingerprint()
    lines = [f"# {'Protocol study' if sweep else 'Proxy check'} on {env.get('machine')}", "",
             f"Data: {data_desc}. Accuracies: {pc.split}. Stored in study `{pc.store.name}` ({pc.store.display_url}); "
             "every run is kept, so the figures below can be recomputed and extended.", ""]
    if sweep:
        df = sweep_rows(pc)
        df.to_csv(files.csv, index=False)
        cols = [("protocol", "protocol", 0), ("grid", "tokens", 0), ("seconds_per_m4", "s per M4", 0),
                ("tau_paper", "tau paper (top-1)", 3), ("p_paper", "p", 3), ("tau_paper_loss", "tau paper (loss)", 3),
                ("tau_long", "tau long run", 3), ("p_long", "p", 3), ("seed_sd", "M4 seed SD", 3),
                ("spread_over_sd", "spread / SD", 1), ("min_gap_over_sd", "closest gap / SD", 2)]
        lines += ["## Protocols side by side", "", markdown_table(df, cols), "", "## What limits the fidelity", "",
                  *[f"- {line}" for line in limits(pc)], ""]
    else:
        pd.DataFrame(pc.fidelities[0].models).to_csv(files.csv, index=False)
    for f in pc.fidelities + ([pc.long] if pc.long else []):
        lines += [f"## `{f.protocol.name}`{' (long run)' if f is pc.long else ''}", "", f.protocol.description, "",
                  _model_table(f), "", *[f"- {v}" for v in verdict(f)], ""]
    lines += ["## From the literature", "", *[f"- {t}" for t in LITERATURE]]
    files.write_md(lines, env)
    _plot(pc, files.png, sweep)
    if json_path is not None:
        payload = pc.fidelities[0].summary() if not sweep else {"protocols": [f.summary() for f in pc.fidelities],
                                                                "long": pc.long.summary() if pc.long else None}
        Path(json_path).write_text(json.dumps(payload, indent=2))
    return files


def _plot(pc: ProxyCheck, path: Path, sweep: bool) -> None:
    fids = pc.fidelities + ([pc.long] if pc.long else [])
    with figure(path, ncols=2 if sweep else 1, figsize=(12 if sweep else 6.5, 5), squeeze=False) as (fig, axes):
        ax = axes[0][0]
        for f in fids:
            ms = [m for m in f.models if m["paper_top1"] is not None]
            ax.errorbar([m["paper_top1"] for m in ms], [m["mean"] for m in ms],
                        yerr=[m["sd"] or 0.0 for m in ms], fmt="o-", capsize=3, label=f.protocol.name)
            for m in ms:
                ax.annotate(m["model"].replace("efficientvit_", "").upper(), (m["paper_top1"], m["mean"]),
                            xytext=(3, 3), textcoords="offset points", fontsize=7)
        ax.set_xlabel("paper ImageNet top-1 (%)")
        ax.set_ylabel("proxy validation top-1 (%), mean ± seed SD")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        if sweep:
            ax = axes[0][1]
            for f in pc.fidelities:
                if f.seconds_per_m4 is None:
                    continue
                ax.scatter([f.seconds_per_m4], [f.tau_paper], marker="o", color="tab:blue")
                if f.tau_long is not None:
                    ax.scatter([f.seconds_per_m4], [f.tau_long], marker="s", color="tab:orange")
                ax.annotate(f.protocol.name, (f.seconds_per_m4, f.tau_paper), xytext=(3, 3), textcoords="offset points",
                            fontsize=7)
            ax.scatter([], [], marker="o", color="tab:blue", label="tau vs the paper")
            ax.scatter([], [], marker="s", color="tab:orange", label="tau vs the long run")
            ax.axhline(0.867, color="gray", linestyle="--", label="p < 0.05 at n = 6")
            ax.set_xlabel("seconds to train and evaluate M4 (2 cores)")
            ax.set_ylabel("Kendall tau over M0-M5")
            ax.set_ylim(-1.05, 1.05)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle(f"proxy check on {pc.store.attrs.get('data', 'data')}: ranking of M0-M5 and its cost")
