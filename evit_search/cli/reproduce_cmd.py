"""``bench``, ``ablate`` and ``proxy-check``: the paper's tables and the proxy's fidelity.

The domain modules that load torch are imported inside the handlers, so that ``--help`` and the
parser stay fast."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..errors import UserError
from ..reporting.markdown import fmt
from ..training.protocols import get_protocol
from .options import (
    add_data_options,
    add_measure_options,
    add_storage,
    measure_settings,
    positive_float,
    positive_int,
    split_list,
    training_inputs,
)
from .progress import MeasureProgress, progress, rich_hooks


def add(sub) -> None:
    p = sub.add_parser("bench", help="re-measure the paper's Table 2/3 throughput here, or our deploy mode vs timm",
                       description="Measure throughput side by side with the paper's figures. 'table2'/'table3': "
                                   "EfficientViT M0-M5 (ours, deploy mode) and every peer of the table that timm has. "
                                   "'deploy': our M0-M5 deploy mode vs timm's efficientvit_msra eager and BN-folded.")
    p.add_argument("table", choices=["table2", "table3", "tables", "deploy", "search"],
                   help="table2, table3, tables (both: the paper's 21 peers and M0-M5), deploy, or search (full "
                        "training vs successive halving vs successive halving with the throughput model, --minutes each)")
    p.add_argument("--minutes", type=positive_float, default=30.0, help="bench search: CPU minutes per arm (default 30)")
    p.add_argument("--report-only", action="store_true",
                   help="bench search: rewrite the report from the studies a finished run stored under --reports "
                        "(nothing measured or trained); give the run's --no-paper-models, --protocol, --epochs and --seed, "
                        "which name its studies")
    p.add_argument("--space", default="efficientvit", help="bench search: the space (default efficientvit)")
    p.add_argument("--budget", default="1.25x", help="bench search: the budget (default 1.25x)")
    p.add_argument("--no-paper-models", action="store_true",
                   help="bench search: every arm starts from sampled candidates only (by default the paper's models "
                        "in the space come first in every arm, as in `run`: a head start that favours full training); "
                        "its studies and report are named search-benchmark-sampled-only-*")
    p.add_argument("--models", help="comma-separated paper names or timm names (default: all); M4 is always measured")
    p.add_argument("--jit", choices=["none", "trace", "freeze"], default="trace",
                   help="JIT applied to every model in table2/table3 (default: trace, the paper's protocol)")
    p.add_argument("--reports", default="reports", help="folder for CSV, markdown and PNG (default: reports/)")
    p.add_argument("--repeat-reference", type=positive_int, default=5,
                   help="measure M4 this many times in the session to report repeatability (default 5; 1 = off)")
    add_measure_options(p)
    add_data_options(p)
    p.set_defaults(func=run_bench)

    p = sub.add_parser("ablate", help="reproduce the paper's Table 6 ablations side by side with its numbers")
    p.add_argument("table", help="table6 (built in) or a rows YAML file like search_spaces/table6.yaml")
    p.add_argument("--no-train", action="store_true", help="measure params, FLOPs and throughput only")
    p.add_argument("--seeds", type=positive_int,
                   help="trained runs per row, seeds --seed, --seed+1, ...: each row's delta to row 1 gets a 95 %% "
                        "interval and a verdict: paired by seed (the residual SD of row + seed) when every row has the "
                        "same seeds, else from the seed SD pooled over the rows (default 3; 1 = no intervals)")
    p.add_argument("--study", help="study name (default: derived from table, data, protocol); resumed if it exists")
    add_storage(p)
    p.add_argument("--img-size", type=positive_int, default=224, help="input size for cost and throughput (default 224)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--match-throughput", default="2,3,4,8", metavar="ROWS",
                   help="rows matched to row 1's throughput on the first backend before anything else, as the paper "
                        "compared them: depths (row 8: depths, then stage widths) measured with row 1 in one session, "
                        "the closest within 5 %% used (default: 2,3,4,8)")
    g.add_argument("--no-match-throughput", "--no-suggest-depths", dest="no_match", action="store_true",
                   help="every row as the table states it")
    p.add_argument("--no-zerocost", action="store_true", help="do not compute the zero-cost scores of the rows")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON (rows, ratios, deltas, agreement)")
    p.add_argument("--reports", default="reports")
    add_data_options(p)
    add_measure_options(p, seconds=1.5, backends="torch-cpu,onnx-cpu,cuda")
    p.set_defaults(func=run_ablate)

    p = sub.add_parser("proxy-check", help="train M0-M5 with a protocol (several seeds); Kendall tau against the paper",
                       description="How faithful is a proxy protocol? Trains M0-M5 (each run stored and reused: a check "
                                   "resumes), reports per-model mean and seed SD, Kendall tau against the paper's top-1 "
                                   "with its exact p-value, against a long run on the same data, and the cost per M4.")
    p.add_argument("--models", default=",".join(f"efficientvit_m{i}" for i in range(6)))
    p.add_argument("--seeds", type=positive_int, default=1, help="seeds per model (default 1)")
    p.add_argument("--m4-seeds", type=positive_int, help="seeds for M4 alone, for its seed SD (default: --seeds)")
    p.add_argument("--sweep", metavar="PROTOCOLS", help="compare several protocols (comma-separated) instead of --protocol")
    p.add_argument("--long", metavar="PROTOCOL", help="a long run on the same data (one seed per model) to rank against")
    p.add_argument("--study", help="study holding the runs (default proxy-check-<data>)")
    add_storage(p)
    p.add_argument("--json", metavar="FILE", help="write the summary as JSON")
    p.add_argument("--reports", default="reports")
    add_data_options(p)
    p.set_defaults(func=run_proxy_check)


def _usable(backends: str, console: Console) -> list[str]:
    from ..measure.runner import usable_backends  # torch: loaded when the command runs, not for --help

    return usable_backends(split_list(backends), warn=lambda m: console.print(f"[yellow]{m}[/]"))


def run_bench(args) -> int:
    from ..measure.runner import measure  # torch: loaded when the command runs, not for --help
    from ..reproduce import bench

    if args.table == "search":
        return run_search_bench(args)
    console = Console()
    settings = measure_settings(args)
    backends = ["torch-cpu"] if args.table == "deploy" else _usable(args.backends, console)  # deploy: torch CPU only
    models = split_list(args.models) or None
    desc = (f"batch {settings.batch_size}, {settings.threads} thread(s), segments of {settings.seconds:g} s, "
            f">= {settings.min_rounds} interleaved rounds")
    if any(b.endswith("cuda") for b in backends):
        desc += (f"; GPU: batch {settings.cuda_batch or 'the largest power of two that fits (from 2048; onnx-cuda from 256)'}, "
                 f"cuda with fp16 autocast, onnx-cuda fp32 with device-bound input and output, "
                 f"segments of {settings.cuda_seconds or settings.seconds:g} s")
    if args.table == "deploy":
        specs = bench.deploy_rows(models)
        # ratios against our M4 when it is measured (the reference), else against the first model
        reference = next((s.label for s in specs if s.label == "ours-deploy M4"), specs[0].label)
        with progress(console) as prog:
            records = measure(specs, backends, settings, reference=reference, listener=MeasureProgress(prog, "bench deploy"))
        df, files = bench.write_deploy_report(records, Path(args.reports), desc)
        t = Table("model", "ours deploy", "timm eager", "timm folded+traced", "timm folded+frozen", "ours/eager",
                  "ours/folded+traced", "ours/folded+frozen", title="torch CPU img/s (median)")
        for r in df.to_dict("records"):
            t.add_row(r["model"], *(fmt(r[c], 1) for c in ("ours_deploy_images_per_s", "timm_eager_images_per_s",
                      "timm_folded_traced_images_per_s", "timm_folded_frozen_images_per_s")),
                      *(fmt(r[c], 3) for c in ("ours_over_timm_eager", "ours_over_timm_folded_traced",
                                                "ours_over_timm_folded_frozen")))
        console.print(t)
    else:
        rows = bench.with_reference_repeats(bench.table_rows(args.table, models, args.jit), args.repeat_reference)
        with progress(console) as prog:
            records = measure([r.spec for r in rows], backends, settings, reference=bench.REFERENCE,
                              listener=MeasureProgress(prog, f"bench {args.table}"))
        df, corr, claims, files = bench.write_table_report(args.table, rows, records, Path(args.reports), desc)
        t = Table("model", "backend", "img/s", "min-max", "ratio to M4", "paper img/s", "paper ratio", "ours/paper",
                  title=f"{args.table}: measured here vs the paper")
        skipped = sorted({(r["backend"], r["reason"]) for r in df.to_dict("records") if r["status"] == "skipped"})
        for r in df.to_dict("records"):
            if r["status"] == "skipped":
                continue
            if r["status"] != "ok":
                t.add_row(r["model"], r["backend"], f"[red]{r['status']}[/]", r["reason"] or "", "",
                          fmt(r["paper_images_per_s"]), "", "")
                continue
            t.add_row(r["model"], r["backend"], fmt(r["images_per_s"]), f"{fmt(r['images_per_s_min'])}-{fmt(r['images_per_s_max'])}",
                      fmt(r["ratio_to_m4"], 3), fmt(r["paper_images_per_s"]), fmt(r["paper_ratio_to_m4"], 3),
                      fmt(r["ours_over_paper"], 2))
        console.print(t)
        for b, why in skipped:
            console.print(f"[yellow]{b} skipped:[/] {why}")
        for b, c in corr.items():
            console.print(f"Spearman vs paper, {b}: {c['spearman']:.3f} over {c['n']} models")
        for b, r in bench.repeat_spread(df).items():
            console.print(f"{bench.REFERENCE} x{r['n']} in one session, {b}: spread of medians {100 * r['spread']:.1f} %")
        for c in claims:
            console.print(f"[yellow]does not hold here:[/] {c}")
    console.print("wrote " + ", ".join(str(p) for p in files.as_dict().values()))
    return 0


def _match_rows(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in split_list(text))
    except ValueError:
        raise UserError(f"--match-throughput={text!r}: give comma-separated row numbers, e.g. 2,3,4,8") from None


def run_ablate(args) -> int:
    from ..reproduce.table6 import AblateConfig, ablate  # torch and optuna: loaded when the command runs
    from ..reproduce.table6_compare import column_agreement, delta_cell, results_json, top1_text
    from ..reproduce.table6_report import write_report
    from ..storage import jsonable
    from ..training.device import check_precision, resolve_device

    console = Console()
    if args.img_size < 16:
        raise UserError(f"--img-size={args.img_size} must be >= 16 (the stem divides it by 16)")
    match_rows = () if args.no_match else _match_rows(args.match_throughput)
    backends = _usable(args.backends, console)
    device = resolve_device(args.device)
    precision = check_precision("amp" if args.amp else "fp32", device)
    cfg = AblateConfig(table=args.table, backends=backends, protocol=args.protocol, data=args.data, data_dir=args.data_dir,
                       train=not args.no_train, storage=args.storage, study=args.study, measure=measure_settings(args),
                       seed=args.seed, seeds=args.seeds or (1 if args.no_train else 3), epochs=args.epochs,
                       img_size=args.img_size, train_threads=args.train_threads, match_rows=match_rows,
                       zerocost=not args.no_zerocost, device=device, precision=precision)
    with progress(console) as prog:
        ab = ablate(cfg, rich_hooks(prog, "ablate"))
    files = write_report(ab, backends, Path(args.reports), args.data, cfg.train)
    t = Table("row", "ablation", "depths", "paper top-1", "ours val top-1 (± SD, n)", "ours Δ [95 % CI]",
              *(f"{b} Δ% ours / paper" for b in backends), title=f"Table 6: {ab.store.name}")
    for r in ab.rows:
        t.add_row(str(r["row"]), r["ablation"], "/".join(map(str, r["depths"] or [])), fmt(r["paper_top1"]),
                  top1_text(r), delta_cell(r),
                  *(f"{fmt(r[f'{b}_delta_pct'])} / {fmt(r[f'{b}_paper_delta_pct'])}" for b in backends))
    console.print(t)
    agree = column_agreement(ab.rows, backends)
    sig = agree["significant"]
    console.print((f"top-1: {sig['n']} rows outside the seed noise, same sign as the paper in {sig['agree']}/{sig['n']}; "
                   if sig["noise_measured"] else "top-1: one seed per row, no delta is established; ")
                  + f"Kendall tau {fmt(agree['kendall_top1'], 3)} (p {fmt(agree['kendall_top1_p'], 3)}); "
                  + "; ".join(f"{b} same sign {agree[b]['agree']}/{agree[b]['n']}" for b in backends))
    for m in ab.matches.values():
        console.print(("" if m.matched else "[yellow]") + m.text() + ("" if m.matched else "[/]"))
    if ab.calibration is not None:
        console.print("zero-cost Kendall tau vs the paper's top-1 over the rows: " + ", ".join(
            f"{t.name} {fmt(t.tau_paper, 2)}" + (" (tracks size)" if t.tracks_size else "") for t in ab.calibration.taus))
    written = list(files.as_dict().values())
    if args.json:
        meta = {"study": ab.store.name, "storage": ab.store.display_url, "table": args.table, "protocol": cfg.protocol,
                "data": args.data, "trained": cfg.train, "budget_backend": backends[0],
                "environment": (ab.store.attrs.get("measurement") or {}).get("env") or {}}
        doc = results_json(ab.rows, backends, {r: m.to_dict() for r, m in ab.matches.items()},
                           ab.calibration.to_dict() if ab.calibration else None, meta)
        Path(args.json).write_text(json.dumps(jsonable(doc), indent=1))
        written.append(args.json)
    console.print("wrote " + ", ".join(str(p) for p in written))
    return 0


def run_proxy_check(args) -> int:
    from ..reproduce.proxycheck import ProxyCheckConfig, proxy_check  # torch: loaded when the command runs
    from ..reproduce.proxycheck_report import verdict, write_report

    console = Console()
    device, precision, protocol, bundle = training_inputs(args)
    cfg = ProxyCheckConfig(protocols=split_list(args.sweep) or [protocol.name], models=split_list(args.models),
                           seeds=args.seeds, m4_seeds=args.m4_seeds, long=args.long, seed=args.seed, data=args.data,
                           data_name=bundle.name, storage=args.storage, study=args.study, threads=args.train_threads,
                           device=device, precision=precision)
    with progress(console) as prog:
        res = proxy_check(cfg, bundle, rich_hooks(prog))
    for f in res.fidelities + ([res.long] if res.long else []):
        t = Table("model", "seeds", "val top-1 % (mean ± SD)", "test top-1 %", "paper top-1", "params M", "FLOPs M",
                  "s per run", title=f"proxy check: {f.protocol.name} ({res.split})")
        for m in f.models:
            t.add_row(m["model"], str(m["runs"]), fmt(m["mean"], 2) + (f" ± {m['sd']:.2f}" if m["sd"] is not None else ""),
                      fmt(m["test_mean"], 2), fmt(m["paper_top1"]), fmt(m["params_m"], 2), fmt(m["flops_m"], 0),
                      fmt(m["seconds"], 0))
        console.print(t)
        for line in verdict(f):
            console.print(line)
    files = write_report(res, Path(args.reports), bundle.describe(protocol.img_size),
                         Path(args.json) if args.json else None)
    console.print("wrote " + ", ".join(str(p) for p in files.as_dict().values()) + (f", {args.json}" if args.json else ""))
    return 0


def search_bench_config(args):
    """The run settings every arm of ``bench search`` shares (each arm then sets its fidelity)."""
    from ..search.config import RunConfig  # torch: loaded when the command runs, not for --help

    return RunConfig(space=args.space, budget=args.budget, seed=args.seed, data=args.data, data_dir=args.data_dir,
                     classes=args.classes, per_class=args.per_class, protocol=args.protocol, epochs=args.epochs,
                     train_threads=args.train_threads, device=args.device, paper_models=not args.no_paper_models)


def search_bench_name(args) -> str:
    """The report's and the studies' folder's name: a run without the paper's models has its own,
    so it never resumes the other's studies (their first trials are the paper's models), and so
    has a run with another protocol or number of epochs (other rungs, other accuracies) or another
    seed (a replicate beside the first). The defaults keep the first runs' names; an --epochs
    equal to the protocol's own is the same protocol. An unknown protocol is refused here, before
    it names a folder."""
    own = get_protocol(args.protocol).epochs
    return ("search-benchmark" + ("-sampled-only" if args.no_paper_models else "")
            + (f"-{args.protocol}" if args.protocol != "proxy" else "")
            + (f"-{args.epochs}ep" if args.epochs and args.epochs != own else "")
            + (f"-seed{args.seed}" if args.seed else ""))


def run_search_bench(args) -> int:
    from ..reproduce import search_bench  # torch: loaded when the command runs, not for --help
    from ..search.budget import parse_budget

    console = Console()
    name = search_bench_name(args)
    folder = Path(args.reports) / f"{name}-runs"
    if args.report_only:  # the run's own settings and CPU minutes, as stored
        arms = search_bench.load_arms(folder)
    else:
        with progress(console) as prog:
            arms = search_bench.run_arms(search_bench_config(args), args.minutes, folder, rich_hooks(prog, "search bench"))
    run, minutes = arms[0].store.attrs.get("settings") or {}, arms[0].minutes or args.minutes
    desc = (f"Space `{run.get('space')}`, budget {run.get('budget')}, protocol `{run.get('protocol')}`"
            + (f" for {run['epochs']} epochs" if run.get("epochs") else "") + " on " +
            f"{run.get('data')}, seed {run.get('seed')}, {minutes:g} CPU min per arm, one arm after the other, "
            + ("sampled candidates only (`--no-paper-models`)" if args.no_paper_models
               else "the paper's models in the space first in every arm")
            + f"; studies in {folder}.")
    files = search_bench.write_report(arms, parse_budget(run.get("budget") or args.budget).min_ratio or 1.0,
                                      Path(args.reports), desc, budget_cpu_s=minutes * 60, name=name)
    console.print("wrote " + ", ".join(str(p) for p in files.as_dict().values()))
    return 0
