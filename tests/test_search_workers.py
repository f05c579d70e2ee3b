"""The search with real trials in this process and several processes on one study: dedupe and
retries, the infeasible path, samplers, timeouts, resume checks, workers that start together or
are killed, checkpoints that are not their own."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_search import BASE, _wait_for, cli, postgres  # noqa: F401 - postgres is a fixture

from evit_search import storage as st
from evit_search.errors import StorageError
from evit_search.hooks import Hooks
from evit_search.search.config import RunConfig, check_run_config
from evit_search.search.engine import Worker
from evit_search.search.run import open_run_study, run_search

pytestmark = pytest.mark.slow
FAST = dict(space="tiny", data="synthetic", protocol="proxy-fast", budget="0.5x", sampler="random", train_threads=1,
            train_reference=False, measure=dict(seconds=0.03, warmup_s=0.03, min_rounds=2, max_rounds=2))


def _rc(tmp_path, **kw) -> RunConfig:
    rc = RunConfig(**{**FAST, "storage": str(tmp_path / "s.db"), "study": "w", "trials": 1, **kw})
    rc.measure = {**rc.settings().to_dict(), **FAST["measure"]}
    return rc


def _params(cfg_values: dict) -> dict:
    """Sampler parameters of the tiny space for one architecture."""
    return {"s0.dim": cfg_values.get("d0", 24), "s0.num_heads": 2, "s0.key_dim": 4, "s1.dim": 32, "s1.depth": 1,
            "s1.num_heads": 2, "s2.dim": 32}


def test_dedupe_matches_finished_outcomes_and_retries_failed_ones(tmp_path):
    rc = _rc(tmp_path, attempts=2)
    worker = Worker(rc)
    store = open_run_study(rc, worker.space)
    worker_store = worker.open()
    p = _params({})
    # a failed attempt of the architecture (its worker was killed, say) does not block it
    store.enqueue(p, once=False)
    t = store.ask()
    cfg = worker.space.suggest(t).validate()
    assert store.claim_arch(t, cfg.arch_id()).kind == "new"
    t.finish("failed", reason="interrupted: its worker was killed")
    store.enqueue(p, once=False)
    retried = worker.run_trial(worker_store)
    assert retried["status"] == "ok", retried
    rec = store.record(retried["number"])
    assert rec.retry_of == t.number
    store.enqueue(p, once=False)  # now it is evaluated: a repeat is a duplicate of the trial that did it
    dup = worker.run_trial(worker_store)
    assert dup["status"] == "duplicate" and store.record(dup["number"]).duplicate_of == retried["number"]
    assert store.record(dup["number"]).constraints == rec.constraints  # the sampler sees the same constraints


def test_an_architecture_whose_worker_died_mid_trial_is_retried_at_once(tmp_path):
    """A trial left running by a worker that is gone (killed while the other workers go on) does
    not hold its architecture until the next run: a later sample retries it, linked to it."""
    rc = _rc(tmp_path, attempts=2)
    worker = Worker(rc)
    store = open_run_study(rc, worker.space)
    arch = "a" * 16
    first = store.ask()
    assert store.claim_arch(first, arch).kind == "new"
    second = store.ask()  # its worker (this process) is alive: the architecture is taken
    claim = store.claim_arch(second, arch)
    assert claim.kind == "duplicate" and claim.other == first.number and "running" in claim.reason
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    first.set("pid", dead.pid)  # now its worker is gone, the trial still running in the storage
    third = store.ask()
    assert store.claim_arch(third, arch) == st.Claim("retry", first.number)
    first._stop.set()  # its heartbeat (the "dead" worker's) stops; the next run marks it interrupted
    assert store.fail_interrupted() == [first.number]
    rec = store.record(first.number)
    assert rec.status == "failed" and rec.reason.startswith(f"interrupted: its worker (pid {dead.pid}")
    assert "was killed" in rec.reason
    for t in (second, third):
        t.finish("invalid", reason="the test is done with it")


def test_attempts_are_bounded(tmp_path):
    rc = _rc(tmp_path, attempts=1)
    worker = Worker(rc)
    store = open_run_study(rc, worker.space)
    p = _params({"d0": 32})
    store.enqueue(p, once=False)
    t = store.ask()
    store.claim_arch(t, worker.space.suggest(t).validate().arch_id())
    t.finish("failed", reason="training: loss is nan")
    store.enqueue(p, once=False)
    out = worker.run_trial(worker.open())
    assert out["status"] == "duplicate" and "failed 1 time(s), the most allowed" in out["reason"]


def test_infeasible_candidates_are_measured_stored_and_not_trained(tmp_path):
    rc = _rc(tmp_path, budget="100x", trials=2)
    out = run_search(rc, Hooks())
    recs = out.store.records()
    assert [r.status for r in recs] == ["infeasible", "infeasible"]
    for r in recs:
        assert r.accuracy is None  # never a made-up score
        assert r.throughput["torch-cpu"]["ratio_to_reference"] < 100 and r.train is None
        assert r.constraints["throughput_ratio"] == pytest.approx(100 - r.ratio)  # > 0: missed, by this much
        assert r.attrs["budget_verdict"] == "outside"


def test_a_candidate_over_the_params_limit_is_neither_measured_nor_trained(tmp_path, monkeypatch):
    """The cheap limits come first: an enqueued candidate over params<... is stored infeasible
    with its cost and the constraint it misses, and no timing or training runs."""
    from evit_search.search import engine

    monkeypatch.setattr(engine, "measure", lambda *a, **kw: pytest.fail("measured a candidate over the params limit"))
    monkeypatch.setattr(engine, "train", lambda *a, **kw: pytest.fail("trained a candidate over the params limit"))
    rc = _rc(tmp_path, budget="0.5x,params<0.001M")
    worker = Worker(rc)
    store = open_run_study(rc, worker.space)
    store.enqueue(_params({}), once=False)
    out = worker.run_trial(worker.open())
    rec = store.record(out["number"])
    assert rec.status == "infeasible" and rec.reason == "over the params/FLOPs limit"
    assert rec.constraints == {"params_m": pytest.approx(rec.cost["params_m"] - 0.001)} and rec.constraints["params_m"] > 0
    assert rec.throughput == {} and rec.train is None and rec.accuracy is None


def test_enqueued_paper_models_count_as_the_runs_trials(tmp_path, monkeypatch):
    """The paper's models are enqueued (and numbered) before the run samples: they are trials of
    this run, so README's main command (8 trials, 5 of them the paper's) does not end with '3 of
    the 8 asked for were evaluated' and a non-zero exit."""
    from evit_search.search import run as run_module

    def enqueue_one(store, space, reference):  # stands in for a paper model inside the tiny space
        store.enqueue(_params({}), once=False)
        return ["stand-in"]

    monkeypatch.setattr(run_module, "enqueue_paper_models", enqueue_one)
    out = run_search(_rc(tmp_path, trials=2, paper_models=True), Hooks())
    assert out.added == 2 and out.evaluated == 2 and out.shortfall(2) is None


@pytest.mark.parametrize("sampler", ["nsga2", "tpe", "grid"])
def test_samplers_run(tmp_path, sampler):
    out = run_search(_rc(tmp_path, sampler=sampler, trials=2), Hooks())
    assert out.evaluated == 2 and all(r.status in ("ok", "infeasible") for r in out.store.records()
                                      if r.status != "duplicate")


def test_the_named_sampler_draws_the_candidates(tmp_path):
    """--sampler picks the sampler a worker asks with (not a random one whatever the name), seeded
    by --seed: NSGA-II with the run's population, TPE, and a grid over the space's values."""
    import optuna

    kinds = {"nsga2": optuna.samplers.NSGAIISampler, "tpe": optuna.samplers.TPESampler,
             "random": optuna.samplers.RandomSampler, "grid": optuna.samplers.GridSampler}
    for name, kind in kinds.items():
        rc = _rc(tmp_path, study=name, sampler=name, trials=10)
        worker = Worker(rc)
        open_run_study(rc, worker.space)
        store = worker.open()
        assert type(store._study.sampler) is kind, name
        trial = store.ask()
        worker.space.suggest(trial)
        params = trial._trial.params
        if name == "nsga2":
            assert store._study.sampler._population_size == rc.population() == 5
        if name == "grid":
            grid = worker.space.grid()
            assert set(params) == set(grid) and all(v in grid[k] for k, v in params.items())
    # the same seed draws the same first candidate, another seed another one
    firsts = []
    for i, seed in enumerate((1, 1, 2)):
        rc = _rc(tmp_path, study=f"seed{i}", sampler="tpe", seed=seed)
        worker = Worker(rc)
        open_run_study(rc, worker.space)
        trial = worker.open().ask()
        firsts.append(worker.space.suggest(trial).arch_id())
    assert firsts[0] == firsts[1] != firsts[2]


def test_timeout_stops_new_trials_and_is_not_an_error(tmp_path):
    t0 = time.time()
    out = run_search(_rc(tmp_path, trials=100, timeout=15), Hooks())
    assert out.timed_out and 1 <= out.evaluated < 100 and out.shortfall(100) is None
    assert time.time() - t0 < 15 + 60  # no trial starts after the deadline; the one running ends


def test_resuming_with_other_settings_is_refused(tmp_path):
    run_search(_rc(tmp_path, trials=1), Hooks())
    for change in ({"budget": "0.6x"}, {"seed": 3}, {"protocol": "proxy"}, {"per_class": 10}):
        with pytest.raises(StorageError, match="was created with"):
            run_search(_rc(tmp_path, **change), Hooks())


@pytest.mark.parametrize("stored,now", [
    ({"seed": 0}, {"seed": 3}),
    ({"train_device": "cuda"}, {}),  # a study trained on a GPU host, resumed on this CPU
    ({"precision": "amp"}, {}),  # a study trained with --amp, resumed in fp32
])
def test_resuming_with_another_seed_device_or_precision_is_one_line(tmp_path, stored, now):
    """A study's trials share the seed, the training device's kind and the precision: a resume
    (or a joining worker) with another is refused before anything runs, in one line."""
    rc = _rc(tmp_path)
    check_run_config(rc)  # fills in the space's reference, as a run does
    key = {**rc.resume_key(), **stored}
    st.create_study("w", rc.storage, {st.KIND_ATTR: "search", "settings": key}, key)
    with pytest.raises(StorageError, match="was created with") as e:
        run_search(_rc(tmp_path, **now), Hooks())
    k = next(iter(stored))
    assert f"{k}={stored[k]!r}" in str(e.value) and "\n" not in str(e.value)
    assert len(st.load_study("w", rc.storage)) == 0  # nothing ran


def test_the_parents_summary_reads_hold_the_host_lock(tmp_path, monkeypatch):
    """The run's progress reads (every trial with one worker, every 2 s with --jobs) hold the lock
    shared: a study read never runs beside a worker's timing (issue 12.2)."""
    from evit_search import hostlock

    held, reads = [0], []
    monkeypatch.setattr(hostlock, "recorder", lambda event, label, _t: held.__setitem__(
        0, held[0] + (event == "shared-acquired") - (event == "shared-released")))
    real_summary = st.StudyStore.summary
    monkeypatch.setattr(st.StudyStore, "summary", lambda self: reads.append(held[0] > 0) or real_summary(self))

    def two_outcomes(self, n_trials, deadline, on_trial=None, stop=None, remaining=None):  # trials: tested elsewhere
        for _ in range(2):
            on_trial({"status": "invalid", "reason": "scripted"})
        return 0

    monkeypatch.setattr(Worker, "run", two_outcomes)
    run_search(_rc(tmp_path, paper_models=False), Hooks())
    assert reads == [True, True, True]  # after each trial and once at the end


# what tells the stale checkpoint from the run's own, per case: nothing else differs
STALE = {"study": {"study_uid"}, "storage": {"storage", "study_uid"}, "subset": {"per_class", "data_fingerprint"}}


@pytest.mark.parametrize("case", list(STALE))
def test_a_stale_checkpoint_is_never_reused(tmp_path, case):
    """Trial 0 trained, then the same folder (same runs dir, study name, trial and architecture)
    trained for a study of the same name made anew in the same storage, for one in another storage,
    or for the same study on another data subset: the stale checkpoint is set aside, never resumed
    from, and the run trains afresh on its own data."""
    import optuna
    import torch

    from efficientvit import EfficientViTConfig

    runs = str(tmp_path / "runs")
    first = run_search(_rc(tmp_path, runs_dir=runs), Hooks())
    r0 = first.store.records()[0]
    assert r0.status == "ok", r0.reason
    (last,) = (tmp_path / "runs").rglob("last.pt")
    old_key = torch.load(last, weights_only=False)["key"]
    if case == "study":
        optuna.delete_study(study_name="w", storage=st.open_storage(first.store.url, create=False))
    rc = _rc(tmp_path, runs_dir=runs, **{"storage": {"storage": str(tmp_path / "b.db")}, "subset": {"per_class": 20},
                                         "study": {}}[case])
    worker = Worker(rc)
    store = st.load_study("w", rc.storage) if case == "subset" else open_run_study(rc, worker.space)
    res, _ = worker._train(EfficientViTConfig.from_dict(r0.config), store, r0.number, 0)
    assert res.status == "ok", res.reason
    assert last.with_suffix(".other.pt").is_file()  # set aside, not resumed from
    new_key = torch.load(last, weights_only=False)["key"]
    assert {k for k in old_key.keys() | new_key.keys() if old_key.get(k) != new_key.get(k)} == STALE[case]
    assert res.history[0]["seconds"] != r0.train["history"][0]["seconds"]  # trained, not read back
    if case == "subset":
        assert res.to_dict()["splits"]["train"] < r0.train["splits"]["train"]  # on its own, smaller subset


# --------------------------------------------------------------------------- several processes
# every trial is over a params limit no architecture of the tiny space meets: it is claimed (the
# step under test), counted and stored as infeasible in well under a second, never timed or trained
CHEAP = [a if a != "0.5x" else "params<0.001M" for a in BASE]
# each process imports everything, says it is ready, then waits for one file: all of them enter
# `run` within milliseconds, so creating the schema, the study and the claims race for real
BARRIER = """
import os, sys, time
from pathlib import Path
import evit_search.search.run, evit_search.storage  # the slow imports, before the barrier
from evit_search.cli import main
Path(sys.argv[1], str(os.getpid())).touch()
go = Path(sys.argv[1], "go")
while not go.exists():
    time.sleep(0.005)
sys.exit(main(sys.argv[2:]))
"""


def _start_together(args, tmp_path, n):
    """``n`` processes of ``evit-search *args`` released at one instant; (process, stdout, stderr)."""
    gate = tmp_path / "gate"
    gate.mkdir()
    procs = [subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", BARRIER, str(gate), *args], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(n)]
    def ready():
        return len(list(gate.iterdir())) >= n or any(p.poll() is not None for p in procs)

    assert _wait_for(ready, 300)
    (gate / "go").touch()
    return [(p, *p.communicate(timeout=300)) for p in procs]


def _distinct_archs(url, name, expected_new):
    study = st.load_study(name, url)
    recs = study.records()
    evaluated = [r.arch_id for r in recs if r.status not in ("duplicate", "invalid")]
    assert len(evaluated) == len(set(evaluated)), "an architecture was evaluated twice"
    assert len(evaluated) == expected_new  # each worker's --trials counts new architectures
    assert all(r.status == "infeasible" and r.reason == "over the params/FLOPs limit" for r in recs
               if r.status not in ("duplicate", "invalid"))
    assert not [r for r in recs if r.status == "running"]


def _race(url, tmp_path, name, n, trials=3):
    args = ["run", *CHEAP, "--trials", str(trials), "--storage", url, "--study", name, "--no-train-reference",
            "--no-paper-models"]
    outs = _start_together(args, tmp_path, n)
    for p, out, err in outs:
        assert p.returncode == 0, err[-2000:]
    assert len({r.attrs.get("pid") for r in st.load_study(name, url).records()}) == n  # each did trials
    _distinct_archs(url, name, trials * n)


@pytest.mark.parametrize("n", [2, 4])
def test_processes_started_at_once_on_sqlite(tmp_path, n):
    """A fresh SQLite file: every process races to create the schema and the study, then to claim
    architectures; none fails, none evaluates an architecture another did."""
    _race(f"sqlite:///{tmp_path / 'fresh.db'}", tmp_path, "race", n)


@pytest.mark.parametrize("n", [2, 4])
def test_processes_started_at_once_on_postgresql(postgres, tmp_path, n):  # noqa: F811
    """A fresh PostgreSQL database (no schema yet), the processes released together."""
    _race(postgres, tmp_path, "race", n)


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"  # a zombie is dead
    except FileNotFoundError:
        return False


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()]


def _timing_child(pid: int) -> int | None:
    """The measuring process under ``pid`` (or under one of its children), if one is running."""
    for p in [pid, *_children(pid)]:
        for c in _children(p):
            if "evit_search.measure.session" in Path(f"/proc/{c}/cmdline").read_bytes().decode(errors="ignore"):
                return c
    return None


def test_a_killed_search_leaves_nothing_behind(tmp_path):
    """kill -9 mid-measurement: the timing process dies with it (not at the end of its segment of
    8 s, when it would next write), a restart removes its folder, marks the trial interrupted and
    evaluates new architectures."""
    db = tmp_path / "s.db"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.Popen([sys.executable, "-m", "evit_search", "run", *BASE, "--trials", "3", "--storage", str(db),
                             "--study", "kill", "--no-train-reference", "--measure-seconds", "8"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    found = []
    assert _wait_for(lambda: found.append(_timing_child(proc.pid)) or found[-1] is not None, 600)
    time.sleep(6.0)  # past its imports, inside a segment: the timing process writes nothing for seconds
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _wait_for(lambda: not _running(found[-1]), 2)
    assert [d for d in tmp.glob("evit-measure-*") if d.name.startswith(f"evit-measure-{proc.pid}-")]  # left behind
    again = cli("run", *BASE, "--trials", "2", "--storage", str(db), "--study", "kill", "--no-train-reference",
                cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert not [d for d in tmp.glob("evit-measure-*") if d.name.startswith(f"evit-measure-{proc.pid}-")]
    recs = st.load_study("kill", str(db)).records()
    killed = [r for r in recs if r.attrs.get("pid") == proc.pid and r.status == "failed"]
    assert len(killed) == 1 and killed[0].reason.startswith("interrupted") and "measuring throughput" in killed[0].reason
    evaluated = [r.arch_id for r in recs if r.status in ("ok", "infeasible")]
    assert len(evaluated) == len(set(evaluated)) >= 2  # the restart's --trials 2: two new architectures


def test_killing_run_kills_its_jobs_workers_and_a_new_run_cleans_up(tmp_path):
    """kill -9 of ``run --jobs 2`` mid-measurement: both workers and their timing processes die
    with it (none trains on for a parent that is gone); the next ``run`` on the host removes their
    measurement folders at its start, before it measures anything."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.Popen(["nice", "-n", "19", sys.executable, "-m", "evit_search", "run", *BASE, "--trials", "4",
                             "--jobs", "2", "--storage", str(tmp_path / "s.db"), "--study", "k", "--no-train-reference",
                             "--no-paper-models", "--measure-seconds", "8"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    timing = []
    assert _wait_for(lambda: bool(timing.extend(c for w in _children(proc.pid) if (c := _timing_child(w))) or timing),
                     600)
    workers = [c for c in _children(proc.pid) if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text(errors="ignore")]
    assert len(workers) == 2  # (beside them, multiprocessing's resource tracker)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _wait_for(lambda: not any(_running(p) for p in [*workers, *timing]), 5)
    left = list(tmp.glob("evit-measure-*"))
    assert left  # a killed worker cannot remove its own folder
    # another study, all of it over a params limit: nothing is measured, so only the start cleans up
    again = cli("run", *CHEAP, "--trials", "1", "--storage", str(tmp_path / "s.db"), "--study", "k2",
                "--no-train-reference", "--no-paper-models", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert not [d for d in left if d.exists()]


def test_a_killed_worker_makes_the_run_fail(tmp_path):
    """One of two workers killed: the other goes on, the summary counts what is left, the run
    exits non-zero and says so."""
    db = tmp_path / "s.db"
    proc = subprocess.Popen([sys.executable, "-m", "evit_search", "run", *BASE, "--trials", "4", "--jobs", "2",
                             "--storage", str(db), "--study", "kill2", "--no-train-reference"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workers = []
    assert _wait_for(lambda: bool(workers.extend(w for w in _children(proc.pid) if _timing_child(w)) or workers), 600)
    os.kill(workers[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode != 0 and "worker(s) exited with an error" in err


def test_a_workers_user_error_is_one_line_and_the_run_fails(tmp_path):
    """A worker that meets a user's mistake says it in one line; the run exits non-zero."""
    db = tmp_path / "s.db"
    # the parent creates the study with one protocol; a worker cannot join with another
    ok = cli("run", *BASE, "--trials", "1", "--storage", str(db), "--study", "u", "--no-train-reference", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr[-2000:]
    bad = cli("run", *BASE, "--trials", "1", "--storage", str(db), "--study", "u", "--no-train-reference",
              "--budget", "0.6x", cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().count("\n") == 0 and "was created with budget='0.5x'" in bad.stderr


def test_a_jobs_workers_user_error_is_one_line_and_exit_2(tmp_path):
    """A ``--jobs`` worker that meets a user's mistake prints one line naming itself, no
    traceback, and exits 2 (which makes ``run`` fail: RunOutcome.shortfall)."""
    from dataclasses import asdict

    from evit_search.search.run import RunOutcome

    rc = asdict(_rc(tmp_path, prefilter="synflow:0.5", zerocost=False))
    code = f"from evit_search.search.engine import worker_entry; worker_entry({rc!r}, 1, None)"
    out = subprocess.run(["nice", "-n", "19", sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("evit-search run (worker ") and "needs the zero-cost scores" in line
    why = RunOutcome(None, None, 0, 0, False, [out.returncode]).shortfall(1)
    assert why.startswith("1 worker(s) exited with an error (exit codes [2])")


def test_no_timed_segment_overlaps_held_heavy_work(tmp_path, monkeypatch):
    """A trial (cost, measurement, training) and another trainer run side by side in this process;
    with a logical clock, every timed segment falls outside every interval of shared heavy work,
    and each heavy step of both took the lock."""
    import threading

    from evit_search import hostlock
    from evit_search.measure.session import run_session
    from evit_search.search import engine
    from evit_search.training.data import make_synthetic
    from evit_search.training.protocols import get_protocol
    from evit_search.training.trainer import train

    events, tick, mutex = [], [0], threading.Lock()

    def recorder(event, label, _t):
        with mutex:  # a logical clock: a strict order of events over threads
            tick[0] += 1
            events.append((tick[0], event, label))

    monkeypatch.setattr(hostlock, "recorder", recorder)
    # the measurement in this process (normally a worker process), so that its segments are seen
    monkeypatch.setattr(engine, "measure", lambda specs, backends, settings, reference=None, listener=None:
                        run_session(specs, backends, settings, reference))
    rc = _rc(tmp_path)
    worker = Worker(rc)
    open_run_study(rc, worker.space)
    other = threading.Thread(target=lambda: train(
        engine.efficientvit.get_config("efficientvit_m0").with_overrides(dim=(16, 32, 32), num_heads=2, key_dim=4,
                                                                         kernels=(3, 3, 3, 3)),
        make_synthetic(n_train=256, n_val=64), get_protocol("proxy-fast", epochs=3), threads=1,
        checkpoint_dir=tmp_path / "other"))
    other.start()
    out = worker.run_trial(worker.open())
    other.join()
    assert out["status"] == "ok", out
    shared, open_ = [], {}
    segments, seg_start = [], None
    for t, event, label in events:
        if event == "shared-acquired":
            open_.setdefault(label, []).append(t)
        elif event == "shared-released":
            shared.append((open_[label].pop(), t, label))
        elif event == "segment-start":
            seg_start = t
        elif event == "segment-end":
            segments.append((seg_start, t))
    assert len(segments) >= 6 and shared  # warm-up and two rounds of two models
    overlaps = [(s, lab) for s in segments for a, b, lab in shared if s[0] < b and a < s[1]]
    assert not overlaps, overlaps
    labels = {lab for _, _, lab in shared}
    for step in ("counting params and FLOPs", "loading and resizing data", "building the model", "training epoch 1",
                 "evaluating on the test split", "saving a checkpoint"):
        assert step in labels, (step, labels)


@pytest.mark.parametrize("first,second,calls,verdict", [
    ((1.30, 1.40), None, 1, "within"),  # clear at once: measured once
    ((0.45, 0.55), (0.52, 0.60), 2, "within"),  # straddled 0.5x, then clear with twice the rounds
    ((0.45, 0.55), (0.48, 0.53), 2, "borderline"),  # still straddling: stored as borderline
])
def test_a_candidate_whose_interval_contains_the_budget_is_measured_again(tmp_path, monkeypatch, first, second,
                                                                          calls, verdict):
    from evit_search.measure.records import ThroughputRecord
    from evit_search.search import engine

    seen = []

    def fake_measure(specs, backends, settings, reference=None, listener=None):
        lo, hi = first if not seen else second
        seen.append(settings.min_rounds)
        mid = (lo + hi) / 2
        rec = dict(backend="torch-cpu", status="ok", images_per_s=100 * mid, images_per_s_ci_low=100 * lo,
                   images_per_s_ci_high=100 * hi, ratio_to_reference=mid, ratio_ci_low=lo, ratio_ci_high=hi,
                   batch_size=16, ms_per_batch=16000 / (100 * mid), rounds=settings.min_rounds)
        return [ThroughputRecord(model="candidate", **rec),
                ThroughputRecord(model=specs[1].label, **{**rec, "ratio_to_reference": 1.0, "images_per_s": 100.0})]

    monkeypatch.setattr(engine, "measure", fake_measure)
    rc = _rc(tmp_path)
    worker = Worker(rc)
    open_run_study(rc, worker.space)
    out = worker.run_trial(worker.open())
    assert len(seen) == calls and (calls == 1 or seen[1] == 2 * rc.settings().max_rounds)
    rec = st.load_study("w", rc.storage).record(out["number"])
    assert rec.attrs["budget_verdict"] == verdict and ("first_throughput" in rec.attrs) == (calls == 2)


def test_zero_cost_scores_are_stored_and_the_prefilter_screens_without_training(tmp_path):
    from evit_search.search.prefilter import Prefilter

    rc = _rc(tmp_path, prefilter="synflow:0.5")
    worker = Worker(rc)
    store = open_run_study(rc, worker.space)
    for i in range(2):  # two feasible candidates scored before, both far better than anything real
        t = store.ask()
        t.set("arch_id", f"earlier-{i}")
        t.set("zerocost", {"scores": {"synflow": 1e300}, "seconds": {}, "settings": {}, "status": "ok"})
        t.finish("ok", values=[50.0, 1.0])
    worker.prefilter = Prefilter("synflow", 0.5, min_history=2)
    store.enqueue(_params({}), once=False)
    out = worker.run_trial(worker.open())
    rec = store.record(out["number"])
    assert rec.status == "screened", rec.reason
    assert rec.accuracy is None and rec.train is None and rec.ratio is not None and rec.feasible is True
    assert "zero-cost synflow" in rec.reason and "worst 50 %" in rec.reason
    assert set(rec.attrs["zerocost"]["scores"]) == {"synflow", "snip", "grad_norm", "naswot"}
    assert rec.attrs["prefilter"] == {"rule": "synflow:0.5", "value": rec.attrs["zerocost"]["scores"]["synflow"],
                                      "threshold": 1e300, "history": 2, "screened": True}


def test_prefilter_needs_the_scores(tmp_path):
    with pytest.raises(Exception, match="--prefilter=synflow:0.5 needs the zero-cost scores"):
        Worker(_rc(tmp_path, prefilter="synflow:0.5", zerocost=False))


def test_two_urls_for_one_postgresql_database_share_identity_and_lock(postgres):  # noqa: F811
    """Another host name, a (trust-ignored) password and a query string reach the same database:
    one storage identity (checkpoints, runs folder) and one lock; another database gets its own."""
    import threading

    import sqlalchemy

    from evit_search.storage import urls

    port = postgres.rsplit(":", 1)[1].split("/")[0]
    other = f"postgresql+psycopg2://postgres:secret@localhost:{port}/evit?application_name=w"
    engine = sqlalchemy.create_engine(postgres, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text("CREATE DATABASE evit2"))
    engine.dispose()
    second_db = postgres.rsplit("/", 1)[0] + "/evit2"
    assert st.storage_identity(postgres) == st.storage_identity(other) != st.storage_identity(second_db)
    urls._SERVER_IDS.clear()  # the lock asks the server itself, not a cache filled above
    got = threading.Event()

    def take(url):
        with st.storage_lock(url):
            got.set()

    with st.storage_lock(postgres):
        t = threading.Thread(target=take, args=(other,))
        t.start()
        assert not got.wait(1.5)  # the same database's lock, through another URL: it waits
        with st.storage_lock(second_db):  # another database's lock is another lock
            pass
    assert got.wait(10)
    t.join()
