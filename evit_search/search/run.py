"""``evit-search run``: orchestrates workers over one study and shows live progress."""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import asdict

from rich.console import Console
from rich.table import Table

from .. import storage as st
from .engine import (
    RunConfig,
    Worker,
    check_run_config,
    open_run_study,
    recover_interrupted,
    split_trials,
    worker_entry,
)


def _status_line(summary: dict, total: int | None) -> str:
    c = summary["counts"]
    best = summary["best"]
    best_txt = f"best feasible {best.accuracy:.2f}% at {best.ratio:.2f}x" if best else "no feasible trained yet"
    return (f"trials {summary['trials']}{'/' + str(total) if total else ''} | ok {c.get('ok', 0)} | "
            f"infeasible {c.get('infeasible', 0)} | invalid {c.get('invalid', 0)} | duplicate {c.get('duplicate', 0)} | "
            f"failed {c.get('failed', 0)} | front {len(summary['front'])} | {best_txt}")


def run(rc: RunConfig, console: Console | None = None) -> int:
    from ..cli.commands import TrainProgress, progress

    console = console or Console()
    deadline = time.time() + rc.timeout if rc.timeout else None  # counted from the command's start
    space, budget = check_run_config(rc)
    worker = Worker(rc)
    data, protocol = worker.data()  # a missing dataset fails here, before anything is stored
    study = open_run_study(rc, space)
    n_recovered = recover_interrupted(study)
    if "reference_cost" not in study.user_attrs:
        import efficientvit

        from ..measure.cost import count_cost

        ref_cfg = efficientvit.get_config(rc.reference).with_overrides(**space.input)
        study.set_user_attr("reference_config", st.jsonable(ref_cfg.to_dict()))
        study.set_user_attr("reference_cost", count_cost(ref_cfg).to_dict())
    console.print(f"study [bold]{rc.study}[/] in {st.normalize_url(rc.storage)}"
                  + (f" (resumed: {len(study.trials)} trials stored)" if len(study.trials) else ""))
    if n_recovered:
        console.print(f"{n_recovered} trial(s) interrupted earlier are marked failed ('interrupted')")
    also = f" (also measured on {', '.join(rc.also_measure)})" if rc.also_measure else ""
    console.print(f"space {space.name} ({space.path}); budget: {budget.describe()} vs {rc.reference} on {rc.backend}{also}, "
                  f"measured at {space.input['img_size']} px; training: {data.describe()}, protocol {protocol.name} "
                  f"({protocol.description}); sampler {rc.sampler}, seed {rc.seed}, jobs {rc.jobs}")

    with progress() as prog:
        if rc.train_reference and not study.user_attrs.get("reference_result"):
            tp = TrainProgress(prog, f"reference {rc.reference}")
            import efficientvit

            from ..training.trainer import train

            res = train(efficientvit.get_config(rc.reference), data, protocol, seed=rc.seed, prepared=True,
                        threads=rc.train_threads, on_step=tp.on_step, on_epoch=tp.on_epoch, device=rc.device)
            study.set_user_attr("reference_result", st.jsonable(res.to_dict()))
        task = prog.add_task("search", total=rc.trials)
        start_n = len(study.trials)

        def refresh():
            s = st.summary(study)
            prog.update(task, completed=s["trials"] - start_n, description=_status_line(s, (rc.trials or 0) + start_n or None))

        if rc.jobs == 1:
            def on_trial(rec):
                refresh()
                extra = f": {rec['reason']}" if rec.get("reason") else ""
                vals = rec.get("values")
                vtxt = f" top-1 {vals[0]:.2f}% ratio {vals[1]:.2f}x" if vals else ""
                prog.console.print(f"trial {rec.get('number', '-')}: {rec['status']}{vtxt}{extra}")

            worker.run(rc.trials, deadline, on_trial=on_trial)
        else:
            ctx = mp.get_context("spawn")
            procs = [ctx.Process(target=worker_entry, args=(asdict(rc), i, n, deadline), daemon=False)
                     for i, n in enumerate(split_trials(rc.trials, rc.jobs))]
            for p in procs:
                p.start()
            try:
                while any(p.is_alive() for p in procs):
                    refresh()
                    time.sleep(2.0)
            finally:
                for p in procs:
                    p.join()
            bad = [p.exitcode for p in procs if p.exitcode]
            if bad:
                console.print(f"[red]{len(bad)} worker(s) exited with an error (exit codes {bad}); stored trials are kept[/]")
        refresh()

    s = st.summary(study)
    console.print(front_table(s, study.user_attrs))
    console.print(_status_line(s, None))
    console.print(f"study {rc.study!r} in {st.normalize_url(rc.storage)}: `evit-search show {rc.study}`, "
                  f"`evit-search report {rc.study}`, `evit-search tui {rc.study}`")
    return 0


def front_table(summary: dict, study_attrs: dict) -> Table:
    """The feasible Pareto front beside the reference."""
    ref_res = study_attrs.get("reference_result") or {}
    t = Table(title=f"feasible Pareto front (budget {study_attrs.get('budget')}, reference {study_attrs.get('reference')})")
    # backends measured beside the budget's one (run --also-measure), in the order stored
    extra = list(dict.fromkeys(b for r in summary["records"] for b in list(r.throughput)[1:]))
    for col in ("trial", "C", "L", "H", "N", "QK", "V", "params M", "FLOPs M", "img/s", "ratio", "proxy top-1 %",
                *(f"{b} ratio" for b in extra)):
        t.add_column(col, justify="right" if col not in ("C", "L", "H") else "left")
    ref_cost = study_attrs.get("reference_cost") or {}
    ref_ips = [r.reference_images_per_s for r in summary["records"] if r.reference_images_per_s]
    t.add_row("ref", *_knobs(study_attrs.get("reference_config")),
              f"{ref_cost['params_m']:.2f}" if ref_cost else "-", f"{ref_cost['flops_m']:.0f}" if ref_cost else "-",
              f"{sorted(ref_ips)[len(ref_ips) // 2]:.1f}" if ref_ips else "-", "1.00",
              f"{ref_res['top1']:.2f}" if ref_res.get("top1") is not None else "-", *("1.00" for _ in extra), style="bold")
    for r in summary["front"]:
        k = _knobs(r.config)
        ips = next(iter(r.throughput.values()), {}).get("images_per_s")
        t.add_row(str(r.number), *k, f"{r.cost['params_m']:.2f}" if r.cost else "-",
                  f"{r.cost['flops_m']:.0f}" if r.cost else "-", f"{ips:.1f}" if ips else "-", f"{r.ratio:.2f}",
                  f"{r.accuracy:.2f}", *(_ratio_text(r.throughput.get(b)) for b in extra))
    if not summary["front"]:
        t.caption = "no feasible candidate was trained yet"
    return t


def _ratio_text(m: dict | None) -> str:
    if not m:
        return "-"
    if m.get("status") != "ok":
        return m.get("status") or "-"
    return f"{m['ratio_to_reference']:.2f}" if m.get("ratio_to_reference") else "-"


def _knobs(cfg: dict | None) -> list[str]:
    st_ = (cfg or {}).get("stages") or []

    def col(k):
        return "/".join(f"{s.get(k):g}" if isinstance(s.get(k), float) else str(s.get(k)) for s in st_)

    return [col("dim"), col("depth"), col("num_heads"), col("n_ffn"), col("key_dim"), col("v_ratio")]
