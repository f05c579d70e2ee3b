"""``run``, ``show``, ``report`` and ``export``: the search and what it stored.

The domain modules that load torch are imported inside the handlers, so that ``--help`` and the
parser stay fast."""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import asdict
from pathlib import Path

from rich.console import Console

from .. import storage as st
from ..measure.records import Settings
from ..reporting.accuracy import delta_to_reference, reference_noise
from ..reporting.predictions import prediction_error
from ..stats import stored_ci_coverage
from ..storage import SAMPLERS
from .options import add_data_options, add_storage, positive_float, positive_int, split_list
from .progress import progress, rich_hooks
from .render import front_table, status_line, trials_table


def add(sub) -> None:
    p = sub.add_parser("run", help="search for candidates within a speed budget with the best proxy accuracy",
                       description="Search EfficientViT designs: candidates at least BUDGET faster than the reference "
                                   "(measured here, in the same session), ranked by proxy accuracy, stored in an Optuna study.")
    p.add_argument("--budget", default="1.25x", help="1.25x, 500ips, 20ms, params<5M, flops<300M (comma-separated)")
    p.add_argument("--reference", help="reference model (default: the space's, e.g. efficientvit_m4)")
    p.add_argument("--space", default="efficientvit", help="a space YAML file or a built-in name (efficientvit, tiny)")
    p.add_argument("--trials", type=positive_int, help="number of trials (this run)")
    p.add_argument("--timeout", type=positive_float,
                   help="seconds (from the command's start) after which no new trial starts (with --fidelity sh, "
                        "earlier: see there)")
    p.add_argument("--sampler", default="nsga2",
                   help=f"{', '.join(SAMPLERS)} (default nsga2, with a population of half the --trials, 4 to 16: a short "
                        "run learns after its first generation; tpe learns after 8 random trials)")
    p.add_argument("--fidelity", choices=["full", "sh"], default="full",
                   help="full (default): every feasible candidate trains the whole protocol; sh: successive halving, "
                        "every feasible candidate trains 1/eta^2 of it and the top 1/eta by non-dominated rank on "
                        "(accuracy, throughput) go on to 1/eta, then to all of it (fronts use fully trained ones); "
                        "with fewer rungs where the lowest would end within 3 warm-ups (the default proxy: 1/3, 1; "
                        "see --rungs). "
                        "The run finishes its front: once it starts no new trial (--trials reached, or the --timeout "
                        "left is what one more trial and carrying a candidate to the top rung take, at the rung "
                        "costs measured so far), the highest rung reached promotes at least one candidate "
                        "(its most accurate non-dominated one), rung after rung, until one is fully trained (past "
                        "--timeout if need be: one candidate's training from its rung to the top)")
    p.add_argument("--eta", type=positive_int, default=3, help="successive halving's reduction factor (default 3)")
    p.add_argument("--rungs", type=positive_int, default=None,
                   help="successive halving's rungs, eta^-(rungs-1) ... 1 of the protocol (default: 3, or fewer so that "
                        "the lowest trains at least 3 warm-up lengths: a rung inside the warm-up ranks at chance)")
    p.add_argument("--no-predict", action="store_true",
                   help="measure every candidate (by default, after 8 measured ones, a candidate that a throughput model "
                        "fitted to them predicts below the budget by more than its own error is stored as "
                        "predicted-infeasible, neither measured nor trained)")
    p.add_argument("--no-zerocost", action="store_true",
                   help="do not compute zero-cost scores (synflow, snip, grad_norm, naswot: seconds per measured "
                        "candidate, stored for calibration)")
    p.add_argument("--prefilter", metavar="SCORE:FRACTION",
                   help="store feasible candidates whose zero-cost SCORE is in the worst FRACTION of the feasible ones "
                        "scored so far as 'screened', not trained (off by default; check the score's calibration "
                        "first: python -m evit_search.reproduce.zerocost_report)")
    p.add_argument("--no-paper-models", action="store_true",
                   help="do not enqueue the paper's models that lie in the space (M0-M5 but the reference) as the first "
                        "trials")
    p.add_argument("--study", help="study name; an existing one is resumed")
    add_storage(p)
    p.add_argument("--jobs", type=positive_int, default=1, help="worker processes on this machine")
    p.add_argument("--backend", default="torch-cpu", help="backend of the budget: torch-cpu, onnx-cpu, cuda, onnx-cuda")
    p.add_argument("--also-measure", default="", metavar="BACKENDS",
                   help="more backends (comma-separated) to measure every candidate and the reference on, in the same "
                        "session; stored and shown beside the budget's backend, not budgeted")
    p.add_argument("--runs-dir", help="where trained candidates are saved (default: beside the storage file, e.g. "
                                      "runs/evit-search-runs/ for runs/evit-search.db)")
    p.add_argument("--no-train-reference", action="store_true", help="do not train the reference for comparison")
    p.add_argument("--ref-seeds", type=positive_int, default=3,
                   help="train the reference this many times (default 3): its seed noise gives every candidate's "
                        "accuracy difference its 95 %% interval")
    p.add_argument("--attempts", type=positive_int, default=2,
                   help="an architecture whose trial failed or was interrupted is tried at most this often (default 2)")
    p.add_argument("--measure-seconds", type=positive_float, default=1.0, help="seconds per timed segment (default 1)")
    p.add_argument("--measure-rounds", type=positive_int, default=6,
                   help="minimum interleaved rounds per measurement (default 6, the fewest whose interval of the median "
                        "ratio covers 95 %%; with fewer, intervals are stored and printed with their real coverage)")
    add_data_options(p)
    p.set_defaults(func=run_run)

    p = sub.add_parser("show", help="a study's front and trials; CSV/Parquet through pandas")
    p.add_argument("study")
    add_storage(p)
    p.add_argument("--all", action="store_true", help="list every trial, not only the front")
    p.add_argument("--csv", help="write all trials to this CSV file")
    p.add_argument("--parquet", help="write all trials to this Parquet file")
    p.add_argument("--json", metavar="FILE", help="write the study as JSON: reference, counts, front, every trial")
    p.set_defaults(func=run_show)

    p = sub.add_parser("report", help="markdown + PNG Pareto plot of a study under reports/")
    p.add_argument("study")
    add_storage(p)
    p.add_argument("--reports", default="reports")
    p.set_defaults(func=run_report)

    p = sub.add_parser("export", help="a trial's config YAML, ONNX file and state dict")
    p.add_argument("study")
    p.add_argument("trial", type=int)
    p.add_argument("--to", required=True, help="output folder")
    add_storage(p)
    p.set_defaults(func=run_export)


def _started(console: Console):
    def started(store: st.StudyStore, d: dict, recovered: list[int]) -> None:
        rc = d["rc"]
        n = len(store)
        console.print(f"study [bold]{store.name}[/] in {store.display_url}" + (f" (resumed: {n} trials stored)" if n else ""))
        if recovered:
            console.print(f"{len(recovered)} trial(s) interrupted earlier are marked failed ('interrupted'): "
                          + ", ".join(f"#{k}" for k in recovered))
        also = f" (also measured on {', '.join(rc.also_measure)})" if rc.also_measure else ""
        console.print(f"space {d['space'].name} ({d['space'].path}); budget: {d['budget'].describe()} vs {rc.reference} on "
                      f"{rc.backend}{also}, measured at {d['space'].input['img_size']} px; training: {d['data'].describe()}, "
                      f"protocol {d['protocol'].name} ({d['protocol'].description}); sampler {rc.sampler}, seed {rc.seed}, "
                      f"jobs {rc.jobs}")
    return started


def run_run(args) -> int:
    from ..search.config import RunConfig  # torch: loaded when the command runs, not for --help
    from ..search.run import run_search

    rc = RunConfig(space=args.space, budget=args.budget, reference=args.reference, backend=args.backend,
                   also_measure=split_list(args.also_measure),
                   sampler=args.sampler, seed=args.seed, study=args.study, storage=args.storage, trials=args.trials,
                   timeout=args.timeout, jobs=args.jobs, data=args.data, data_dir=args.data_dir, classes=args.classes,
                   per_class=args.per_class, protocol=args.protocol, epochs=args.epochs, train_threads=args.train_threads,
                   device=args.device, precision="amp" if args.amp else "fp32", runs_dir=args.runs_dir,
                   train_reference=not args.no_train_reference, ref_seeds=args.ref_seeds, attempts=args.attempts,
                   paper_models=not args.no_paper_models, predict=not args.no_predict, zerocost=not args.no_zerocost,
                   prefilter=args.prefilter, fidelity=args.fidelity, eta=args.eta, rungs=args.rungs,
                   measure=asdict(Settings(seconds=args.measure_seconds, warmup_s=args.measure_seconds,
                                           min_rounds=args.measure_rounds, max_rounds=max(10, args.measure_rounds))))
    console = Console()
    with progress(console) as prog:
        task = prog.add_task("search", total=rc.trials)

        def refresh(s: st.Summary, done: int, total: int | None) -> None:
            prog.update(task, completed=done, description=status_line(s, total))

        def trial(outcome: dict) -> None:
            vals = outcome.get("values")
            prog.console.print(f"trial {outcome.get('number', '-')}: {outcome['status']}"
                               + (f" top-1 {vals[0]:.2f}% ratio {vals[1]:.2f}x" if vals else "")
                               + (f": {outcome['reason']}" if outcome.get("reason") else ""))

        hooks = rich_hooks(prog, refresh=refresh, trial=trial, started=_started(prog.console))
        out = run_search(rc, hooks)
    console.print(front_table(out.summary, out.store.attrs, width=console.width))
    console.print(status_line(out.summary))
    for line in next_steps(out.store.name, out.store.display_url):
        console.print(line, markup=False, highlight=False, soft_wrap=True)  # never wrapped: copied as printed
    why = out.shortfall(rc.trials)
    if why:
        print(f"evit-search run: error: {why}", file=sys.stderr)
        return 1
    return 0


def next_steps(study: str, url: str) -> list[str]:
    """The closing hint: commands that work as printed from any folder, so the storage is always
    named, as an absolute path for a file (a relative ``sqlite:///x.db`` is where this run put it)."""
    tail = f"{shlex.quote(study)} --storage {shlex.quote(url)}"
    lines = [f"study {study!r} in {url}; from any folder:"]
    lines += [f"  evit-search {cmd} {tail}" for cmd in ("show", "report", "tui")]
    if "***" in url.partition("://")[2].rpartition("@")[0]:
        lines.append("  (the password is hidden: put it back in place of ***)")
    return lines


def run_show(args) -> int:
    console = Console()
    store = st.load_study(args.study, args.storage)
    s = store.summary()
    attrs = store.attrs
    console.print(front_table(s, attrs, width=console.width))
    console.print(status_line(s))
    err = prediction_error(s.records, attrs.get("backend") or "torch-cpu")
    if err:
        console.print(f"throughput model: {err['n']} predictions made before measuring, median absolute error "
                      f"{100 * err['mdape']:.1f} %, Spearman {err['spearman']:.2f} against the measurements")
    if args.all:
        console.print(trials_table(s))
    df = st.to_dataframe(s.records)
    if args.csv:
        df.to_csv(args.csv, index=False)
        console.print(f"wrote {args.csv}")
    if args.parquet:
        df.to_parquet(args.parquet, index=False)
        console.print(f"wrote {args.parquet}")
    if args.json:
        noise = reference_noise(attrs)
        payload = {"study": store.name, "storage": store.display_url, "budget": attrs.get("budget"),
                   "reference": {"model": attrs.get("reference"), **(attrs.get("reference_result") or {})},
                   "counts": s.counts, "front": [r.number for r in s.front], "predictor_error": err,
                   "trials": [{**r.to_dict(), "budget_verdict": r.budget_verdict,
                               "predicted_ratio": r.attrs.get("predicted_ratio"),
                               "ratio_ci_coverage": stored_ci_coverage(r.primary_throughput),
                               "delta_to_reference": _delta_json(delta_to_reference(r, noise))} for r in s.records]}
        Path(args.json).write_text(json.dumps(st.jsonable(payload), indent=1))
        console.print(f"wrote {args.json}")
    return 0


def _delta_json(d) -> dict | None:
    if d is None:
        return None
    return {"delta": d.delta, "ci_low": d.low, "ci_high": d.high, "confidence": d.confidence, "verdict": d.verdict}


def run_report(args) -> int:
    from ..reporting.study import write_study_report  # matplotlib: loaded when a report is drawn

    files = write_study_report(st.load_study(args.study, args.storage), Path(args.reports))
    Console().print("wrote " + ", ".join(str(p) for p in files.as_dict().values()))
    return 0


def run_export(args) -> int:
    from ..search.export import export_trial  # torch: loaded when the command runs, not for --help

    written, note = export_trial(args.study, args.trial, args.to, args.storage)
    console = Console()
    if note:
        console.print(f"[yellow]{note}[/]")
    console.print("wrote " + ", ".join(str(p) for p in written))
    return 0
