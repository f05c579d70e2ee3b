"""``evit-search bench``: re-measure the paper's throughput tables (and our deploy mode against
timm) on this machine, side by side with the paper's figures."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

import efficientvit

from ..env import fingerprint
from ..errors import UserError
from ..measure.records import ModelSpec, ThroughputRecord
from ..reporting.markdown import ReportFiles, fmt, markdown_table
from ..reporting.plots import figure
from ..stats import is_missing, spearman
from . import paper

OURS = [f"efficientvit_m{i}" for i in range(6)]
REFERENCE = "EfficientViT-M4"


@dataclass(frozen=True)
class BenchRow:
    label: str  # the paper's model name
    spec: ModelSpec
    paper: dict  # the paper's row


def _ours_spec(label: str, timm_name: str, img_size: int = 224, jit: str = "freeze") -> ModelSpec:
    cfg = efficientvit.get_config(timm_name, img_size=img_size)
    return ModelSpec(label=label, source="efficientvit", config=cfg.to_dict(), img_size=img_size, fold=True, jit=jit)


def table_rows(table: str, models: list[str] | None = None, jit: str = "trace") -> list[BenchRow]:
    """Rows of paper Table 2 or 3 that can be built here: ours for EfficientViT, timm for peers
    (random weights, the paper's input size). Every model gets the same treatment: BN folded where
    the model offers it, then ``jit`` (default ``trace``, the paper's speed-test protocol; ``freeze``
    also folds conv+BN+ReLU everywhere, which helps the MobileNets far more than the paper saw).
    ``tables`` is Table 2 and Table 3 together (M5 once), the paper's full peer set."""
    if table == "tables":
        seen, rows = set(), []
        for r in table_rows("table2", None, jit) + table_rows("table3", None, jit):
            if r.label not in seen:
                seen.add(r.label)
                rows.append(r)
        return _filter(rows, models, table)
    df = paper.table(table)
    rows = []
    for rec in df.to_dict("records"):
        name = rec.get("timm_name")
        if not isinstance(name, str) or not name:
            continue  # not in timm: cannot be measured here
        size = int(rec.get("input", 224) if not is_missing(rec.get("input")) else 224)
        if name in OURS:
            spec = _ours_spec(rec["model"], name, size, jit)
        else:
            spec = ModelSpec(label=rec["model"], source="timm", timm_name=name, img_size=size, fold=True, jit=jit)
        rows.append(BenchRow(rec["model"], spec, rec))
    if table == "table3" and not any(r.label == REFERENCE for r in rows):
        m4 = paper.table("table2").set_index("model").loc[REFERENCE].to_dict()
        m4["model"] = REFERENCE
        rows.append(BenchRow(REFERENCE, _ours_spec(REFERENCE, "efficientvit_m4", 224, jit), m4))
    return _filter(rows, models, table)


def _filter(rows: list[BenchRow], models: list[str] | None, table: str) -> list[BenchRow]:
    if models:
        wanted = {m.lower() for m in models}
        names = lambda r: {r.label.lower(), str(r.paper.get("timm_name") or "").lower()}  # noqa: E731
        unknown = sorted(wanted - set().union(*(names(r) for r in rows)))
        if unknown:
            raise UserError(f"--models: {', '.join(unknown)} not in {table}; known: {', '.join(r.label for r in rows)}")
        rows = [r for r in rows if names(r) & wanted or r.label == REFERENCE]
    return rows


def with_reference_repeats(rows: list[BenchRow], repeats: int) -> list[BenchRow]:
    """Add ``repeats - 1`` extra copies of M4 under their own labels: the spread of the five
    medians measured in one session is the repeatability the report states."""
    ref = next((r for r in rows if r.label == REFERENCE), None)
    if ref is None or repeats <= 1:
        return rows
    extra = [BenchRow(f"{REFERENCE} #{k}", replace(ref.spec, label=f"{REFERENCE} #{k}"), ref.paper)
             for k in range(2, repeats + 1)]
    return rows + extra


def repeat_spread(df: pd.DataFrame) -> dict[str, dict]:
    out = {}
    reps = df[df["model"].str.startswith(REFERENCE) & (df["status"] == "ok")]
    for backend, g in reps.groupby("backend"):
        if len(g) > 1:
            out[backend] = {"n": len(g), "medians": list(g["images_per_s"]),
                            "spread": float(g["images_per_s"].max() / g["images_per_s"].min() - 1)}
    return out


def deploy_rows(models: list[str] | None = None) -> list[ModelSpec]:
    """Our deploy mode vs timm's efficientvit_msra eager, BN-folded + traced (the
    official speed-test protocol) and BN-folded + frozen (the same JIT as our deploy mode)."""
    names = models or OURS
    specs = []
    for n in names:
        short = n.replace("efficientvit_", "").upper()
        specs += [
            _ours_spec(f"ours-deploy {short}", n),
            ModelSpec(f"timm-eager {short}", source="timm", timm_name=n, fold=False, jit="none"),
            ModelSpec(f"timm-folded-traced {short}", source="timm", timm_name=n, fold=True, jit="trace"),
            ModelSpec(f"timm-folded-frozen {short}", source="timm", timm_name=n, fold=True, jit="freeze"),
        ]
    return specs


# --------------------------------------------------------------------------- comparison
def compare_table(rows: list[BenchRow], records: list[ThroughputRecord]) -> pd.DataFrame:
    """One row per (model, backend): ours, the paper's, ratios to M4, ours/paper."""
    by = {(r.backend, r.model): r for r in records}
    paper_ref = {b: next((row.paper.get(col) for row in rows if row.label == REFERENCE), None)
                 for b, col in paper.PAPER_THROUGHPUT.items()}
    out = []
    for (backend, label), rec in by.items():
        row = next(r for r in rows if r.label == label)
        col = paper.PAPER_THROUGHPUT[backend]
        p_ips = row.paper.get(col)
        p_ref = paper_ref.get(backend)
        out.append({
            "model": label, "backend": backend, "status": rec.status, "reason": rec.reason,
            "images_per_s": rec.images_per_s, "images_per_s_min": rec.images_per_s_min,
            "images_per_s_max": rec.images_per_s_max, "spread": rec.spread, "rounds": rec.rounds,
            "batch_size": rec.batch_size, "precision": rec.precision,
            "ratio_to_m4": rec.ratio_to_reference,
            "paper_images_per_s": p_ips,
            "paper_ratio_to_m4": (p_ips / p_ref) if p_ips and p_ref else None,
            "ours_over_paper": (rec.images_per_s / p_ips) if rec.images_per_s and p_ips else None,
            "paper_top1": row.paper.get("top1"), "input_size": row.spec.img_size,
        })
    return pd.DataFrame(out)


def _main_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[~df["model"].str.contains("#", regex=False)]


def rank_correlations(df: pd.DataFrame) -> dict[str, dict]:
    out = {}
    for backend, g in _main_rows(df[df["status"] == "ok"]).groupby("backend"):
        g = g.dropna(subset=["images_per_s", "paper_images_per_s"])
        out[backend] = {"n": len(g), "spearman": spearman(g["images_per_s"], g["paper_images_per_s"])}
    return out


def claims_not_holding(df: pd.DataFrame) -> list[str]:
    """Pairs (EfficientViT, peer) whose speed order in the paper flips on this machine."""
    lines = []
    ok = _main_rows(df[(df["status"] == "ok") & df["paper_images_per_s"].notna()])
    for backend, g in ok.groupby("backend"):
        evit = g[g["model"].str.startswith("EfficientViT")]
        peers = g[~g["model"].str.startswith("EfficientViT")]
        for _, e in evit.iterrows():
            for _, p in peers.iterrows():
                paper_faster = e["paper_images_per_s"] > p["paper_images_per_s"]
                ours_faster = e["images_per_s"] > p["images_per_s"]
                if paper_faster != ours_faster:
                    lines.append(
                        f"{backend}: the paper has {e['model']} {'faster' if paper_faster else 'slower'} than {p['model']} "
                        f"({e['paper_images_per_s']:.1f} vs {p['paper_images_per_s']:.1f} img/s); here it is "
                        f"{'faster' if ours_faster else 'slower'} ({e['images_per_s']:.1f} vs {p['images_per_s']:.1f})."
                    )
    return lines


# --------------------------------------------------------------------------- reports
def plot_paper_vs_ours(df: pd.DataFrame, path: Path, title: str) -> None:
    backends = [b for b in df["backend"].unique() if (df[(df.backend == b) & (df.status == "ok")]["paper_images_per_s"].notna()).any()]
    n = max(1, len(backends))
    with figure(path, ncols=n, figsize=(6 * n, 5.5), squeeze=False) as (fig, axes):
        for ax, b in zip(axes[0], backends):
            g = _main_rows(df[(df.backend == b) & (df.status == "ok")]).dropna(subset=["paper_images_per_s", "images_per_s"])
            evit = g["model"].str.startswith("EfficientViT")
            ax.scatter(g[~evit]["paper_images_per_s"], g[~evit]["images_per_s"], label="peers (timm)", color="tab:gray")
            ax.scatter(g[evit]["paper_images_per_s"], g[evit]["images_per_s"], label="EfficientViT (ours, deploy)", color="tab:red")
            for _, r in g.iterrows():
                ax.annotate(r["model"].replace("EfficientViT-", ""), (r["paper_images_per_s"], r["images_per_s"]), fontsize=7,
                            xytext=(3, 3), textcoords="offset points")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(f"paper img/s ({paper.PAPER_THROUGHPUT[b]})")
            ax.set_ylabel("measured here, img/s (median)")
            rho = spearman(g["images_per_s"], g["paper_images_per_s"]) if len(g) > 1 else float("nan")
            ax.set_title(f"{b}: Spearman {rho:.3f} (n={len(g)})")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(title)


def write_table_report(table: str, rows: list[BenchRow], records: list[ThroughputRecord], reports_dir: Path,
                       settings_desc: str) -> tuple[pd.DataFrame, dict, list[str], ReportFiles]:
    df = compare_table(rows, records)
    corr = rank_correlations(df)
    claims = claims_not_holding(df)
    files = ReportFiles.at(reports_dir, f"bench-{table}")
    df.to_csv(files.csv, index=False)
    env = next((r.env for r in records if r.env), fingerprint())
    cols = [("model", "model", 0), ("backend", "backend", 0), ("images_per_s", "img/s (median)", 1),
            ("images_per_s_min", "min", 1), ("images_per_s_max", "max", 1), ("ratio_to_m4", "ratio to M4", 3),
            ("paper_images_per_s", "paper img/s", 1), ("paper_ratio_to_m4", "paper ratio to M4", 3),
            ("ours_over_paper", "ours/paper", 2), ("status", "status", 0)]
    if (df["backend"].str.endswith("cuda") & (df["status"] == "ok")).any():  # the GPU batch is per model: show it
        cols[2:2] = [("batch_size", "batch", 0), ("precision", "precision", 0)]
    lines = [f"# `evit-search bench {table}` on {env.get('machine')}", "",
             f"Paper {table.replace('table', 'Table ')} re-measured here, random weights, {settings_desc}.",
             "EfficientViT models are ours in deploy mode; peers are timm's, BN folded where the model offers it, "
             "with the same JIT treatment. Ratios to M4 are medians of per-round paired ratios measured in the same session.",
             "", "## Throughput", "",
             markdown_table(df[df.status != "skipped"], cols), "",
             "## Rank agreement with the paper", ""]
    for b, c in corr.items():
        lines.append(f"- {b}: Spearman {c['spearman']:.3f} over {c['n']} models")
    lines += ["", "## Repeatability", "", f"{REFERENCE} measured as separate models in the same session; "
              "target: spread of the medians (max/min - 1) at most 3 %.", ""]
    for b, r in repeat_spread(df).items():
        lines.append(f"- {b}: {r['n']} medians {', '.join(f'{m:.1f}' for m in r['medians'])} img/s: spread "
                     f"{100 * r['spread']:.1f} % ({'met' if r['spread'] <= 0.03 else 'NOT met'})")
    lines += ["", "## Claims of the paper that do not hold here", ""]
    lines += [f"- {c}" for c in claims] or ["- none: every EfficientViT-vs-peer speed order of the paper holds here."]
    failed = df[df.status != "ok"]
    if len(failed):
        lines += ["", "## Not measured", ""] + [f"- {r.model} on {r.backend}: {r.status}: {r.reason}" for r in failed.itertuples()]
    files.write_md(lines, env)
    plot_paper_vs_ours(df, files.png, f"bench {table} on {env.get('machine')}")
    return df, corr, claims, files


def deploy_summary(records: list[ThroughputRecord]) -> pd.DataFrame:
    """One row per model: img/s of each variant and ours over each of timm's."""
    ok = {r.model: r for r in records if r.status == "ok" and r.backend == "torch-cpu"}
    rows = []
    for short in sorted({m.split(" ")[1] for m in ok}):
        get = lambda k: ok.get(f"{k} {short}")  # noqa: E731
        ours, eager, traced, frozen = get("ours-deploy"), get("timm-eager"), get("timm-folded-traced"), get("timm-folded-frozen")

        def ratio(a, b):
            return a.images_per_s / b.images_per_s if a and b else None

        rows.append({
            "model": short,
            "ours_deploy_images_per_s": ours and ours.images_per_s,
            "ours_deploy_spread": ours and ours.spread,
            "timm_eager_images_per_s": eager and eager.images_per_s,
            "timm_folded_traced_images_per_s": traced and traced.images_per_s,
            "timm_folded_frozen_images_per_s": frozen and frozen.images_per_s,
            "ours_over_timm_eager": ratio(ours, eager),
            "ours_over_timm_folded_traced": ratio(ours, traced),
            "ours_over_timm_folded_frozen": ratio(ours, frozen),
        })
    return pd.DataFrame(rows)


def write_deploy_report(records: list[ThroughputRecord], reports_dir: Path, settings_desc: str) -> tuple[pd.DataFrame, ReportFiles]:
    df = deploy_summary(records)
    files = ReportFiles.at(reports_dir, "bench-deploy")
    pd.DataFrame([r.to_dict() for r in records]).drop(columns=["env"]).to_csv(files.csv, index=False)
    env = next((r.env for r in records if r.env), fingerprint())
    cols = [("model", "model", 0), ("ours_deploy_images_per_s", "ours deploy", 1), ("ours_deploy_spread", "spread", 3),
            ("timm_eager_images_per_s", "timm eager", 1), ("timm_folded_traced_images_per_s", "timm folded+traced", 1),
            ("timm_folded_frozen_images_per_s", "timm folded+frozen", 1), ("ours_over_timm_eager", "ours / eager", 3),
            ("ours_over_timm_folded_traced", "ours / folded+traced", 3), ("ours_over_timm_folded_frozen", "ours / folded+frozen", 3)]
    m4 = df[df.model == "M4"]
    verdict = []
    if len(m4):
        r = m4.iloc[0]
        verdict = [
            f"- M4 deploy / timm eager = {fmt(r.ours_over_timm_eager, 3)} (target >= 1.25): "
            f"{'met' if (r.ours_over_timm_eager or 0) >= 1.25 else 'NOT met'}",
            f"- M4 deploy / timm folded+traced = {fmt(r.ours_over_timm_folded_traced, 3)} (target >= 1.0): "
            f"{'met' if (r.ours_over_timm_folded_traced or 0) >= 1.0 else 'NOT met'}",
            f"- M4 deploy / timm folded+frozen = {fmt(r.ours_over_timm_folded_frozen, 3)} (no target: same JIT, "
            "shows how much comes from the model code rather than from TorchScript freezing)",
        ]
    lines = [f"# Deploy-mode speed on {env.get('machine')}", "",
             f"torch CPU, {settings_desc}. Ours: `efficientvit.fuse` (BN, residual-DW identity and attention scale folded, "
             "biases gathered) then trace + freeze + optimize_for_inference. timm eager: `efficientvit_msra` as built. "
             "timm folded+traced: `reparameterize_model` + `torch.jit.trace` (the official speed_test protocol). "
             "timm folded+frozen: the same JIT as ours. Ratios are of medians measured side by side in one interleaved session.",
             "", "## Targets (M4)", "", *verdict, "", "## All models", "", markdown_table(df, cols), "",
             ]
    files.write_md(lines, env)
    _plot_deploy(df, files.png, env)
    return df, files


def _plot_deploy(df: pd.DataFrame, path: Path, env: dict) -> None:
    width = 0.2
    cols = [("timm_eager_images_per_s", "timm eager"), ("timm_folded_traced_images_per_s", "timm folded+traced"),
            ("timm_folded_frozen_images_per_s", "timm folded+frozen"), ("ours_deploy_images_per_s", "ours deploy")]
    xs = range(len(df))
    with figure(path, figsize=(8, 4.5)) as (fig, ax):
        for j, (c, label) in enumerate(cols):
            ax.bar([x + (j - 1.5) * width for x in xs], df[c].fillna(0), width, label=label)
        ax.set_xticks(list(xs), df["model"])
        ax.set_ylabel("img/s (median), torch CPU")
        ax.set_title(f"Deploy mode vs timm on {env.get('machine')}")
        ax.legend(fontsize=8)
