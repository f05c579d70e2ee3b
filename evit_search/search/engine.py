"""The search: one trial at a time, cheapest work first, every outcome stored in the study.

Per trial: decode the sampled knobs -> validate -> claim the architecture (dedupe across every
worker of the study) -> params and FLOPs (cheap limits) -> throughput with the reference
re-measured in the same session (budget) -> proxy training for candidates that meet the budget.
Outcomes:

- ``ok``: trained; COMPLETE with (proxy top-1, throughput ratio) and its constraints.
- ``infeasible``: misses the budget; PRUNED, stored with its measurements, not trained.
- ``invalid``: the sampled knobs break a config rule; PRUNED with the rule.
- ``screened`` (``--prefilter``): feasible, but its zero-cost score is in the worst fraction of the
  feasible candidates scored so far; PRUNED with the score and the threshold, not trained.
- ``duplicate``: an architecture another trial has evaluated or is evaluating; PRUNED, pointing at it.
- ``failed``: a measurement or training error (export error, NaN loss...); FAIL with the reason.
  Its architecture may be tried again by a later trial (``retry_of``).

The budget is an Optuna constraint, never a penalty on an objective, and nothing is ever scored
as zero.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Callable

import efficientvit
from efficientvit.errors import ConfigError, EfficientViTError

from .. import hostlock
from .. import storage as st
from ..errors import UserError
from ..measure.cost import count_cost
from ..measure.records import ModelSpec
from ..measure.runner import die_with_parent, measure
from ..training.data import load_dataset
from ..training.protocols import get_protocol
from ..training.splits import prepare_data
from ..training.trainer import save_model, train
from ..training.zerocost import DEFAULT_BATCH, draw_batch, score_config
from . import fidelity, predictor, prefilter
from .budget import Budget
from .config import RunConfig, check_run_config

log = logging.getLogger(__name__)
TrialCallback = Callable[[dict], None]
MAX_REPEATS = 50  # samples in a row that are no new architecture before a worker stops
NOT_NEW = ("duplicate", "invalid", "running")  # outcomes that --trials does not count


class Worker:
    """Runs trials of one study; several workers (processes, machines) may share the study."""

    def __init__(self, rc: RunConfig):
        self.rc = rc
        self.space, self.budget = check_run_config(rc)
        self.prefilter = prefilter.parse_prefilter(rc.prefilter)
        self._data = None
        self._batch = None
        self._failed: set[tuple[int, int]] = set()  # promotions that failed in this worker: not retried by it
        self.time_up = False  # the last run ended for time (with successive halving: to finish its front)

    def open(self) -> st.StudyStore:
        """The study, with a sampler seeded from the run's seed and this worker's number in the study."""
        store = st.load_study(self.rc.study, self.rc.storage)
        index = store.register_worker()
        seed = self.rc.seed + 7919 * index  # worker 0 of a study draws what --seed says
        store.set_sampler(st.make_sampler(self.rc.sampler, seed, self.space.grid() if self.rc.sampler == "grid" else None,
                                          population_size=self.rc.population()))
        return store

    def data(self):
        """The prepared splits and the protocol, loaded once per worker."""
        if self._data is None:
            protocol = get_protocol(self.rc.protocol, epochs=self.rc.epochs)
            with hostlock.working("loading and resizing data"):
                bundle = load_dataset(self.rc.data, self.rc.data_dir, max_classes=self.rc.classes,
                                      per_class=self.rc.per_class, resolution=protocol.img_size)
                self._data = (prepare_data(bundle, protocol), protocol)
        return self._data

    def run(self, n_trials: int | None, deadline: float | None, on_trial: TrialCallback | None = None,
            stop: Callable[[], bool] | None = None, remaining: Callable[[], float] | None = None) -> int:
        """Trials until ``n_trials`` new architectures were evaluated (duplicates and invalid
        samples do not count) or the time is up: ``deadline`` (Unix time) or ``remaining``
        (seconds left of a budget the caller keeps, e.g. the search benchmark's CPU time), the
        earlier. With successive halving a promotion comes before a new trial, and the run
        finishes its front (:mod:`.fidelity`): once it will start no new trial -- the count is
        reached, or the time left is within the reserve that finishing needs -- promotion relaxes
        until a candidate is at the top rung, past the time limit if need be. Returns how many new
        architectures were evaluated. ``stop``: asked before each trial or promotion, ends the run
        at once when true."""
        store = self.open()
        done = repeats = 0
        self.time_up = False
        while not (stop and stop()):
            left = min([t for t in (deadline - time.time() if deadline is not None else None,
                                    remaining() if remaining is not None else None) if t is not None], default=None)
            trials_over = n_trials is not None and done >= n_trials
            if self.rc.fidelity == "sh":
                job, no_new = self._next_promotion(store, trials_over, left)
                if job is not None:
                    out = self._promote(store, *job)
                    if on_trial:
                        on_trial(out)
                    continue
                if no_new:
                    self.time_up = not trials_over
                    break
            elif trials_over or (left is not None and left <= 0):
                self.time_up = not trials_over
                break
            rec = self.run_trial(store)
            if on_trial:
                on_trial(rec)
            if rec.get("stop"):
                break
            if rec["status"] in NOT_NEW:
                repeats += 1
                if repeats >= MAX_REPEATS:
                    if on_trial:
                        on_trial({"status": "stopped", "reason": f"{MAX_REPEATS} samples in a row were invalid or "
                                  "evaluated already: the space looks exhausted", "stop": True})
                    break
                continue
            done, repeats = done + 1, 0
        return done

    # ------------------------------------------------------------------ successive halving
    def _next_promotion(self, store: st.StudyStore, trials_over: bool = False,
                        left: float | None = None) -> tuple[tuple[int, int] | None, bool]:
        """(a (trial, rung) this worker has claimed and should train next, or None; whether the
        run starts no new trial). ``left``: seconds of the run's time left (None: no limit). Once
        no new trial starts, the finishing promotions come first; past the time limit, only they."""
        at_rung: dict[int, list[fidelity.Point]] = {}
        promoted: dict[int, set[int]] = {}
        states = store.rungs()
        trial_s = []
        for r in store.records():
            if r.status != "ok" or r.ratio is None or r.number not in states:
                continue
            state = states[r.number]
            reached = {e["rung"] for e in state["rungs"]}
            if r.duration_s:
                trial_s.append(r.duration_s)  # measuring and rung-0 training of a feasible candidate
            for e in state["rungs"]:
                at_rung.setdefault(e["rung"], []).append(fidelity.Point(r.number, e["top1"], r.ratio))
                if e["rung"] + 1 in reached or (state.get("promoting") or {}).get("rung") == e["rung"] + 1:
                    promoted.setdefault(e["rung"], set()).add(r.number)
        top = len(self.rungs) - 1
        overtime = left is not None and left <= 0
        reserve = fidelity.reserve_s(states, self.rungs, sorted(trial_s)[len(trial_s) // 2] if trial_s else None)
        no_new = trials_over or overtime or (left is not None and left <= reserve)
        jobs = fidelity.finishing(at_rung, promoted, self.rc.eta, top) if no_new else []
        if not overtime:  # a plain promotion, when time is limited, only if it fits in what is left
            per = fidelity.seconds_per_fraction(states, self.rungs) or 0.0
            jobs += [(n, rung) for n, rung in fidelity.promotable(at_rung, promoted, self.rc.eta, top)
                     if left is None or (self.rungs[rung] - self.rungs[rung - 1]) * per <= left]
        for number, rung in jobs:
            if (number, rung) not in self._failed and store.claim_promotion(number, rung):
                return (number, rung), no_new
        return None, no_new

    def _promote(self, store: st.StudyStore, number: int, rung: int) -> dict:
        """Train trial ``number`` on from its last rung's checkpoint to ``rung``."""
        rec = store.record(number)
        cfg = efficientvit.EfficientViTConfig.from_dict(rec.config)
        try:
            res, ckpt = self._train(cfg, store, number, rung)
        except Exception as e:  # noqa: BLE001 - the promotion failed: another worker may retry it
            self._failed.add((number, rung))
            store.release_promotion(number)
            log.exception("promotion of trial %d to rung %d failed", number, rung)
            return {"number": number, "status": "failed", "reason": f"promotion to rung {rung}: {e}"}
        if res.status != "ok":
            self._failed.add((number, rung))
            store.release_promotion(number)
            return {"number": number, "status": "failed", "reason": f"promotion to rung {rung}: {res.reason}"}
        store.record_rung(number, self._rung_entry(rung, res, store, ckpt))
        return {"number": number, "status": f"rung {rung}", "values": [float(res.top1), float(rec.ratio)],
                "reason": f"promoted: trained to {res.fraction:.0%} of the protocol"}

    @property
    def rungs(self) -> list[float]:
        return self.rc.rung_fractions()

    def _rung_entry(self, rung: int, res, store: st.StudyStore, ckpt) -> dict:
        entry = {"rung": rung, "fraction": res.fraction, "top1": res.top1, "val_loss": res.val_loss,
                 "epochs": res.history[-1]["epoch"] if res.history else None, "seconds": res.wall_s,
                 "train_s": res.train_s, "at": time.time()}
        if res.fraction >= 1.0:
            entry.update(test_top1=res.test_top1, test_top5=res.test_top5, test_loss=res.test_loss,
                         checkpoint=store.stored_path(ckpt) if ckpt else None)
        return entry

    # ------------------------------------------------------------------ the trial pipeline
    def run_trial(self, store: st.StudyStore) -> dict:
        try:
            trial = store.ask()
        except RuntimeError as e:  # GridSampler: the grid is exhausted
            return {"status": "stopped", "reason": str(e), "stop": True}

        # 1. decode + validate
        try:
            cfg = self.space.suggest(trial).validate()
        except ConfigError as e:
            return trial.finish("invalid", reason=str(e))
        except (TypeError, ValueError) as e:
            return trial.finish("invalid", reason=f"{type(e).__name__}: {e}")
        trial.set("config", cfg.to_dict())

        # 2. dedupe across every worker of the study
        claim = store.claim_arch(trial, cfg.arch_id(), max_attempts=self.rc.attempts)
        if claim.kind == "duplicate":
            first = store.record(claim.other)
            return trial.finish("duplicate", reason=claim.reason, duplicate_of=claim.other,
                                constraints=first.constraints if first else None)
        if claim.kind == "retry":
            trial.set("retry_of", claim.other)

        try:
            # 3. params and FLOPs (cheap)
            trial.phase("counting params and FLOPs")
            with hostlock.working("counting params and FLOPs"):
                cost = count_cost(cfg)
            trial.set("cost", cost.to_dict())
            cons = self.budget.cost_constraints(cost.params_m, cost.flops_m)
            if any(v > 0 for v in cons.values()):
                return trial.finish("infeasible", reason="over the params/FLOPs limit", constraints=cons)

            # 3b. a candidate predicted well below the speed budget is neither measured nor trained
            if self.rc.predict and self.budget.min_ratio is not None:
                model = predictor.fit(store.records(), self.rc.backend, reference=(
                    store.attrs.get("reference_config"), store.attrs.get("reference_cost")))
                if model is not None:
                    predicted = model.predict(cfg.to_dict(), cost.to_dict())
                    trial.set("predicted_ratio", predicted)
                    trial.set("predictor", {"n": model.n, "margin": model.margin, "mdape": model.mdape,
                                            "spearman": model.spearman})
                    if predictor.skip(model, predicted, self.budget.min_ratio):
                        if not self.rc.predict_audit:
                            cons["throughput_ratio"] = self.budget.min_ratio - predicted
                            return trial.finish("predicted-infeasible", constraints=cons, reason=(
                                f"predicted {predicted:.2f}x the reference; even x{model.margin:.2f} (the predictor's "
                                f"{predictor.CONFIDENCE:.0%} error bound over {model.n} candidates) is below "
                                f"{self.budget.min_ratio:g}x"))
                        trial.set("would_skip", True)  # benchmarks measure it anyway, to check the skip

            # 4. throughput, with the reference re-measured in the same session (the ratio is an
            #    objective, so it is measured even when the budget has no speed term); a candidate
            #    whose interval contains the budget is measured again with more rounds
            trial.phase("measuring throughput")
            cands, refs = self._measure(cfg)
            cand, ref = cands[self.rc.backend], refs[self.rc.backend]
            verdict = self.budget.verdict(cand) if cand.status == ref.status == "ok" else None
            if verdict == "borderline":
                trial.set("first_throughput", {b: st.measurement_attr(r) for b, r in cands.items()})
                cands, refs = self._measure(cfg, more=True)
                cand, ref = cands[self.rc.backend], refs[self.rc.backend]
                verdict = self.budget.verdict(cand) if cand.status == ref.status == "ok" else None
            # the budget's backend first: readers take the first entry as the primary one
            trial.set("throughput", {b: st.measurement_attr(r) for b, r in cands.items()})
            trial.set("reference_throughput", {b: st.measurement_attr(r) for b, r in refs.items()})
            trial.set("env", cand.env)
            if cand.status != "ok" or ref.status != "ok" or cand.ratio_to_reference is None:
                bad = cand if cand.status != "ok" else ref
                return trial.finish("failed", reason=f"throughput ({bad.model}): {bad.reason or 'no paired ratio'}",
                                    constraints=cons)
            ratio = cand.ratio_to_reference
            trial.set("budget_verdict", verdict)
            zc = self._zerocost(trial, cfg) if self.rc.zerocost else None
            cons.update(self.budget.speed_constraints(ratio, cand.images_per_s, cand.ms_per_batch))
            if any(v > 0 for v in cons.values()):
                return trial.finish("infeasible", reason=_miss(self.budget, ratio, cand), constraints=cons, ratio=ratio)

            # 4b. --prefilter: a feasible candidate whose zero-cost score is in the worst FRACTION of
            #     the feasible ones scored so far is stored as screened, not trained
            if self.prefilter is not None:
                value = (zc.scores if zc is not None else {}).get(self.prefilter.score)
                history = prefilter.feasible_history(store.records(), self.prefilter.score, exclude=trial.number)
                d = prefilter.decide(self.prefilter, value, history)
                trial.set("prefilter", {"rule": self.prefilter.describe(), "value": d.value, "threshold": d.threshold,
                                        "history": d.history, "screened": d.screen})
                if d.screen:
                    return trial.finish("screened", reason=d.reason, constraints=cons, ratio=ratio)

            # 5. proxy training, only for candidates within budget (with successive halving: rung 0)
            trial.phase("training")
            res, ckpt = self._train(cfg, store, trial.number, 0)
            if res.status != "ok":
                return trial.finish("failed", reason=f"training: {res.reason}", constraints=cons, train=res.to_dict())
            if self.rc.fidelity == "sh":
                store.record_rung(trial.number, self._rung_entry(0, res, store, ckpt))
            return trial.finish("ok", values=[float(res.top1), float(ratio)], constraints=cons, train=res.to_dict(),
                                checkpoint=store.stored_path(ckpt) if ckpt else None)
        except UserError as e:
            trial.finish("failed", reason=f"stopped: {e}")
            raise  # a user's mistake (missing data...): stop, nothing stored is lost
        except Exception as e:  # noqa: BLE001 - any other failure of this candidate is recorded, the study goes on
            log.exception("trial %d failed", trial.number)
            return trial.finish("failed", reason=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")

    def _zerocost(self, trial, cfg):
        """Zero-cost scores of the trained config on one batch of the protocol's training images
        (seconds on a CPU), stored on the trial; a score that fails is stored with its reason."""
        trial.phase("zero-cost scores")
        if self._batch is None:
            data, protocol = self.data()
            self._batch = draw_batch(data, protocol.img_size, DEFAULT_BATCH, self.rc.seed)
        try:
            zc = score_config(cfg, self._batch, seed=self.rc.seed)
        except Exception as e:  # noqa: BLE001 - the scores are evidence, not the trial: it goes on without them
            log.exception("zero-cost scores of trial %d failed", trial.number)
            trial.set("zerocost", {"status": "failed", "reason": f"{type(e).__name__}: {e}", "scores": {}})
            return None
        trial.set("zerocost", zc.to_dict())
        return zc

    def _measure(self, cfg, more: bool = False):
        """Candidate and reference in one session on every backend; ``more``: twice the rounds
        (a borderline candidate's second measurement)."""
        ref_cfg = efficientvit.get_config(self.rc.reference).with_overrides(**self.space.input)
        specs = [ModelSpec("candidate", config=cfg.to_dict(), img_size=cfg.img_size, in_chans=cfg.in_chans),
                 ModelSpec(f"reference {self.rc.reference}", config=ref_cfg.to_dict(), img_size=cfg.img_size,
                           in_chans=cfg.in_chans)]
        settings = self.rc.settings()
        if more:
            settings = replace(settings, min_rounds=2 * settings.max_rounds, max_rounds=2 * settings.max_rounds)
        backends = [self.rc.backend, *self.rc.also_measure]
        recs = measure(specs, backends, settings, reference=specs[1].label)
        by = {(r.backend, r.model): r for r in recs}
        return {b: by[(b, "candidate")] for b in backends}, {b: by[(b, specs[1].label)] for b in backends}

    def _train(self, cfg, store: st.StudyStore, number: int, rung: int):
        """Train (to the rung's fraction of the protocol) with checkpoints keyed by everything that
        makes this trial: a checkpoint of another study, storage, data subset or trial is never
        resumed from; a promotion resumes its own rung's. The full model is saved at the end."""
        data, protocol = self.data()
        folder = self.rc.runs_root() / store.name / f"trial-{number}-{cfg.arch_id()[:8]}"
        key = {"storage": st.storage_identity(self.rc.storage), "study_uid": store.attrs.get("study_uid"),
               "trial": number, "data": self.rc.data, "classes": self.rc.classes, "per_class": self.rc.per_class,
               "data_dir": str(Path(self.rc.data_dir).resolve()) if self.rc.data_dir else None,
               "data_fingerprint": data.fingerprint()}
        res = train(cfg, data, protocol, seed=self.rc.seed, threads=self.rc.train_threads, device=self.rc.device,
                    precision=self.rc.precision, checkpoint_dir=folder / "epochs", run_key=key, fresh_on_mismatch=True,
                    until=self.rungs[rung])
        ckpt = None
        if res.status == "ok" and res.fraction >= 1.0:
            names = list(data.class_names) if data.class_names is not None else None
            ckpt = save_model(folder / "model.pt", res.model, res.config, {"result": res.to_dict(), "class_names": names})
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


def default_train_threads(jobs: int) -> int:
    """Threads per training worker: the cores shared out among the ``--jobs`` workers of this
    host. Several trainers that each take every core oversubscribe the CPU; on 2 cores two such
    trainers were measured 10x slower than one."""
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


def worker_entry(rc_dict: dict, n_trials: int | None, deadline: float | None, parent_pid: int | None = None) -> None:
    """Entry point of a ``--jobs`` worker process: a user's mistake is one line and exit 2. It
    dies with the ``run`` that started it (``kill -9`` of the parent leaves no worker training on;
    its trial is marked interrupted by the next start)."""
    die_with_parent(parent_pid)
    warnings.filterwarnings("ignore")
    logging.getLogger("optuna").setLevel(logging.WARNING)
    rc = RunConfig(**rc_dict)
    rc.train_threads = rc.train_threads or default_train_threads(rc.jobs)
    try:
        Worker(rc).run(n_trials, deadline)
    except EfficientViTError as e:
        print(f"evit-search run (worker {os.getpid()}): error: {e}", file=sys.stderr)
        sys.exit(2)


def split_trials(total: int | None, jobs: int) -> list[int | None]:
    if total is None:
        return [None] * jobs
    return [total // jobs + (1 if i < total % jobs else 0) for i in range(jobs)]
