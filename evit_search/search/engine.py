"""The search: one trial at a time, cheapest work first, every outcome stored in the study.

Per trial: decode the sampled knobs -> validate -> dedupe by architecture id -> params and
FLOPs (cheap limits) -> throughput with the reference re-measured in the same session (budget)
-> proxy training for candidates that meet the budget. Outcomes:

- ``ok``: trained; COMPLETE with (proxy top-1, throughput ratio) and its constraints.
- ``infeasible``: misses the budget; PRUNED, stored with its measurements, not trained.
- ``invalid``: the sampled knobs break a config rule; PRUNED with the rule.
- ``duplicate``: an architecture already in the study; PRUNED, pointing at the first trial.
- ``failed``: a measurement or training error (export error, NaN loss...); FAIL with the reason.

The budget is an Optuna constraint (``trial.set_constraint``), never a penalty on an objective,
and nothing is ever scored as zero.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from efficientvit.errors import ConfigError

from .. import storage as st
from ..errors import UserError
from ..measure.records import ModelSpec, Settings
from .budget import Budget, parse_budget
from .space import SearchSpace, load_space

log = logging.getLogger(__name__)
SAMPLERS = ("nsga2", "tpe", "random", "grid")


@dataclass
class RunConfig:
    """Everything a worker needs; plain data so it crosses process boundaries."""

    space: str = "efficientvit"
    budget: str = "1.25x"
    reference: str | None = None  # default: the space's
    backend: str = "torch-cpu"
    also_measure: list[str] = field(default_factory=list)  # more backends, measured and stored, not budgeted
    sampler: str = "nsga2"
    seed: int = 0
    study: str | None = None
    storage: str | None = None
    trials: int | None = None
    timeout: float | None = None
    jobs: int = 1
    data: str = "fashion-mnist"
    data_dir: str | None = None
    classes: int | None = None
    per_class: int | None = None
    protocol: str = "proxy"
    epochs: int | None = None
    train_threads: int | None = None
    device: str = "auto"  # training device, resolved on each host (not part of what a trial means)
    runs_dir: str = "runs"
    measure: dict = field(default_factory=lambda: asdict(Settings(seconds=1.0, warmup_s=1.0, min_rounds=5, max_rounds=9)))
    train_reference: bool = True

    def settings(self) -> Settings:
        return Settings(**self.measure)

    def resume_key(self) -> dict:
        """Settings that change what a stored trial means: a resumed study must keep them."""
        return {"space": self.space, "budget": self.budget, "reference": self.reference, "backend": self.backend,
                "data": self.data, "protocol": self.protocol, "epochs": self.epochs, "classes": self.classes,
                "per_class": self.per_class}


def check_run_config(rc: RunConfig) -> tuple[SearchSpace, Budget]:
    """Every user input checked before anything is stored."""
    from ..measure.runner import usable_backends
    from ..training.protocols import get_protocol

    space = load_space(rc.space)
    rc.reference = rc.reference or space.reference
    import efficientvit

    if rc.reference not in efficientvit.list_models():
        raise UserError(f"--reference {rc.reference!r} is not a model name (see `evit-search models`)")
    budget = parse_budget(rc.budget, space.limits)
    rc.also_measure = [b for b in dict.fromkeys(rc.also_measure) if b != rc.backend]
    usable_backends([rc.backend], "--backend")
    if rc.also_measure:
        usable_backends(rc.also_measure, "--also-measure")
    from ..training.trainer import resolve_device

    resolve_device(rc.device)
    if rc.sampler not in SAMPLERS:
        raise UserError(f"--sampler {rc.sampler!r} is not one of {', '.join(SAMPLERS)}")
    if rc.trials is None and rc.timeout is None:
        raise UserError("give --trials N or --timeout SECONDS (or both)")
    if rc.trials is not None and rc.trials <= 0:
        raise UserError(f"--trials={rc.trials} must be positive")
    if rc.timeout is not None and rc.timeout <= 0:
        raise UserError(f"--timeout={rc.timeout} must be positive")
    if rc.jobs < 1:
        raise UserError(f"--jobs={rc.jobs} must be at least 1")
    get_protocol(rc.protocol, epochs=rc.epochs)
    if rc.sampler == "grid":
        space.grid()
    return space, budget


def make_sampler(name: str, seed: int, space: SearchSpace):
    import optuna

    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=16)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=8)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.GridSampler(space.grid(), seed=seed)


def default_study_name(rc: RunConfig) -> str:
    return f"{Path(rc.space).stem}-{rc.budget.replace(',', '_').replace('<', 'lt').replace('=', '')}-{rc.data.split(':')[0]}-{rc.protocol}"


def open_run_study(rc: RunConfig, space: SearchSpace):
    """Create (or resume) the study once, before any worker starts."""
    rc.study = rc.study or default_study_name(rc)
    attrs = {st.KIND_ATTR: "search", "settings": rc.resume_key(), "space_file": space.path,
             "reference": rc.reference, "backend": rc.backend, "budget": rc.budget}
    return st.create_study(rc.study, rc.storage, make_sampler(rc.sampler, rc.seed, space), attrs, rc.resume_key())


# --------------------------------------------------------------------------- one worker
class Worker:
    def __init__(self, rc: RunConfig, worker_index: int = 0):
        self.rc = rc
        self.space, self.budget = check_run_config(rc)
        self.index = worker_index
        self.host = socket.gethostname()
        self._data = None

    def study(self):
        import optuna

        sampler = make_sampler(self.rc.sampler, self.rc.seed + self.index, self.space)
        return optuna.load_study(study_name=self.rc.study, storage=st.open_storage(self.rc.storage), sampler=sampler)

    def data(self):
        if self._data is None:
            from ..training.data import load_dataset
            from ..training.protocols import get_protocol
            from ..training.trainer import prepare_data

            protocol = get_protocol(self.rc.protocol, epochs=self.rc.epochs)
            bundle = load_dataset(self.rc.data, self.rc.data_dir, max_classes=self.rc.classes, per_class=self.rc.per_class)
            self._data = (prepare_data(bundle, protocol), protocol)
        return self._data

    def run(self, n_trials: int | None, deadline: float | None, on_trial=None) -> int:
        study = self.study()
        done = 0
        while (n_trials is None or done < n_trials) and (deadline is None or time.time() < deadline):
            rec = self.run_trial(study)
            done += 1
            if on_trial:
                on_trial(rec)
            if rec.get("stop"):
                break
        return done

    # ------------------------------------------------------------------ the trial pipeline
    def run_trial(self, study) -> dict:
        from optuna.trial import TrialState

        try:
            trial = study.ask()
        except RuntimeError as e:  # GridSampler: the grid is exhausted
            return {"status": "stopped", "reason": str(e), "stop": True}
        trial.set_user_attr("host", self.host)
        trial.set_user_attr("pid", os.getpid())

        def finish(status, state, reason=None, values=None, constraints=None, **attrs):
            for k, v in (constraints or {}).items():
                trial.set_constraint(k, v)
            trial.set_user_attr("constraints", constraints or {})
            trial.set_user_attr("status", status)
            if reason:
                trial.set_user_attr("reason", reason)
            for k, v in attrs.items():
                trial.set_user_attr(k, st.jsonable(v))
            study.tell(trial, values=values, state=state)
            return {"number": trial.number, "status": status, "reason": reason, "values": values}

        # 1. decode + validate
        try:
            cfg = self.space.suggest(trial).validate()
        except ConfigError as e:
            return finish("invalid", TrialState.PRUNED, reason=str(e))
        except (TypeError, ValueError) as e:
            return finish("invalid", TrialState.PRUNED, reason=f"{type(e).__name__}: {e}")
        arch = cfg.arch_id()
        trial.set_user_attr("arch_id", arch)
        trial.set_user_attr("config", st.jsonable(cfg.to_dict()))

        # 2. dedupe: a repeat reuses the stored result
        first = _first_with_arch(study, arch, trial.number)
        if first is not None:
            return finish("duplicate", TrialState.PRUNED, reason=f"same architecture as trial {first.number}",
                          duplicate_of=first.number, constraints=_constraints_of(first))

        try:
            # 3. params and FLOPs (cheap)
            from ..measure.cost import count_cost

            cost = count_cost(cfg)
            trial.set_user_attr("cost", cost.to_dict())
            cons = self.budget.cost_constraints(cost.params_m, cost.flops_m)
            if any(v > 0 for v in cons.values()):
                return finish("infeasible", TrialState.PRUNED, reason="over the params/FLOPs limit", constraints=cons)

            # 4. throughput, with the reference re-measured in the same session (the ratio is an
            #    objective, so it is measured even when the budget has no speed term)
            cands, refs = self._measure(cfg)
            # the budget's backend first: readers take the first entry as the primary one
            trial.set_user_attr("throughput", {b: st.measurement_attr(r) for b, r in cands.items()})
            trial.set_user_attr("reference_throughput", {b: st.measurement_attr(r) for b, r in refs.items()})
            cand, ref = cands[self.rc.backend], refs[self.rc.backend]
            trial.set_user_attr("env", st.jsonable(cand.env))
            if cand.status != "ok" or ref.status != "ok":
                bad = cand if cand.status != "ok" else ref
                return finish("failed", TrialState.FAIL, reason=f"throughput ({bad.model}): {bad.reason}", constraints=cons)
            ratio = cand.ratio_to_reference
            cons.update(self.budget.speed_constraints(ratio, cand.images_per_s, cand.ms_per_batch))
            if any(v > 0 for v in cons.values()):
                return finish("infeasible", TrialState.PRUNED, reason=_miss(self.budget, ratio, cand), constraints=cons,
                              ratio=ratio)

            # 5. proxy training, only for candidates within budget
            res, ckpt = self._train(cfg, trial.number)
            train_attr = {k: v for k, v in res.to_dict().items()}
            if res.status != "ok":
                return finish("failed", TrialState.FAIL, reason=f"training: {res.reason}", constraints=cons, train=train_attr)
            return finish("ok", TrialState.COMPLETE, values=[float(res.top1), float(ratio)], constraints=cons,
                          train=train_attr, checkpoint=str(ckpt) if ckpt else None)
        except UserError:
            study.tell(trial, state=TrialState.FAIL)
            raise  # a user's mistake (missing data...): stop, nothing stored is lost
        except Exception as e:  # noqa: BLE001 - any other failure of this candidate is recorded, the study goes on
            log.exception("trial %d failed", trial.number)
            return finish("failed", TrialState.FAIL, reason=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")

    def _measure(self, cfg):
        import efficientvit

        from ..measure.runner import measure

        ref_cfg = efficientvit.get_config(self.rc.reference).with_overrides(**self.space.input)
        specs = [ModelSpec("candidate", config=cfg.to_dict(), img_size=cfg.img_size, in_chans=cfg.in_chans),
                 ModelSpec(f"reference {self.rc.reference}", config=ref_cfg.to_dict(), img_size=cfg.img_size,
                           in_chans=cfg.in_chans)]
        backends = [self.rc.backend, *self.rc.also_measure]
        recs = measure(specs, backends, self.rc.settings(), reference=specs[1].label)
        by = {(r.backend, r.model): r for r in recs}
        return {b: by[(b, "candidate")] for b in backends}, {b: by[(b, specs[1].label)] for b in backends}

    def _train(self, cfg, number: int):
        from ..training.trainer import save_model, train

        data, protocol = self.data()
        res = train(cfg, data, protocol, seed=self.rc.seed, prepared=True, threads=self.rc.train_threads, device=self.rc.device,
                    checkpoint_dir=Path(self.rc.runs_dir) / self.rc.study / f"trial-{number}-epochs")
        ckpt = None
        if res.status == "ok":
            ckpt = save_model(Path(self.rc.runs_dir) / self.rc.study / f"trial-{number}.pt", res.model, res.config,
                              {"result": res.to_dict()})
        return res, ckpt


def _miss(budget: Budget, ratio, cand) -> str:
    parts = []
    if budget.min_ratio is not None and ratio < budget.min_ratio:
        parts.append(f"throughput {ratio:.3f}x the reference < {budget.min_ratio:g}x")
    if budget.min_images_per_s is not None and cand.images_per_s < budget.min_images_per_s:
        parts.append(f"{cand.images_per_s:.1f} img/s < {budget.min_images_per_s:g}")
    if budget.max_ms_per_batch is not None and cand.ms_per_batch > budget.max_ms_per_batch:
        parts.append(f"{cand.ms_per_batch:.1f} ms per batch > {budget.max_ms_per_batch:g}")
    return "; ".join(parts) or "over budget"


def _first_with_arch(study, arch: str, before: int):
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)):
        if t.number < before and t.user_attrs.get("arch_id") == arch and t.user_attrs.get("status") in ("ok", "infeasible", "failed"):
            return t
    return None


def _constraints_of(t) -> dict:
    return dict(t.user_attrs.get("constraints") or {})


def recover_interrupted(study) -> int:
    """Trials left RUNNING by a killed worker of this host become FAIL ('interrupted'), so a
    resumed study shows them honestly; completed trials are untouched."""
    from optuna.trial import TrialState

    host = socket.gethostname()
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        if t.user_attrs.get("host") == host and pid and not _alive(pid):
            study._storage.set_trial_user_attr(t._trial_id, "status", "failed")
            study._storage.set_trial_user_attr(t._trial_id, "reason", "interrupted: its worker was killed")
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            n += 1
    return n


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def default_train_threads(jobs: int) -> int:
    """Threads per training worker: the cores shared out among the ``--jobs`` workers of this
    host. Several trainers that each take every core oversubscribe the CPU; on 2 cores two such
    trainers were measured 10x slower than one."""
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


def worker_entry(rc_dict: dict, index: int, n_trials: int | None, deadline: float | None) -> None:
    """Entry point of a ``--jobs`` worker process."""
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("optuna").setLevel(logging.WARNING)
    rc = RunConfig(**rc_dict)
    rc.train_threads = rc.train_threads or default_train_threads(rc.jobs)
    Worker(rc, index).run(n_trials, deadline)


def split_trials(total: int | None, jobs: int) -> list[int | None]:
    if total is None:
        return [None] * jobs
    return [total // jobs + (1 if i < total % jobs else 0) for i in range(jobs)]
