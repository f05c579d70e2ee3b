"""``run``: the study created once, the reference trained once, then trials by one or several
worker processes. Returns what happened; progress goes to :class:`~evit_search.hooks.Hooks` (the CLI renders it)."""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import asdict, dataclass, field

import efficientvit

from .. import storage as st
from ..hooks import Hooks
from ..measure.cost import count_cost
from ..training.trainer import train
from .config import RunConfig, check_run_config
from .engine import Worker, split_trials, worker_entry
from .space import SearchSpace

POLL_S = 2.0  # how often the parent reads the study while --jobs workers run


@dataclass
class RunOutcome:
    store: st.StudyStore
    summary: st.Summary
    done: int  # trials this run added
    worker_exit_codes: list[int] = field(default_factory=list)  # non-zero ones


def open_run_study(rc: RunConfig, space: SearchSpace) -> st.StudyStore:
    """Create (or resume) the study once, before any worker starts."""
    rc.study = rc.study or rc.default_study_name()
    attrs = {st.KIND_ATTR: "search", "settings": rc.resume_key(), "space_file": space.path,
             "reference": rc.reference, "backend": rc.backend, "budget": rc.budget}
    return st.create_study(rc.study, rc.storage, attrs, rc.resume_key())


def run_search(rc: RunConfig, hooks: Hooks) -> RunOutcome:
    deadline = time.time() + rc.timeout if rc.timeout else None  # counted from the command's start
    space, budget = check_run_config(rc)
    worker = Worker(rc)
    data, protocol = worker.data()  # a missing dataset fails here, before anything is stored
    store = open_run_study(rc, space)
    recovered = store.fail_interrupted()
    if "reference_cost" not in store.attrs:
        ref_cfg = efficientvit.get_config(rc.reference).with_overrides(**space.input)
        store.set_attr("reference_config", ref_cfg.to_dict())
        store.set_attr("reference_cost", count_cost(ref_cfg).to_dict())
    hooks.started(store, {"rc": rc, "space": space, "budget": budget, "data": data, "protocol": protocol}, recovered)

    if rc.train_reference and not store.attrs.get("reference_result"):
        on_step, on_epoch = hooks.train(f"reference {rc.reference}")
        res = train(efficientvit.get_config(rc.reference), data, protocol, seed=rc.seed, prepared=True,
                    threads=rc.train_threads, on_step=on_step, on_epoch=on_epoch, device=rc.device)
        store.set_attr("reference_result", res.to_dict())
    start_n = len(store)

    def refresh() -> st.Summary:
        s = store.summary()
        hooks.refresh(s, s.trials - start_n, rc.trials)
        return s

    bad: list[int] = []
    if rc.jobs == 1:
        def on_trial(outcome):
            refresh()
            hooks.trial(outcome)

        worker.run(rc.trials, deadline, on_trial=on_trial)
    else:
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=worker_entry, args=(asdict(rc), n, deadline), daemon=False)
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
    return RunOutcome(store, summary, summary.trials - start_n, bad)
