"""A study and its trials behind the tool's own API: create, load and list studies; ask for a
trial, claim its architecture, keep its heartbeat, finish it with a status; study attributes and
workers. The rest of the tool uses these objects, never Optuna's.

Optuna's own heartbeat is built for ``Study.optimize`` (``ask`` warns when it is on) and RDB
storages only; the tool runs ask/tell on RDB and journal storages, so a running trial's heartbeat
is a trial attribute written by a thread (:class:`TrialHandle`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from ..errors import StorageError
from .records import FINISHED, KIND_ATTR, Summary, TrialRecord, jsonable, summarize, trial_record
from .urls import GRACE_S, HEARTBEAT_S, display_url, local_path, normalize_url, open_storage, storage_lock

log = logging.getLogger(__name__)
optuna.logging.set_verbosity(optuna.logging.WARNING)  # "A new study created..." is the CLI's to say, not Optuna's
DIRECTIONS = ("maximize", "maximize")
METRIC_NAMES = ("proxy_top1", "throughput_ratio")  # shown by optuna-dashboard
# a trial's status decides its Optuna state: only ``ok`` has objective values
STATE_OF = {"ok": TrialState.COMPLETE, "failed": TrialState.FAIL}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _stale(claim: dict) -> bool:
    """A promotion claim whose worker is gone (this host: its process; elsewhere: too old)."""
    if claim.get("host") == socket.gethostname():
        return not _alive(int(claim.get("pid") or 0))
    return time.time() - float(claim.get("at") or 0) > 12 * GRACE_S


def _gone(ua: dict, now: float) -> bool:
    """Whether a running trial's worker has stopped: on this host its process is gone; on any
    host its heartbeat is older than :data:`GRACE_S`."""
    dead = ua.get("host") == socket.gethostname() and ua.get("pid") and not _alive(int(ua["pid"]))
    return bool(dead) or now - float(ua.get("heartbeat_at") or now) > GRACE_S


@dataclass(frozen=True)
class Claim:
    """The answer to "may this trial evaluate this architecture?"."""

    kind: str  # new | retry | duplicate
    other: int | None = None  # the earlier trial (duplicate of, or retry of)
    reason: str | None = None


class TrialHandle:
    """One running trial: the sampler's questions, attributes, a heartbeat, and its end."""

    def __init__(self, trial: optuna.Trial, heartbeat_s: float = HEARTBEAT_S):
        self._trial = trial
        self.number = trial.number
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._finished = False
        self._beat = threading.Thread(target=self._heartbeat, args=(heartbeat_s,), daemon=True,
                                      name=f"heartbeat-{trial.number}")
        self.set("heartbeat_at", time.time())
        self._beat.start()

    # the sampler's questions (SearchSpace.suggest asks these)
    def suggest_categorical(self, name: str, choices: list):
        return self._trial.suggest_categorical(name, choices)

    def suggest_int(self, name: str, low: int, high: int, step: int = 1) -> int:
        return self._trial.suggest_int(name, low, high, step=step)

    def suggest_float(self, name: str, low: float, high: float, step: float | None = None) -> float:
        return self._trial.suggest_float(name, low, high, step=step)

    @property
    def attrs(self) -> dict[str, Any]:
        """Attributes stored so far, including those an enqueued trial came with."""
        return dict(self._trial.user_attrs)

    def set(self, key: str, value: Any) -> None:
        with self._lock:
            self._trial.set_user_attr(key, jsonable(value))

    def phase(self, name: str) -> None:
        """What the trial is doing now (shown while it runs, and in the reason if it is interrupted)."""
        self.set("phase", name)

    def _heartbeat(self, every: float) -> None:
        while not self._stop.wait(every):
            with self._lock:
                if self._finished:
                    return
                try:
                    self._trial.set_user_attr("heartbeat_at", time.time())
                except UpdateFinishedTrialError:  # failed as interrupted by another worker
                    return
                except Exception as e:  # noqa: BLE001 - a storage hiccup must not kill the trial
                    log.warning("trial %d: heartbeat not stored (%s)", self.number, e)

    def finish(self, status: str, values: list[float] | None = None, constraints: dict[str, float] | None = None,
               reason: str | None = None, **attrs: Any) -> dict:
        """Store the outcome: attributes, constraints (<= 0 is met), then the state the status
        implies. Returns a small summary for progress callbacks."""
        self._stop.set()
        with self._lock:
            self._finished = True
            t = self._trial
            for k, v in (constraints or {}).items():
                t.set_constraint(k, v)
            t.set_user_attr("constraints", jsonable(constraints or {}))
            t.set_user_attr("status", status)
            if reason:
                t.set_user_attr("reason", reason)
            for k, v in attrs.items():
                t.set_user_attr(k, jsonable(v))
            state = STATE_OF.get(status, TrialState.PRUNED)
            t.study.tell(t, values=values if state == TrialState.COMPLETE else None, state=state)
        return {"number": self.number, "status": status, "reason": reason, "values": values}


class StudyStore:
    """One study of an Optuna storage, as the tool uses it."""

    def __init__(self, study: optuna.Study, url: str, storage):
        self._study, self._storage = study, storage
        self.url = normalize_url(url)
        self.name = study.study_name

    # ------------------------------------------------------------------ attributes
    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self._study.user_attrs)

    @property
    def kind(self) -> str:
        return self.attrs.get(KIND_ATTR, "search")

    def set_attr(self, key: str, value: Any) -> None:
        self._study.set_user_attr(key, jsonable(value))

    @property
    def display_url(self) -> str:
        return display_url(self.url)

    def stored_path(self, path: Path) -> str:
        """A file path as a trial stores it: relative to the storage file's folder when it lies
        under it (the study can be moved with its files), else absolute."""
        path = Path(path).resolve()
        base = local_path(self.url)
        if base is not None:
            try:
                return str(path.relative_to(base.resolve().parent))
            except ValueError:
                pass
        return str(path)

    def resolve_path(self, stored: str | None) -> Path | None:
        """The file a trial stored (see :meth:`stored_path`), from any working directory."""
        if not stored:
            return None
        p = Path(stored)
        base = local_path(self.url)
        return p if p.is_absolute() or base is None else base.resolve().parent / p

    # ------------------------------------------------------------------ trials
    def records(self) -> list[TrialRecord]:
        """Every trial as a record, with its rung state and, for fully trained ones, the 95 %
        interval of one run from the reference's seed noise (the error bars of the plots)."""
        attrs = self.attrs
        half = (attrs.get("reference_result") or {}).get("single_run_ci_half")
        out = []
        for t in self._study.get_trials(deepcopy=False):
            r = trial_record(t, attrs.get(f"rungs:{t.number}"))
            if half and r.accuracy is not None and r.accuracy_ci is None and (r.fidelity or 1.0) >= 1.0:
                r.accuracy_ci = (r.accuracy - half, r.accuracy + half)
            out.append(r)
        return out

    def summary(self) -> Summary:
        return summarize(self.records())

    def record(self, number: int) -> TrialRecord | None:
        """One trial's record (None for an unknown number)."""
        try:
            tid = self._storage.get_trial_id_from_study_id_trial_number(self._study_id(), number)
        except KeyError:
            return None
        return trial_record(self._storage.get_trial(tid), self.attrs.get(f"rungs:{number}"))

    def set_sampler(self, sampler) -> None:
        """The sampler this process asks with (each worker has its own, see :mod:`.samplers`)."""
        self._study.sampler = sampler

    def __len__(self) -> int:
        return len(self._study.get_trials(deepcopy=False))

    def ask(self) -> TrialHandle:
        """A new trial (an enqueued one first). Raises RuntimeError when a grid is exhausted."""
        trial = self._study.ask()
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        return TrialHandle(trial)

    def enqueue(self, params: dict[str, Any], attrs: dict[str, Any] | None = None, once: bool = True) -> None:
        """Ask for these parameters next (e.g. the paper's models), tagged with ``attrs``; ``once``:
        not when a trial of the study already has them (a resumed run enqueues nothing twice)."""
        self._study.enqueue_trial(params, user_attrs=jsonable(attrs or {}), skip_if_exists=once)

    # ------------------------------------------------------------------ several workers
    def lock(self):
        """Exclusive across every worker of this storage (files: flock; servers: advisory lock)."""
        return storage_lock(self.url, getattr(self._storage, "engine", None))

    def register_worker(self) -> int:
        """A number unique to this worker within the study (0 for the first): sampler seeds derive
        from it, so that workers, and a restart after a kill, do not draw the same candidates."""
        with self.lock():
            n = int(self.attrs.get("workers_started", 0))
            self.set_attr("workers_started", n + 1)
        return n

    def claim_arch(self, handle: TrialHandle, arch_id: str, max_attempts: int = 2) -> Claim:
        """Atomically decide whether ``handle`` evaluates ``arch_id``: a duplicate when a finished
        trial has it (ok, infeasible, invalid, ...) or a running one is evaluating it; a retry when
        earlier attempts failed or were interrupted (at most ``max_attempts`` in all)."""
        with self.lock():
            earlier = [t for t in self._study.get_trials(deepcopy=False)
                       if t.number != handle.number and t.user_attrs.get("arch_id") == arch_id]
            done = [t for t in earlier if t.user_attrs.get("status") in FINISHED and t.user_attrs.get("status") != "duplicate"]
            running = [t for t in earlier if t.state == TrialState.RUNNING and not t.user_attrs.get("status")]
            # a running trial whose worker is gone is an interrupted attempt, not a claim (it is
            # marked failed when a run next starts): a worker that dies must not hold its
            # architecture while the other workers go on
            gone = [t for t in running if _gone(t.user_attrs, time.time())]
            running = [t for t in running if t.number not in {g.number for g in gone}]
            failed = sorted([t for t in earlier if t.user_attrs.get("status") == "failed" or t.state == TrialState.FAIL]
                            + gone, key=lambda t: t.number)
            if done:
                claim = Claim("duplicate", done[0].number, f"same architecture as trial {done[0].number}")
            elif running:
                claim = Claim("duplicate", running[0].number, f"same architecture as trial {running[0].number}, running")
            elif len(failed) >= max_attempts:
                claim = Claim("duplicate", failed[-1].number,
                              f"same architecture as trial {failed[-1].number}; it failed {len(failed)} time(s), "
                              f"the most allowed")
            elif failed:
                claim = Claim("retry", failed[-1].number)
            else:
                claim = Claim("new")
            if claim.kind != "duplicate":
                handle.set("arch_id", arch_id)  # inside the lock: the next claimant sees it
        return claim

    # ------------------------------------------------------------------ successive halving
    def rungs(self, number: int | None = None) -> dict:
        """A trial's rung state -- ``rungs`` (one entry per rung reached), ``promoting`` (a claim),
        ``log`` (who trained which rung) -- or, without ``number``, every trial's by number. A
        claim whose worker is gone is left out: its promotion is free to take again."""
        def live(state: dict) -> dict:
            state = dict(state)
            if state.get("promoting") and _stale(state["promoting"]):
                del state["promoting"]
            return state

        attrs = self.attrs
        if number is None:
            return {int(k.split(":", 1)[1]): live(v) for k, v in attrs.items() if k.startswith("rungs:")}
        return live(attrs.get(f"rungs:{number}") or {"rungs": []})

    def record_rung(self, number: int, entry: dict) -> None:
        """Store the rung a trial has just reached (atomically: several workers write these)."""
        with self.lock():
            state = self.rungs(number)
            state["rungs"] = [r for r in state["rungs"] if r["rung"] != entry["rung"]] + [entry]
            state.setdefault("log", []).append({"rung": entry["rung"], "host": socket.gethostname(), "pid": os.getpid()})
            state.pop("promoting", None)
            self.set_attr(f"rungs:{number}", state)

    def claim_promotion(self, number: int, rung: int) -> bool:
        """Whether this worker may train ``number`` to ``rung``: true for one worker only."""
        with self.lock():
            state = self.rungs(number)
            reached = max((r["rung"] for r in state["rungs"]), default=-1)
            if reached >= rung or state.get("promoting"):
                return False
            state["promoting"] = {"rung": rung, "host": socket.gethostname(), "pid": os.getpid(), "at": time.time()}
            self.set_attr(f"rungs:{number}", state)
            return True

    def release_promotion(self, number: int) -> None:
        """A promotion that failed: another worker may try it."""
        with self.lock():
            state = self.rungs(number)
            if state.pop("promoting", None) is not None:
                self.set_attr(f"rungs:{number}", state)

    def fail_interrupted(self) -> list[int]:
        """Trials left running by a worker that stopped become ``failed`` ('interrupted'): on this
        host when the worker's process is gone, on any host when its heartbeat is older than
        :data:`GRACE_S`. Completed trials are untouched. Returns their numbers."""
        host, now = socket.gethostname(), time.time()
        out = []
        with self.lock():
            for t in self._study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                ua = t.user_attrs
                if not _gone(ua, now):
                    continue
                dead = ua.get("host") == host and ua.get("pid") and not _alive(ua["pid"])
                how = "was killed" if dead else f"sent no heartbeat for {GRACE_S // 60} min"
                phase = f" while {ua['phase']}" if ua.get("phase") else ""
                try:
                    tid = self._storage.get_trial_id_from_study_id_trial_number(self._study_id(), t.number)
                    self._storage.set_trial_user_attr(tid, "status", "failed")
                    self._storage.set_trial_user_attr(
                        tid, "reason", f"interrupted: its worker (pid {ua.get('pid')} on {ua.get('host')}) {how}{phase}")
                    self._storage.set_trial_state_values(tid, TrialState.FAIL)
                    out.append(t.number)
                except UpdateFinishedTrialError:  # it finished meanwhile
                    continue
        return out

    def _study_id(self) -> int:
        return self._storage.get_study_id_from_name(self.name)


# --------------------------------------------------------------------------- studies
def create_study(name: str, url: str | None, attrs: dict[str, Any], resume_check: dict[str, Any] | None = None,
                 sampler=None) -> StudyStore:
    """Create the study (two objectives, maximised) or resume it. A resumed study must have been
    created with the same settings that change what a trial means (``resume_check``); a study
    gets a unique ``study_uid`` at creation, so that nothing of an older study of the same name
    (checkpoints) is ever taken for its own. Safe when several processes start at once."""
    storage = open_storage(url)
    try:
        with storage_lock(url, getattr(storage, "engine", None)):
            study = optuna.create_study(study_name=name, storage=storage, sampler=sampler,
                                        directions=list(DIRECTIONS), load_if_exists=True)
            store = StudyStore(study, url, storage)
            existing = store.attrs
            if "study_uid" not in existing:
                with warnings.catch_warnings():  # experimental in Optuna 5; a user need not read that
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    study.set_metric_names(list(METRIC_NAMES))
            for k, v in {"study_uid": uuid.uuid4().hex, **attrs}.items():
                if k not in existing:
                    store.set_attr(k, v)
    except StorageError:
        raise
    except Exception as e:  # noqa: BLE001 - the database's error, in one line
        raise StorageError(f"cannot create study {name!r} in {display_url(url)}: {str(e).splitlines()[0]}") from None
    old = existing.get("settings")
    if old and resume_check:
        for k, now in resume_check.items():
            if old.get(k) != now:
                raise StorageError(f"study {name!r} was created with {k}={old.get(k)!r}, this run has {k}={now!r}; "
                                   "use another --study name or the same settings")
    return store


def load_study(name: str, url: str | None = None, sampler=None) -> StudyStore:
    storage = open_storage(url, create=False)
    try:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    except KeyError:
        names = [s["name"] for s in list_studies(url)]
        raise StorageError(f"no study named {name!r} in {display_url(url)}; studies there: "
                           f"{', '.join(names) or 'none'}") from None
    return StudyStore(study, url, storage)


def list_studies(url: str | None = None) -> list[dict]:
    storage = open_storage(url, create=False)
    return [{"name": s.study_name, "n_trials": s.n_trials, "kind": s.user_attrs.get(KIND_ATTR, "search"),
             "directions": [d.name.lower() for d in s.directions], "datetime_start": s.datetime_start,
             "user_attrs": s.user_attrs}
            for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
