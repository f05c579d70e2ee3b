"""Sub-commands of ``evit-search``: argument definitions here, work in the modules they call
(imported inside each command so that ``--help`` stays fast)."""

from __future__ import annotations

import argparse


def add_all(sub: argparse._SubParsersAction) -> None:
    for add in (_models, _bench, _train, _proxy_check, _run, _show, _report, _export, _ablate, _data, _tui):
        add(sub)


def _models(sub) -> None:
    p = sub.add_parser("models", help="list the named models (M0-M5 and the Table 6 variants)")
    p.set_defaults(func=_run_models)


def _run_models(args) -> int:
    from rich.console import Console
    from rich.table import Table

    import efficientvit

    t = Table("name", "description", "C", "L", "H")
    for name in efficientvit.list_models():
        cfg = efficientvit.get_config(name)
        t.add_row(name, efficientvit.describe(name), str([s.dim for s in cfg.stages]),
                  str([s.depth for s in cfg.stages]), str([s.num_heads for s in cfg.stages]))
    Console().print(t)
    return 0


# --------------------------------------------------------------------------- measurement options
def _add_measure_options(p, seconds: float = 2.0, backends: str = "torch-cpu,onnx-cpu,cuda") -> None:
    g = p.add_argument_group("measurement")
    g.add_argument("--backends", default=backends,
                   help="comma-separated: torch-cpu, onnx-cpu, cuda, onnx-cuda (GPU ones are skipped without a GPU)")
    g.add_argument("--seconds", type=float, default=seconds, help="seconds per timed segment (default %(default)s)")
    g.add_argument("--warmup", type=float, default=None, help="warm-up seconds per model (default: = --seconds)")
    g.add_argument("--threads", type=int, default=1, help="CPU threads (default 1, the paper's protocol)")
    g.add_argument("--batch", type=int, default=16, help="CPU batch size (default 16, the paper's protocol)")
    g.add_argument("--rounds", type=int, default=5, help="minimum interleaved rounds (default %(default)s)")
    g.add_argument("--max-rounds", type=int, default=15)
    g.add_argument("--target-ci", type=float, default=0.03,
                   help="stop adding rounds when every median's 95%% CI is this narrow, relative (default %(default)s)")
    g.add_argument("--time-cap", type=float, default=1800.0, help="seconds after which no round is added")
    g.add_argument("--channels-last", action="store_true")
    g.add_argument("--gpu-batch", type=int, default=None,
                   help="GPU batch size (default: the largest power of two that fits, from 2048 for cuda and 256 for "
                        "onnx-cuda, the official protocol)")
    g.add_argument("--gpu-seconds", type=float, default=None,
                   help="seconds per timed segment on the GPU backends (default: = --seconds)")


def measure_settings(args):
    from ..errors import UserError
    from ..measure.records import Settings

    optional = ("gpu_batch", "gpu_seconds")  # None: the protocol's default
    for name in ("seconds", "threads", "batch", "rounds", "max_rounds", *optional):
        v = getattr(args, name)
        if v is None and name in optional:
            continue
        if v is None or v <= 0:
            raise UserError(f"--{name.replace('_', '-')}={v} must be positive")
    if args.max_rounds < args.rounds:
        raise UserError(f"--max-rounds={args.max_rounds} must be >= --rounds={args.rounds}")
    return Settings(batch_size=args.batch, threads=args.threads, channels_last=args.channels_last,
                    seconds=args.seconds, warmup_s=args.warmup if args.warmup is not None else args.seconds,
                    min_rounds=args.rounds, max_rounds=args.max_rounds, target_ci=args.target_ci,
                    time_cap_s=args.time_cap, cuda_batch=args.gpu_batch, cuda_seconds=args.gpu_seconds)


def split_list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def progress():
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed} done"),
                    TimeElapsedColumn(), transient=False)


# --------------------------------------------------------------------------- bench
def _bench(sub) -> None:
    p = sub.add_parser("bench", help="re-measure the paper's Table 2/3 throughput here, or our deploy mode vs timm",
                       description="Measure throughput side by side with the paper's figures. 'table2'/'table3': "
                                   "EfficientViT M0-M5 (ours, deploy mode) and every peer of the table that timm has. "
                                   "'deploy': our M0-M5 deploy mode vs timm's efficientvit_msra eager and BN-folded.")
    p.add_argument("table", choices=["table2", "table3", "tables", "deploy"],
                   help="table2, table3, tables (both: the paper's 21 peers and M0-M5) or deploy")
    p.add_argument("--models", help="comma-separated paper names or timm names (default: all); M4 is always measured")
    p.add_argument("--jit", choices=["none", "trace", "freeze"], default="trace",
                   help="JIT applied to every model in table2/table3 (default: trace, the paper's protocol)")
    p.add_argument("--reports", default="reports", help="folder for CSV, markdown and PNG (default: reports/)")
    p.add_argument("--repeat-reference", type=int, default=5,
                   help="measure M4 this many times in the session to report repeatability (default 5; 1 = off)")
    _add_measure_options(p)
    p.set_defaults(func=_run_bench)


def _run_bench(args) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from ..measure.runner import RichListener, measure, usable_backends
    from ..reproduce import bench

    console = Console()
    settings = measure_settings(args)
    if args.table == "deploy":  # deploy mode is a torch CPU comparison (issue 2)
        backends = ["torch-cpu"]
    else:
        backends = usable_backends(split_list(args.backends), warn=lambda m: console.print(f"[yellow]{m}[/]"))
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
        with progress() as prog:
            records = measure(specs, backends, settings, reference=reference, listener=RichListener(prog, "bench deploy"))
        df, paths = bench.write_deploy_report(records, Path(args.reports), desc)
        t = Table("model", "ours deploy", "timm eager", "timm folded+traced", "timm folded+frozen", "ours/eager",
                  "ours/folded+traced", "ours/folded+frozen", title="torch CPU img/s (median)")
        for r in df.to_dict("records"):
            t.add_row(r["model"], *(bench._fmt(r[c], 1) for c in ("ours_deploy_images_per_s", "timm_eager_images_per_s",
                      "timm_folded_traced_images_per_s", "timm_folded_frozen_images_per_s")),
                      *(bench._fmt(r[c], 3) for c in ("ours_over_timm_eager", "ours_over_timm_folded_traced", "ours_over_timm_folded_frozen")))
        console.print(t)
    else:
        rows = bench.with_reference_repeats(bench.table_rows(args.table, models, args.jit), args.repeat_reference)
        specs = [r.spec for r in rows]
        with progress() as prog:
            records = measure(specs, backends, settings, reference=bench.REFERENCE,
                              listener=RichListener(prog, f"bench {args.table}"))
        df, corr, claims, paths = bench.write_table_report(args.table, rows, records, Path(args.reports), desc)
        t = Table("model", "backend", "img/s", "min-max", "ratio to M4", "paper img/s", "paper ratio", "ours/paper",
                  title=f"{args.table}: measured here vs the paper")
        skipped = sorted({(r["backend"], r["reason"]) for r in df.to_dict("records") if r["status"] == "skipped"})
        for r in df.to_dict("records"):
            if r["status"] == "skipped":
                continue
            if r["status"] != "ok":
                t.add_row(r["model"], r["backend"], f"[red]{r['status']}[/]", r["reason"] or "", "", bench._fmt(r["paper_images_per_s"]), "", "")
                continue
            t.add_row(r["model"], r["backend"], bench._fmt(r["images_per_s"]),
                      f"{bench._fmt(r['images_per_s_min'])}-{bench._fmt(r['images_per_s_max'])}",
                      bench._fmt(r["ratio_to_m4"], 3), bench._fmt(r["paper_images_per_s"]),
                      bench._fmt(r["paper_ratio_to_m4"], 3), bench._fmt(r["ours_over_paper"], 2))
        console.print(t)
        for b, why in skipped:
            console.print(f"[yellow]{b} skipped:[/] {why}")
        for b, c in corr.items():
            console.print(f"Spearman vs paper, {b}: {c['spearman']:.3f} over {c['n']} models")
        for b, r in bench.repeat_spread(df).items():
            console.print(f"{bench.REFERENCE} x{r['n']} in one session, {b}: spread of medians {100 * r['spread']:.1f} %")
        for c in claims:
            console.print(f"[yellow]does not hold here:[/] {c}")
    console.print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


# --------------------------------------------------------------------------- training
def _add_data_options(p, default_protocol: str = "proxy") -> None:
    g = p.add_argument_group("data and protocol")
    g.add_argument("--data", default="fashion-mnist",
                   help="fashion-mnist (default), cifar10, cifar100, imagefolder:PATH, digits, synthetic")
    g.add_argument("--data-dir", help="where the dataset lies (else $EVIT_DATA, ~/.cache/evit-search/data, /usr/share/datasets)")
    g.add_argument("--classes", type=int, help="keep the first N classes")
    g.add_argument("--per-class", type=int, help="keep at most N training images per class")
    g.add_argument("--protocol", default=default_protocol, help="paper, ablation, proxy-gpu, proxy (default), proxy-fast")
    g.add_argument("--epochs", type=int, help="override the protocol's epochs")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--train-threads", type=int,
                   help="threads for training (default: all cores, shared out among --jobs workers)")
    g.add_argument("--device", default="auto",
                   help="training device: auto (default: the GPU when there is one), cpu, cuda, cuda:N")


def training_inputs(args):
    """(device, protocol, dataset) from the data-and-protocol options, checked in that order, cheap
    first: a bad --device is reported before a dataset is read."""
    from ..training.trainer import resolve_device

    return resolve_device(args.device), protocol_from_args(args), dataset_from_args(args)


def load_model_or_config(text: str):
    """A registered model name or a YAML/JSON file holding an EfficientViTConfig dict."""
    from pathlib import Path

    import efficientvit

    from ..errors import UserError

    if text in efficientvit.list_models():
        return efficientvit.get_config(text)
    path = Path(text)
    if path.suffix in (".yaml", ".yml", ".json") or path.exists():
        if not path.is_file():
            raise UserError(f"MODEL_OR_CONFIG: {text} is not a file")
        import yaml

        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise UserError(f"{text}: not valid YAML/JSON ({str(e).splitlines()[0]})") from None
        if isinstance(data, dict) and "config" in data:
            data = data["config"]
        return efficientvit.EfficientViTConfig.from_dict(data).validate()
    raise UserError(f"MODEL_OR_CONFIG: {text!r} is neither a model name ({', '.join(efficientvit.list_models()[:6])}, ...) "
                    "nor a config file")


def protocol_from_args(args):
    from ..training.protocols import get_protocol

    if args.epochs is not None and args.epochs <= 0:
        from ..errors import UserError

        raise UserError(f"--epochs={args.epochs} must be positive")
    return get_protocol(args.protocol, epochs=args.epochs)


def dataset_from_args(args):
    from ..training.data import load_dataset

    return load_dataset(args.data, args.data_dir, max_classes=args.classes, per_class=args.per_class)


class TrainProgress:
    """Rich progress: one bar per epoch, loss on the bar, accuracy printed per epoch."""

    def __init__(self, prog, label: str):
        self.prog, self.label, self.task = prog, label, None

    def on_step(self, epoch, step, steps, loss):
        if self.task is None or step == 1:
            if self.task is not None:
                self.prog.remove_task(self.task)
            self.task = self.prog.add_task(f"{self.label} epoch {epoch + 1}", total=steps)
        self.prog.update(self.task, completed=step, description=f"{self.label} epoch {epoch + 1} loss {loss:.3f}")

    def on_epoch(self, entry):
        self.prog.console.print(f"{self.label} epoch {entry['epoch']}: train loss {entry['train_loss']:.3f}, "
                                f"val top-1 {entry['val_top1']:.2f}%, {entry['train_images_per_s']:.0f} img/s")


def _train(sub) -> None:
    p = sub.add_parser("train", help="train one model with a protocol and save a checkpoint")
    p.add_argument("model", metavar="MODEL_OR_CONFIG", help="a model name (see `evit-search models`) or a config YAML/JSON")
    p.add_argument("--out", help="checkpoint file (default: checkpoints/<name>-<protocol>-<data>.pt)")
    p.add_argument("--checkpoint-dir", help="per-epoch checkpoints here; an interrupted run resumes from them")
    _add_data_options(p)
    p.set_defaults(func=_run_train)


def _run_train(args) -> int:
    from pathlib import Path

    from rich.console import Console

    from ..training.trainer import save_model, train

    console = Console()
    cfg = load_model_or_config(args.model)
    device, protocol, bundle = training_inputs(args)
    name = Path(args.model).stem if not args.model.startswith("efficientvit") else args.model
    console.print(f"training {name} on {bundle.describe()} with protocol {protocol.name} ({protocol.description}) on {device}")
    with progress() as prog:
        tp = TrainProgress(prog, name)
        result = train(cfg, bundle, protocol, seed=args.seed, checkpoint_dir=args.checkpoint_dir,
                       threads=args.train_threads, on_step=tp.on_step, on_epoch=tp.on_epoch, device=device)
    if result.status != "ok":
        console.print(f"[red]training failed:[/] {result.reason}")
        return 1
    out = Path(args.out or f"checkpoints/{name}-{protocol.name}-{args.data.replace(':', '_').replace('/', '_')}.pt")
    save_model(out, result.model, result.config, {"result": result.to_dict()})
    console.print(f"top-1 {result.top1:.2f}%  top-5 {result.top5:.2f}%  in {result.wall_s:.0f} s "
                  f"({result.train_images_per_s:.0f} train img/s); saved {out} (efficientvit.load_model reads it)")
    return 0


def _proxy_check(sub) -> None:
    p = sub.add_parser("proxy-check", help="train M0-M5 with a protocol; Kendall tau against the paper's top-1")
    p.add_argument("--models", default=",".join(f"efficientvit_m{i}" for i in range(6)))
    p.add_argument("--reports", default="reports")
    _add_data_options(p)
    p.set_defaults(func=_run_proxy_check)


def _run_proxy_check(args) -> int:
    from pathlib import Path

    from rich.console import Console

    from ..reproduce.proxycheck import proxy_check

    console = Console()
    device, protocol, bundle = training_inputs(args)
    with progress() as prog:
        summary = proxy_check(split_list(args.models), bundle, protocol, args.seed, Path(args.reports), prog,
                              threads=args.train_threads, device=device)
    console.print(summary["table"])
    for line in summary["verdict"]:
        console.print(line)
    console.print("wrote " + ", ".join(str(p) for p in summary["paths"].values()))
    return 0


# --------------------------------------------------------------------------- search
def _add_storage(p) -> None:
    p.add_argument("--storage", help="Optuna storage URL or path (default: sqlite:///runs/evit-search.db, or $EVIT_STORAGE)")


def _run(sub) -> None:
    p = sub.add_parser("run", help="search for candidates within a speed budget with the best proxy accuracy",
                       description="Search EfficientViT designs: candidates at least BUDGET faster than the reference "
                                   "(measured here, in the same session), ranked by proxy accuracy, stored in an Optuna study.")
    p.add_argument("--budget", default="1.25x", help="1.25x, 500ips, 20ms, params<5M, flops<300M (comma-separated)")
    p.add_argument("--reference", help="reference model (default: the space's, e.g. efficientvit_m4)")
    p.add_argument("--space", default="efficientvit", help="a space YAML file or a built-in name (efficientvit, tiny)")
    p.add_argument("--trials", type=int, help="number of trials (this run)")
    p.add_argument("--timeout", type=float, help="seconds (from the command's start) after which no new trial starts")
    p.add_argument("--sampler", default="nsga2", help="nsga2 (default), tpe, random, grid")
    p.add_argument("--study", help="study name; an existing one is resumed")
    _add_storage(p)
    p.add_argument("--jobs", type=int, default=1, help="worker processes on this machine")
    p.add_argument("--backend", default="torch-cpu", help="backend of the budget: torch-cpu, onnx-cpu, cuda, onnx-cuda")
    p.add_argument("--also-measure", default="", metavar="BACKENDS",
                   help="more backends (comma-separated) to measure every candidate and the reference on, in the same "
                        "session; stored and shown beside the budget's backend, not budgeted")
    p.add_argument("--runs-dir", default="runs", help="where trained candidates are saved (default runs/)")
    p.add_argument("--no-train-reference", action="store_true", help="do not train the reference for comparison")
    p.add_argument("--measure-seconds", type=float, default=1.0, help="seconds per timed segment (default 1)")
    p.add_argument("--measure-rounds", type=int, default=5, help="minimum interleaved rounds per measurement (default 5)")
    _add_data_options(p)
    p.set_defaults(func=_run_run)


def _run_run(args) -> int:
    from dataclasses import asdict

    from ..errors import UserError
    from ..measure.records import Settings
    from ..search.engine import RunConfig
    from ..search.run import run

    if args.measure_seconds <= 0:
        raise UserError(f"--measure-seconds={args.measure_seconds} must be positive")
    if args.measure_rounds <= 0:
        raise UserError(f"--measure-rounds={args.measure_rounds} must be positive")
    rc = RunConfig(space=args.space, budget=args.budget, reference=args.reference, backend=args.backend,
                   also_measure=split_list(args.also_measure),
                   sampler=args.sampler, seed=args.seed, study=args.study, storage=args.storage, trials=args.trials,
                   timeout=args.timeout, jobs=args.jobs, data=args.data, data_dir=args.data_dir, classes=args.classes,
                   per_class=args.per_class, protocol=args.protocol, epochs=args.epochs, train_threads=args.train_threads,
                   device=args.device, runs_dir=args.runs_dir, train_reference=not args.no_train_reference,
                   measure=asdict(Settings(seconds=args.measure_seconds, warmup_s=args.measure_seconds,
                                           min_rounds=args.measure_rounds, max_rounds=max(9, args.measure_rounds))))
    return run(rc)


def _show(sub) -> None:
    p = sub.add_parser("show", help="a study's front and trials; CSV/Parquet through pandas")
    p.add_argument("study")
    _add_storage(p)
    p.add_argument("--all", action="store_true", help="list every trial, not only the front")
    p.add_argument("--csv", help="write all trials to this CSV file")
    p.add_argument("--parquet", help="write all trials to this Parquet file")
    p.set_defaults(func=_run_show)


def _run_show(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from .. import storage as st
    from ..search.run import _status_line, front_table

    console = Console()
    study = st.load_study(args.study, args.storage)
    s = st.summary(study)
    console.print(front_table(s, study.user_attrs))
    console.print(_status_line(s, None))
    if args.all:
        t = Table("trial", "status", "top-1 %", "ratio", "params M", "FLOPs M", "knobs", "reason", title="all trials")
        for r in s["records"]:
            t.add_row(str(r.number), r.status, f"{r.accuracy:.2f}" if r.accuracy is not None else "-",
                      f"{r.ratio:.3f}" if r.ratio is not None else "-",
                      f"{r.cost['params_m']:.2f}" if r.cost else "-", f"{r.cost['flops_m']:.0f}" if r.cost else "-",
                      r.knob_text(), r.reason or "")
        console.print(t)
    df = st.to_dataframe(s["records"])
    if args.csv:
        df.to_csv(args.csv, index=False)
        console.print(f"wrote {args.csv}")
    if args.parquet:
        df.to_parquet(args.parquet, index=False)
        console.print(f"wrote {args.parquet}")
    return 0


def _report(sub) -> None:
    p = sub.add_parser("report", help="markdown + PNG Pareto plot of a study under reports/")
    p.add_argument("study")
    _add_storage(p)
    p.add_argument("--reports", default="reports")
    p.set_defaults(func=_run_report)


def _run_report(args) -> int:
    from pathlib import Path

    from rich.console import Console

    from .. import storage as st
    from ..reporting.study import write_study_report

    paths = write_study_report(st.load_study(args.study, args.storage), Path(args.reports))
    Console().print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _export(sub) -> None:
    p = sub.add_parser("export", help="a trial's config YAML, ONNX file and state dict")
    p.add_argument("study")
    p.add_argument("trial", type=int)
    p.add_argument("--to", required=True, help="output folder")
    _add_storage(p)
    p.set_defaults(func=_run_export)


def _run_export(args) -> int:
    from rich.console import Console

    from ..search.export import export_trial

    written, note = export_trial(args.study, args.trial, args.to, args.storage)
    console = Console()
    if note:
        console.print(f"[yellow]{note}[/]")
    console.print("wrote " + ", ".join(str(p) for p in written))
    return 0


# --------------------------------------------------------------------------- ablate
def _ablate(sub) -> None:
    p = sub.add_parser("ablate", help="reproduce the paper's Table 6 ablations side by side with its numbers")
    p.add_argument("table", help="table6 (built in) or a rows YAML file like search_spaces/table6.yaml")
    p.add_argument("--no-train", action="store_true", help="measure params, FLOPs and throughput only")
    p.add_argument("--study", help="study name (default: derived from table, data, protocol); resumed if it exists")
    _add_storage(p)
    p.add_argument("--img-size", type=int, default=224, help="input size for cost and throughput (default 224)")
    p.add_argument("--no-suggest-depths", action="store_true", help="do not measure alternative depths for rows 2-4")
    p.add_argument("--reports", default="reports")
    _add_data_options(p)
    _add_measure_options(p, seconds=1.5, backends="torch-cpu,onnx-cpu,cuda")
    p.set_defaults(func=_run_ablate)


def _run_ablate(args) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from ..errors import UserError
    from ..measure.runner import usable_backends
    from ..reproduce.bench import _fmt
    from ..reproduce.table6 import ablate, column_agreement, suggestion_text
    from ..training.trainer import resolve_device

    console = Console()
    if args.img_size < 16:
        raise UserError(f"--img-size={args.img_size} must be >= 16")
    backends = usable_backends(split_list(args.backends), warn=lambda m: console.print(f"[yellow]{m}[/]"))
    res = ablate(args.table, backends, args.protocol, args.data, args.data_dir, not args.no_train, args.storage, args.study,
                 measure_settings(args), args.seed, Path(args.reports), epochs=args.epochs, img_size=args.img_size,
                 train_threads=args.train_threads, console=console, suggest_depths=not args.no_suggest_depths,
                 device=resolve_device(args.device))
    df = res["table"]
    t = Table("row", "ablation", "paper top-1", "ours top-1", *(f"{b} Δ% ours / paper" for b in backends),
              title=f"Table 6: {res['study']}")
    for r in df.to_dict("records"):
        t.add_row(str(r["row"]), r["ablation"], _fmt(r["paper_top1"]), _fmt(r["top1"], 2),
                  *(f"{_fmt(r[f'{b}_delta_pct'])} / {_fmt(r[f'{b}_paper_delta_pct'])}" for b in backends))
    console.print(t)
    agree = column_agreement(df, backends)
    console.print(f"top-1 same sign {agree['top1']['agree']}/{agree['top1']['n']}, Kendall tau {_fmt(agree['kendall_top1'], 3)}; "
                  + "; ".join(f"{b} same sign {agree[b]['agree']}/{agree[b]['n']}" for b in backends))
    for n in res["depth_notes"]:
        if n["off"]:
            s = res["suggestions"].get(n["row"])
            console.print(f"[yellow]row {n['row']} on {n['backend']}: {n['ratio']:.3f}x row 1 (>10 % off)[/]"
                          + (f"; {suggestion_text(s)}" if s else ""))
    console.print("wrote " + ", ".join(str(p) for p in res["paths"].values()))
    return 0


# --------------------------------------------------------------------------- data
def _data(sub) -> None:
    p = sub.add_parser("data", help="find or fetch datasets")
    p.add_argument("action", choices=["fetch", "info"])
    p.add_argument("dataset", nargs="?", default="fashion-mnist")
    p.add_argument("--data-dir", help="where to put (fetch) or look for (info) the dataset")
    p.set_defaults(func=_run_data)


def _run_data(args) -> int:
    from rich.console import Console

    from ..errors import UserError
    from ..training.data import fetch_fashion_mnist, load_dataset

    console = Console()
    if args.action == "fetch":
        if args.dataset != "fashion-mnist":
            raise UserError(f"data fetch: only fashion-mnist can be fetched; for {args.dataset} download it and pass --data-dir")
        console.print(f"fetched into {fetch_fashion_mnist(args.data_dir)}")
        return 0
    console.print(load_dataset(args.dataset, args.data_dir).describe())
    return 0


# --------------------------------------------------------------------------- tui
def _tui(sub) -> None:
    p = sub.add_parser("tui", help="browse studies, candidates and Pareto fronts in the terminal (live)")
    p.add_argument("study", nargs="?", help="study name (default: pick from the storage's studies)")
    _add_storage(p)
    p.set_defaults(func=_run_tui)


def _run_tui(args) -> int:
    from ..tui.app import run_tui

    return run_tui(args.study, args.storage)
