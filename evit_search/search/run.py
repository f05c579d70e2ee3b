"""``run``: the study created once, the reference trained once, then trials by one or several
worker processes. Returns what happened; progress goes to :class:`~evit_search.hooks.Hooks` (the CLI renders it)."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import efficientvit

from .. import hostlock
from .. import storage as st
from ..hooks import Hooks
from ..measure.cost import count_cost
from ..measure.runner import clean_stale_folders
from ..stats import SeedNoise, half_widths
from ..training.trainer import train
from .config import RunConfig, check_run_config
from .engine import NOT_NEW, Worker, split_trials, worker_entry
from .space import SearchSpace

POLL_S = 2.0  # how often the parent reads the study while --jobs workers run


@dataclass
class RunOutcome:
    store: st.StudyStore
    summary: st.Summary
    added: int  # trials this run added
    evaluated: int  # of them, new architectures (what --trials counts: not duplicates, not invalid samples)
    timed_out: bool
    worker_exit_codes: list[int] = field(default_factory=list)  # non-zero ones

    def shortfall(self, asked: int | None) -> str | None:
        """Why this run did less than asked, when that is not ``--timeout`` (None if all went well)."""
        if self.worker_exit_codes:
            return (f"{len(self.worker_exit_codes)} worker(s) exited with an error (exit codes {self.worker_exit_codes}); "
                    "stored trials are kept")
        if asked and self.evaluated < asked and not self.timed_out:
            return f"{self.evaluated} of the {asked} new architectures asked for were evaluated"
        return None


def open_run_study(rc: RunConfig, space: SearchSpace) -> st.StudyStore:
    """Create (or resume) the study once, before any worker starts."""
    rc.study = rc.study or rc.default_study_name()
    attrs = {st.KIND_ATTR: "search", "settings": rc.resume_key(), "space_file": space.path,
             "reference": rc.reference, "backend": rc.backend, "budget": rc.budget}
    return st.create_study(rc.study, rc.storage, attrs, rc.resume_key())


def run_search(rc: RunConfig, hooks: Hooks, stop: Callable[[], bool] | None = None,
               remaining: Callable[[], float] | None = None) -> RunOutcome:
    """The run: ``stop`` (one worker only) is asked before each trial and ends the run when true;
    ``remaining`` (one worker only) says how many seconds of the caller's budget are left, so
    that successive halving keeps what finishing its front needs (see :meth:`Worker.run`)."""
    if (stop is not None or remaining is not None) and rc.jobs != 1:
        raise ValueError("run_search: a stop condition or a remaining budget needs jobs=1")
    deadline = time.time() + rc.timeout if rc.timeout else None  # counted from the command's start
    space, budget = check_run_config(rc)
    worker = Worker(rc)
    data, protocol = worker.data()  # a missing dataset fails here, before anything is stored
    store = open_run_study(rc, space)
    clean_stale_folders()  # measurement folders of processes killed earlier on this host
    recovered = store.fail_interrupted()
    if "reference_cost" not in store.attrs:
        ref_cfg = efficientvit.get_config(rc.reference).with_overrides(**space.input)
        store.set_attr("reference_config", ref_cfg.to_dict())
        store.set_attr("reference_cost", count_cost(ref_cfg).to_dict())
    hooks.started(store, {"rc": rc, "space": space, "budget": budget, "data": data, "protocol": protocol}, recovered)
    start_n = len(store)  # before the paper's models are enqueued (numbered then): they are this run's trials
    if rc.paper_models:
        enqueue_paper_models(store, space, rc.reference)
    blind = space.blind_knobs(protocol.token_grid())
    if blind:
        grid = protocol.token_grid()
        hooks.info(f"warning: protocol {protocol.name} trains at {protocol.img_size} px, where the stages see "
                   f"{', '.join(f'{g}x{g}' for g in grid)} tokens (the last {grid[-1]}x{grid[-1]}): {', '.join(blind)} "
                   "cannot change its accuracy, only the throughput, so the front will drift to their cheapest values")

    if rc.train_reference:
        train_reference(store, rc, data, protocol, hooks)

    def refresh() -> st.Summary:
        with hostlock.working("reading the study"):  # never beside a worker's timing
            s = store.summary()
        hooks.refresh(s, s.trials - start_n, rc.trials)
        return s

    bad: list[int] = []
    if rc.jobs == 1:
        def on_trial(outcome):
            refresh()
            hooks.trial(outcome)

        worker.run(rc.trials, deadline, on_trial=on_trial, stop=stop, remaining=remaining)
    else:
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=worker_entry, args=(asdict(rc), n, deadline, os.getpid()), daemon=False)
                 for n in split_trials(rc.trials, rc.jobs)]
        for p in procs:
            p.start()
        try:
            while any(p.is_alive() for p in procs):
                refresh()
                time.sleep(POLL_S)
        finally:
            for p in procs:
                p.join()
        bad = [p.exitcode for p in procs if p.exitcode]
    summary = refresh()
    added = [r for r in summary.records if r.number >= start_n]
    evaluated = sum(1 for r in added if r.status not in NOT_NEW)
    # a worker with successive halving stops sampling before the time is up, to finish its front
    timed_out = (deadline is not None and time.time() >= deadline) or (rc.jobs == 1 and worker.time_up)
    return RunOutcome(store, summary, len(added), evaluated, timed_out, bad)


PAPER_MODELS = [f"efficientvit_m{i}" for i in range(6)]


def enqueue_paper_models(store: st.StudyStore, space: SearchSpace, reference: str) -> list[str]:
    """The paper's models that lie in the space (not the reference) become the first trials,
    tagged ``paper_model``, so the front shows where M0-M5 fall; a resumed study enqueues
    nothing twice."""
    names = []
    for name in PAPER_MODELS:
        params = space.encode(efficientvit.get_config(name)) if name != reference else None
        if params is not None:
            store.enqueue(params, {"paper_model": name})
            names.append(name)
    return names


def train_reference(store: st.StudyStore, rc: RunConfig, data, protocol, hooks: Hooks) -> dict:
    """The reference trained ``rc.ref_seeds`` times (seeds ``rc.seed``, ``rc.seed + 1``...), each
    stored as it finishes (an interrupted run keeps what it trained): the seed noise against which
    every candidate's accuracy is judged. ``reference_result`` holds their mean, SD and runs."""
    runs = dict(store.attrs.get("reference_runs") or {})
    for seed in range(rc.seed, rc.seed + rc.ref_seeds):
        if str(seed) in runs:
            continue
        on_step, on_epoch = hooks.train(f"reference {rc.reference} seed {seed}")
        res = train(efficientvit.get_config(rc.reference), data, protocol, seed=seed, threads=rc.train_threads,
                    on_step=on_step, on_epoch=on_epoch, device=rc.device, precision=rc.precision)
        if res.status != "ok":
            hooks.info(f"reference {rc.reference} seed {seed}: {res.reason}")
            continue
        runs[str(seed)] = res.to_dict()
        store.set_attr("reference_runs", runs)
    result = reference_summary(runs)
    store.set_attr("reference_result", result)
    return result


def reference_summary(runs: dict[str, dict]) -> dict:
    """Mean and seed SD of the reference's validation and test top-1 over its runs."""
    val = SeedNoise(tuple(r["top1"] for r in runs.values() if r.get("top1") is not None))
    test = SeedNoise(tuple(r["test_top1"] for r in runs.values() if r.get("test_top1") is not None))
    half = half_widths(val.sd, val.n)  # stored, so that readers (the TUI) need no scipy
    return {"top1": val.mean if val.n else None, "top1_sd": val.sd, "n": val.n, "seeds": sorted(int(k) for k in runs),
            "single_run_ci_half": half["single"], "delta_ci_half": half["delta"], "pair_ci_half": half["pair"],
            "test_top1": test.mean if test.n else None, "test_top1_sd": test.sd,
            "split": "top1: validation (held out from train); test_top1: the dataset's test split"}
