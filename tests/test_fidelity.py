"""Successive halving: rung fractions, non-dominated promotion on constructed numbers."""

import dataclasses

import pytest

from evit_search.errors import UserError
from evit_search.search.config import RunConfig, check_run_config
from evit_search.search.fidelity import (Point, finishing, fractions, nondominated_fronts, promotable, reserve_s,
                                         rung_count, top_fraction)


def test_rungs_are_fractions_of_the_training():
    assert fractions(3) == pytest.approx([1 / 9, 1 / 3, 1.0])
    assert fractions(2) == pytest.approx([0.25, 0.5, 1.0])


def test_no_rung_ends_inside_three_warm_ups():
    # the default CPU proxy: 1 epoch, warm-up 0.1 -> 1/9 would end at 1.1 warm-ups (ranked at chance, measured)
    assert rung_count(3, epochs=1, warmup_epochs=0.1) == 2
    assert rung_count(3, epochs=300, warmup_epochs=5) == 3  # the paper's schedule: 1/9 is 33 epochs
    assert rung_count(3, epochs=9, warmup_epochs=1) == 2 and rung_count(3, epochs=9, warmup_epochs=1 / 3) == 3
    assert rung_count(2, epochs=1, warmup_epochs=0.0) == 3  # no warm-up: every rung is past it
    assert rung_count(3, epochs=1, warmup_epochs=0.5) == 2  # never fewer than two rungs


def test_a_run_gets_the_protocols_rungs_unless_told():
    assert RunConfig(protocol="proxy", fidelity="sh").rung_fractions() == pytest.approx([1 / 3, 1.0])
    assert RunConfig(protocol="proxy", fidelity="sh", rungs=3).rung_fractions() == pytest.approx([1 / 9, 1 / 3, 1.0])
    assert RunConfig(protocol="paper", fidelity="sh").rung_fractions() == pytest.approx([1 / 9, 1 / 3, 1.0])
    assert RunConfig(protocol="proxy").rung_fractions() == [1.0]
    key = RunConfig(protocol="proxy", fidelity="sh", trials=1).resume_key()
    assert key["rungs"] == pytest.approx([1 / 3, 1.0])  # a resumed study keeps its rungs
    with pytest.raises(UserError, match="--rungs=1"):
        check_run_config(RunConfig(fidelity="sh", rungs=1, trials=1))


def test_fronts_are_non_dominated_layers():
    pts = [Point(0, 80, 1.0), Point(1, 85, 0.8), Point(2, 75, 1.5), Point(3, 70, 0.9), Point(4, 79, 0.95)]
    fronts = nondominated_fronts(pts)
    assert [[p.number for p in f] for f in fronts] == [[0, 1, 2], [4], [3]]


def test_promotion_picks_the_non_dominated_top_third():
    # nine candidates at rung 0: the first front has 3 points, exactly 9 // 3
    pts = [Point(0, 80, 1.0), Point(1, 85, 0.8), Point(2, 75, 1.5), Point(3, 70, 0.9), Point(4, 79, 0.95),
           Point(5, 60, 1.4), Point(6, 74, 1.2), Point(7, 78, 0.7), Point(8, 65, 1.0)]
    assert sorted(top_fraction(pts, 3)) == [0, 1, 2]
    assert promotable({0: pts}, {}, 3, top=2) == [(0, 1), (1, 1), (2, 1)]
    assert promotable({0: pts}, {0: {0, 1}}, 3, top=2) == [(2, 1)]  # promoted once only


def test_a_larger_front_is_cut_by_crowding_distance():
    # five mutually non-dominated points, room for two: the two ends of the front
    pts = [Point(i, 70 + i, 2.0 - 0.1 * i) for i in range(5)]
    assert sorted(top_fraction(pts, 2)) == [0, 4]


def test_fewer_than_eta_candidates_promote_nobody_and_the_top_rung_is_final():
    pts = [Point(0, 80, 1.0), Point(1, 85, 0.8)]
    assert promotable({0: pts}, {}, 3, top=2) == []
    many = [Point(i, 60 + i, 1.0) for i in range(9)]
    assert promotable({2: many}, {}, 3, top=2) == []  # nothing above the top rung


def test_finishing_promotes_the_highest_rungs_best_until_one_is_at_the_top():
    # two at rung 0 with eta 3: plain ASHA promotes 2 // 3 = 0, the run would end with no front
    two = [Point(0, 80, 1.0), Point(1, 85, 0.8)]
    assert promotable({0: two}, {}, 3, top=2) == []
    assert finishing({0: two}, {}, 3, top=2) == [(1, 1)]  # the front's most accurate end
    assert finishing({0: two}, {0: {1}}, 3, top=2) == []  # already being promoted: nothing twice
    # the highest rung first: the candidate at rung 1 is the cheapest to finish, rung 0 waits
    assert finishing({0: two, 1: [Point(0, 82, 1.0)]}, {0: {0}}, 3, top=2) == [(0, 2)]
    # a rung with eta^2 candidates promotes its plain top 1/eta, no fewer
    nine = [Point(i, 60 + i, 2.0 - 0.1 * i) for i in range(9)]
    assert sorted(finishing({0: nine}, {}, 3, top=2)) == sorted(promotable({0: nine}, {}, 3, top=2))
    # once a candidate is at the top rung, the relaxation is over
    assert finishing({0: two, 2: [Point(5, 81, 1.1)]}, {}, 3, top=2) == []
    assert finishing({}, {}, 3, top=2) == []


def test_the_reserve_is_one_trial_plus_carrying_one_candidate_to_the_top():
    fr = fractions(3)  # 1/9, 1/3, 1
    rung0 = {"rungs": [{"rung": 0, "seconds": 10.0}]}  # 10 s for 1/9: 90 s per whole training
    assert reserve_s({}, fr, 15.0) == 0.0  # nothing at rung 0: nothing to finish yet
    assert reserve_s({0: rung0, 1: rung0}, fr, 15.0) == pytest.approx(15.0 + 90.0 * 8 / 9)
    # a promotion's seconds are the part it added (1/3 - 1/9 of the training): the same rate
    at1 = {"rungs": [{"rung": 0, "seconds": 10.0}, {"rung": 1, "seconds": 20.0}]}
    assert reserve_s({0: rung0, 1: at1}, fr, None) == pytest.approx(90.0 * 2 / 3)
    top = {"rungs": at1["rungs"] + [{"rung": 2, "seconds": 60.0}]}
    assert reserve_s({0: rung0, 1: top}, fr, 15.0) == 0.0  # finished: trials until the time is up


# --------------------------------------------------------------------------- the finishing rule in the engine
def _fake_engine(monkeypatch, worker, spent: list[float] | None = None, measure_s: float = 5.0, full_s: float = 90.0):
    """Measuring and training stand-ins for the engine (no timing, no training): every
    architecture 0.6-1.0x the reference, its accuracy from its id; each call adds its cost in
    seconds to ``spent`` (the clock of a time-limited run) and reports it as wall time."""
    from types import SimpleNamespace

    import efficientvit
    from evit_search.measure.records import ThroughputRecord
    from evit_search.search import engine
    from evit_search.training.trainer import TrainResult

    spent = spent if spent is not None else [0.0]

    def fake_measure(specs, backends, settings, reference=None, listener=None):
        spent[0] += measure_s
        ratio = 0.6 + int(efficientvit.EfficientViTConfig.from_dict(specs[0].config).arch_id()[:4], 16) % 40 / 100
        rec = dict(backend="torch-cpu", status="ok", images_per_s=100 * ratio, images_per_s_ci_low=100 * ratio,
                   images_per_s_ci_high=100 * ratio, ratio_to_reference=ratio, ratio_ci_low=ratio, ratio_ci_high=ratio,
                   batch_size=16, ms_per_batch=16000 / (100 * ratio), rounds=2)
        return [ThroughputRecord(model="candidate", **rec),
                ThroughputRecord(model=specs[1].label, **{**rec, "ratio_to_reference": 1.0, "images_per_s": 100.0})]

    done: dict[str, float] = {}

    def fake_train(cfg, data, protocol, **kw):
        key = cfg.arch_id()
        added = kw["until"] - done.get(key, 0.0)
        done[key] = kw["until"]
        spent[0] += full_s * added
        top1 = 50.0 + int(key[:4], 16) % 30 + 10 * kw["until"]
        return TrainResult(status="ok", top1=top1, fraction=kw["until"], history=[{"epoch": kw["until"]}],
                           wall_s=full_s * added)

    monkeypatch.setattr(engine, "measure", fake_measure)
    monkeypatch.setattr(engine, "train", fake_train)
    monkeypatch.setattr(engine, "save_model", lambda path, *a, **k: path)
    fake_data = SimpleNamespace(class_names=None, fingerprint=lambda: "fake-data")
    monkeypatch.setattr(worker, "data", lambda: (fake_data, None))
    return spent


def _sh_worker(tmp_path, monkeypatch, **kw):
    from evit_search.search import engine
    from evit_search.search.config import RunConfig
    from evit_search.search.run import open_run_study

    rc = RunConfig(space="tiny", data="synthetic", protocol="proxy-fast", budget="0.5x", sampler="random",
                   fidelity="sh", eta=3, rungs=3, storage=str(tmp_path / "s.db"), study="f", runs_dir=str(tmp_path / "runs"),
                   zerocost=False, predict=False, train_reference=False, paper_models=False, **kw)
    worker = engine.Worker(rc)
    open_run_study(rc, worker.space)
    return worker


def test_the_engine_relaxes_promotion_only_once_sampling_has_ended(tmp_path, monkeypatch):
    """Two candidates at rung 0, eta 3: while the run may still sample (trials left, or time left
    beyond the reserve) nothing is promoted; once it may not, the most accurate non-dominated
    one is, and past the time limit only that finishing promotion is."""
    worker = _sh_worker(tmp_path, monkeypatch, trials=2)
    store = worker.open()
    for n, (acc, ratio) in enumerate([(80.0, 1.0), (85.0, 0.8)]):
        t = store.ask()
        t.finish("ok", values=[acc, ratio], constraints={"throughput_ratio": -0.1})
        store.record_rung(t.number, {"rung": 0, "fraction": 1 / 9, "top1": acc, "seconds": 10.0})
    assert worker._next_promotion(store, trials_over=False, left=None) == (None, False)
    assert worker._next_promotion(store, trials_over=False, left=1000.0) == (None, False)  # reserve ~80 s
    job, no_new = worker._next_promotion(store, trials_over=False, left=50.0)
    assert job == (1, 1) and no_new
    store.release_promotion(1)
    assert worker._next_promotion(store, trials_over=True, left=None) == ((1, 1), True)
    store.release_promotion(1)
    assert worker._next_promotion(store, trials_over=False, left=-5.0) == ((1, 1), True)


def test_the_benchmark_measures_what_the_model_skipped(tmp_path, monkeypatch):
    """The audit after the sh+predict arm measures every predicted-infeasible candidate and counts
    those that meet the budget, with the benchmark's own settings (no trial count, no timeout)."""
    import time
    from dataclasses import replace

    import efficientvit
    from evit_search.hooks import Hooks
    from evit_search.reproduce.search_bench import Arm, audit, closest_skip

    worker = _sh_worker(tmp_path, monkeypatch, trials=1)
    _fake_engine(monkeypatch, worker)  # ratios 0.6-1.0x from the architecture's id
    store = worker.open()
    cfgs = [efficientvit.get_config(m) for m in ("efficientvit_m0", "efficientvit_m1", "efficientvit_m2")]
    for cfg in cfgs:
        t = store.ask()
        t.set("config", cfg.to_dict())
        t.finish("predicted-infeasible", reason="predicted below", constraints={"throughput_ratio": 0.1})
    ratios = [0.6 + int(c.arch_id()[:4], 16) % 40 / 100 for c in cfgs]
    arm = Arm("sh+predict", store, time.time(), time.time(), 1.0)
    audit(arm, replace(worker.rc, trials=None, timeout=None), Hooks())
    assert arm.skipped_checked == 3 and arm.skipped_feasible == sum(r >= 0.5 for r in ratios) == 3
    # each skipped one's measured ratio is kept (the report names the closest call; --report-only reads it back)
    assert [a["measured"] for a in arm.audited] == pytest.approx(ratios, abs=1e-9)
    best = max(range(3), key=lambda i: ratios[i])
    assert closest_skip(arm.audited) == f"#{arm.audited[best]['number']}: measured {ratios[best]:.2f}x"
    assert closest_skip([]) is None and closest_skip(None) is None
    audit(arm, replace(worker.rc, budget="0.9x", trials=None, timeout=None), Hooks())
    assert arm.skipped_feasible == sum(r >= 0.9 for r in ratios)


def test_with_little_time_left_a_plain_promotion_runs_only_if_it_fits(tmp_path, monkeypatch):
    """A candidate (3) is at the top already (nothing to finish); six at rung 0 make their top two
    due, 3 and 0, and 0's promotion costs 2/9 of a 90 s training: 20 s. With 15 s left it is not
    started."""
    worker = _sh_worker(tmp_path, monkeypatch, trials=2)
    store = worker.open()
    for acc, ratio in [(80.0, 1.0), (85.0, 0.8), (70.0, 0.7), (90.0, 0.9), (60.0, 0.6), (65.0, 0.65)]:
        t = store.ask()
        t.finish("ok", values=[acc, ratio], constraints={"throughput_ratio": -0.1})
        store.record_rung(t.number, {"rung": 0, "fraction": 1 / 9, "top1": acc, "seconds": 10.0})
    for rung, secs in ((1, 20.0), (2, 60.0)):
        store.record_rung(3, {"rung": rung, "fraction": fractions(3)[rung], "top1": 90.0, "seconds": secs})
    assert worker._next_promotion(store, trials_over=True, left=15.0) == (None, True)
    job, _ = worker._next_promotion(store, trials_over=True, left=25.0)
    assert job == (0, 1)


def test_a_short_sh_run_by_trial_count_ends_with_a_fully_trained_front(tmp_path, monkeypatch):
    """Two trials with eta 3: plain ASHA promotes nobody (2 // 3 = 0) and the front is empty; the
    run finishes it: one candidate trained to the top rung, from its rung's checkpoint."""
    worker = _sh_worker(tmp_path, monkeypatch, trials=2)
    _fake_engine(monkeypatch, worker)
    assert worker.run(2, None) == 2
    store = st.load_study("f", worker.rc.storage)
    states = store.rungs()
    assert sorted(len(s["rungs"]) for s in states.values()) == [1, 3], states  # one finished, one left at rung 0
    front = store.summary().front
    assert len(front) == 1 and front[0].rung == 2 and front[0].fidelity == 1.0
    at0 = [Point(r.number, r.rungs[0]["top1"], r.ratio) for r in store.records() if r.rungs]
    assert front[0].number == max(nondominated_fronts(at0)[0], key=lambda p: p.accuracy).number


def test_a_time_limited_sh_run_keeps_the_reserve_and_ends_with_a_fully_trained_front(tmp_path, monkeypatch):
    """100 s of (fake) time, 5 s to measure and 90 s to train a candidate in full: sampling
    until the time is up leaves six candidates at rung 0, two at rung 1 and nobody at the top;
    keeping the reserve (one trial and 8/9 of a training) stops sampling in time to finish one,
    overrunning by at most that one candidate's training past rung 0."""
    worker = _sh_worker(tmp_path, monkeypatch, timeout=3600.0)
    spent = _fake_engine(monkeypatch, worker)
    worker.run(None, None, remaining=lambda: 100.0 - spent[0])
    store = st.load_study("f", worker.rc.storage)
    front = store.summary().front
    assert front and all(r.rung == 2 for r in front), [(r.number, r.rung) for r in store.records()]
    assert spent[0] <= 100.0 + 90.0 * 8 / 9 and len(store.rungs()) >= 2

import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from test_search import BASE, _wait_for, cli  # noqa: E402

from evit_search import storage as st  # noqa: E402

SH = ["--fidelity", "sh", "--eta", "2", "--rungs", "3", "--no-train-reference", "--no-predict"]


def _check_rungs(url, name):
    """Every promotion trained once: each (trial, rung) in the log once, rungs reached in order,
    the front only fully trained candidates."""
    store = st.load_study(name, url)
    states = store.rungs()
    assert states, "no rung was recorded"
    for number, state in states.items():
        log = [(e["rung"]) for e in state.get("log", [])]
        assert len(log) == len(set(log)), (number, log)  # no double promotion
        assert sorted(e["rung"] for e in state["rungs"]) == list(range(len(state["rungs"])))
        assert not state.get("promoting")
    promoted = [n for n, s in states.items() if len(s["rungs"]) > 1]
    assert promoted, states
    s = store.summary()
    assert s.front and all(r.fidelity == 1.0 and r.rung == 2 for r in s.front)
    return store


@pytest.mark.slow
def test_two_workers_promote_asynchronously_without_double_promotion(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    out = cli("run", *BASE, *SH, "--trials", "6", "--jobs", "2", "--storage", url, "--study", "sh", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    store = _check_rungs(url, "sh")
    out = cli("show", "sh", "--storage", url, "--csv", str(tmp_path / "t.csv"))
    assert out.returncode == 0, out.stderr
    import pandas as pd

    df = pd.read_csv(tmp_path / "t.csv")
    assert {"rung", "fidelity", "rungs", "predicted_ratio", "paper_model", "test_top1"} <= set(df.columns)
    top = df[df.rung == 2]
    assert len(top) and (top.fidelity == 1.0).all()
    assert store.summary().front


@pytest.mark.slow
def test_a_killed_promotion_resumes_from_its_rung_and_trains_nothing_twice(tmp_path):
    db = tmp_path / "s.db"
    args = ["run", *BASE, *SH, "--trials", "4", "--storage", str(db), "--study", "k"]
    proc = subprocess.Popen([sys.executable, "-m", "evit_search", *args], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)

    def promoting():
        if not db.exists():
            return False
        try:
            # a promotion claimed, or one done already: a fast promotion can start and end between two polls
            return any(s.get("promoting") or len(s["rungs"]) > 1 for s in st.load_study("k", str(db)).rungs().values())
        except Exception:  # noqa: BLE001 - the study may not exist yet
            return False

    assert _wait_for(promoting, 600)
    before = {n: [dict(e) for e in s["rungs"]] for n, s in st.load_study("k", str(db)).rungs().items()}
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # killed at the first claim: 2 candidates at rung 0 (eta 2 promotes 2 // 2 = 1). Two more make
    # 4 at rung 0 -> 2 at rung 1 -> 1 at the top rung, so the front is not empty whenever the kill
    # landed (with 1 more, 3 // 2 = 1 reaches rung 1 and 1 // 2 = 0 the top: no front, a flaky test)
    out = cli("run", *args[1:], "--trials", "2", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    store = _check_rungs(str(db), "k")
    after = store.rungs()
    for n, entries in before.items():  # rungs reached before the kill were not trained again
        assert [e for e in after[n]["rungs"] if e["rung"] < len(entries)] == entries


def test_hypervolume_of_a_front():
    from evit_search.reproduce.search_bench import hypervolume

    ref = (80.0, 1.25)
    assert hypervolume([], ref) == 0.0
    assert hypervolume([(85.0, 1.75)], ref) == pytest.approx(5.0 * 0.5)
    # two points: the union of their rectangles; a dominated or out-of-bounds point adds nothing
    two = hypervolume([(85.0, 1.75), (90.0, 1.5)], ref)
    assert two == pytest.approx(5.0 * 0.5 + 10.0 * 0.25 - 5.0 * 0.25)
    assert hypervolume([(85.0, 1.75), (90.0, 1.5), (84.0, 1.4), (95.0, 1.0)], ref) == pytest.approx(two)


@pytest.mark.slow
def test_search_benchmark_runs_three_arms_and_writes_its_report(tmp_path):
    out = cli("bench", "search", "--space", "tiny", "--data", "synthetic", "--protocol", "proxy-fast", "--budget", "0.5x",
              "--minutes", "0.3", "--train-threads", "1", "--reports", str(tmp_path), cwd=tmp_path, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    import pandas as pd

    df = pd.read_csv(next(tmp_path.glob("search-benchmark-*.csv")))
    assert list(df.arm) == ["full", "sh", "sh+predict"] and (df.sampled > 0).all() and (df.cpu_s > 0).all()
    assert {"feasible_after_warmup", "measured_after_warmup", "skipped_feasible"} <= set(df.columns)
    assert list(df.columns[-2:]) == ["steady_state_gain", "skipped_closest"]  # new keys go last; the old keep their order
    md = next(tmp_path.glob("search-benchmark-*.md")).read_text()
    aims = [line for line in md.splitlines() if line.startswith("- ") and line.endswith("**")]
    assert len(aims) == 5 and aims[0].startswith("- equal CPU time per arm"), aims
    assert all(line.endswith(("**met**", "**NOT met**", "**not judged**")) for line in aims)
    assert "## What the candidates-per-CPU-hour aim allows at this run's costs" in md
    # the report again from the stored arms: the same table, nothing run (given other flags, the run's own)
    (tmp_path / "again").mkdir()
    for f in tmp_path.glob("search-benchmark-*.*"):
        f.rename(tmp_path / "again" / f.name)
    out = cli("bench", "search", "--report-only", "--minutes", "99", "--budget", "2x", "--reports", str(tmp_path),
              cwd=tmp_path, timeout=300)  # without the run's --protocol: not its studies
    assert out.returncode == 2 and "no study of arm 'full'" in out.stderr and "--protocol" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    out = cli("bench", "search", "--report-only", "--protocol", "proxy-fast", "--minutes", "99", "--budget", "2x",
              "--reports", str(tmp_path), cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    again = pd.read_csv(next((tmp_path / "again").glob("search-benchmark-*.csv")))
    pd.testing.assert_frame_equal(pd.read_csv(next(tmp_path.glob("search-benchmark-*.csv"))), again)
    assert "0.3 CPU min per arm" in next(tmp_path.glob("search-benchmark-*.md")).read_text()


def test_search_benchmark_can_leave_the_paper_models_out():
    from evit_search.cli import build_parser
    from evit_search.cli.reproduce_cmd import search_bench_config, search_bench_name

    parse = build_parser().parse_args
    default = parse(["bench", "search"])
    assert search_bench_config(default).paper_models is True  # as `run` does
    sampled = parse(["bench", "search", "--no-paper-models", "--seed", "3"])
    rc = search_bench_config(sampled)
    assert rc.paper_models is False and rc.seed == 3 and rc.budget == "1.25x"
    assert search_bench_name(default) == "search-benchmark" != search_bench_name(sampled)  # its own studies
    assert search_bench_name(sampled) == "search-benchmark-sampled-only-seed3"  # a replicate beside seed 0's
    longer = parse(["bench", "search", "--no-paper-models", "--epochs", "3"])
    assert search_bench_config(longer).epochs == 3
    assert search_bench_name(longer) == "search-benchmark-sampled-only-3ep"  # other rungs: not seed 0's studies
    assert search_bench_name(parse(["bench", "search", "--protocol", "cpu-long"])) == "search-benchmark-cpu-long"
    assert search_bench_name(parse(["bench", "search", "--epochs", "1"])) == "search-benchmark"  # proxy's own epochs
    with pytest.raises(UserError, match="--protocol='nope'"):  # refused before it names a folder
        search_bench_name(parse(["bench", "search", "--report-only", "--protocol", "nope"]))


# --------------------------------------------------------------------------- claims, without training
CLAIMER = r"""
import json, sys, time
from pathlib import Path
from evit_search import storage as st

url, name, out, go, release, n = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5]), int(sys.argv[6])
store = st.load_study(name, url)
slow_set = store.set_attr
def set_attr(key, value):  # a slow storage: a read-modify-write without the lock would interleave
    time.sleep(0.05)
    slow_set(key, value)
store.set_attr = set_attr
while not go.exists():
    time.sleep(0.01)
got = [k for k in range(n) if store.claim_promotion(k, 1)]
out.write_text(json.dumps(got))
while not release.exists():  # alive until both answered: a dead worker's claim is free to take again
    time.sleep(0.05)
"""


def test_two_processes_on_sqlite_never_claim_the_same_promotion(tmp_path):
    """Two workers race for the same promotions on one SQLite file: each (trial, rung) goes to
    exactly one of them, and a claim of a worker that died is free again."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    store = st.create_study("claims", url, {})
    n = 12
    for k in range(n):
        store.record_rung(k, {"rung": 0, "fraction": 0.25, "top1": 50.0 + k})
    go, release = tmp_path / "go", tmp_path / "release"
    outs = [tmp_path / f"out{i}.json" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, url, "claims", str(o), str(go), str(release), str(n)],
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}) for o in outs]
    try:
        go.touch()
        assert _wait_for(lambda: all(o.exists() for o in outs) or any(p.poll() for p in procs), 300)
        import json

        got = [set(json.loads(o.read_text())) for o in outs]
        assert not got[0] & got[1], got  # no double promotion
        assert got[0] | got[1] == set(range(n))
        assert all(store.rungs(k)["promoting"]["rung"] == 1 for k in range(n))
        assert not store.claim_promotion(0, 1)  # claimed and its worker alive: not this one's
    finally:
        release.touch()
        for p in procs:
            p.wait(timeout=120)
    assert all(p.returncode == 0 for p in procs)
    # both workers are gone: their claims are stale, the promotions free to take (a resumed run)
    assert all("promoting" not in store.rungs(k) for k in range(n))
    assert store.claim_promotion(0, 1) and not store.claim_promotion(0, 1)
    assert not store.claim_promotion(0, 0)  # a rung already reached is never trained again


# --------------------------------------------------------------------------- the search benchmark's aims
def _row(arm, cpu_s, new_per_h, minutes=10.0, **kw):
    return {"arm": arm, "cpu_s": cpu_s, "new_per_cpu_hour": new_per_h, "minutes": minutes, **kw}


def test_the_benchmark_gives_its_cpu_budget_as_wall_seconds_at_the_arms_cpu_rate():
    from evit_search.reproduce.search_bench import cpu_budget

    now = {"cpu": 100.0, "wall": 1000.0}
    left = cpu_budget(600.0, t0=1000.0, c0=100.0, cpu_s=lambda: now["cpu"], clock=lambda: now["wall"])
    assert left() == 600.0  # nothing spent, no rate yet: the CPU seconds as they are
    now.update(cpu=400.0, wall=1150.0)  # 300 CPU s in 150 s: two cores busy
    assert left() == pytest.approx(300.0 / 2.0)
    now.update(cpu=750.0, wall=1400.0)
    assert left() < 0  # spent: the run starts nothing new


def test_the_benchmark_judges_each_aim_met_or_not():
    from evit_search.reproduce.search_bench import aims

    good = [_row("full", 600, 10.0), _row("sh", 610, 20.0),
            _row("sh+predict", 620, 31.0, feasible_after_warmup=0.85, measured_after_warmup=20, skipped_checked=4,
                 skipped_feasible=0)]
    curves = {"full": [(6.0, 1.0), (9.0, 2.0)], "sh": [], "sh+predict": [(2.0, 1.5), (4.5, 2.1)]}
    got = aims(good, curves, 600)
    assert [a.met for a in got] == [True, True, True, True, True], [a.line() for a in got]
    assert "31.0 vs 10.0" in got[1].measured and got[2].measured == "after 4.5 min"
    assert all(a.line().endswith("**met**") for a in got)

    bad = [_row("full", 600, 10.0), _row("sh", 610, 20.0),
           _row("sh+predict", 700, 29.0, feasible_after_warmup=0.75, measured_after_warmup=20, skipped_checked=4,
                skipped_feasible=1)]
    late = {"full": [(9.0, 2.0)], "sh+predict": [(2.0, 1.5), (5.5, 2.1)]}  # reached after half of full's 10 min
    got = aims(bad, late, 600)
    assert [a.met for a in got] == [False, False, False, False, False], [a.line() for a in got]
    assert "17 %" in got[0].measured and all(a.line().endswith("**NOT met**") for a in got)
    # nothing to judge on: said so, never 'met'
    empty = [_row("full", 600, None), _row("sh+predict", 600, 5.0, feasible_after_warmup=None)]
    assert [a.met for a in aims(empty, {}, 600)][1:] == [None, None, None, None]


def test_feasible_share_counts_only_what_was_measured_after_the_warm_up():
    from evit_search.reproduce.search_bench import feasible_share_after_warmup

    def rec(i, feasible, measured=True):
        return st.TrialRecord(number=i, state="complete", status="ok" if feasible else "infeasible",
                              feasible=feasible, throughput={"torch-cpu": {"ratio_to_reference": 1.0}} if measured else {})

    # the first 3 measured (one of them infeasible) are the warm-up; an unmeasured, skipped one does not count
    recs = [rec(0, False), rec(1, True), rec(2, True), rec(3, False, measured=False), rec(4, True), rec(5, False),
            rec(6, True), rec(7, True)]
    assert feasible_share_after_warmup(recs, warmup=3) == (0.75, 4)
    assert feasible_share_after_warmup(recs[:3], warmup=3) == (None, 0)


def test_halving_gives_a_feasible_candidate_its_share_of_a_training():
    from evit_search.reproduce.search_bench import halving_share

    assert halving_share([1 / 3, 1.0], 3) == pytest.approx(5 / 9)
    assert halving_share([1 / 9, 1 / 3, 1.0], 3) == pytest.approx(7 / 27)
    assert halving_share([1.0], 3) == 1.0  # one rung: every candidate trained in full


def _cost_arms(full_recs, sh_recs, other_recs, rungs=(1 / 3, 1.0)):
    from types import SimpleNamespace

    from evit_search.reproduce.search_bench import Arm

    def arm(name, recs, settings):
        return Arm(name, SimpleNamespace(records=lambda: recs, attrs={"settings": settings}), 0.0, 1.0, 1.0)

    return [arm("full", full_recs, {"rungs": None, "eta": None}), arm("sh", sh_recs, {"rungs": list(rungs), "eta": 3}),
            arm("sh+predict", other_recs, {"rungs": list(rungs), "eta": 3})]


def _cost_rec(i, status, duration, cpu=None, paper=None):
    measured = status in ("ok", "infeasible")
    return st.TrialRecord(number=i, state="complete", status=status, duration_s=duration, paper_model=paper,
                          feasible={"ok": True, "infeasible": False}.get(status),
                          throughput={"torch-cpu": {"ratio_to_reference": 1.0}} if measured else {},
                          train={"cpu_s": cpu} if cpu else None)


def test_the_benchmark_reads_its_steady_state_from_its_own_costs():
    """Sampled candidates: m = 27 s to measure, T = 144 CPU s to train, half of those full and sh
    measured infeasible, rungs 1/3 and 1 (k = 5/9), a skip 1 s: full 27 + 72 = 99 s a candidate,
    sh 27 + 40 = 67 s, sh+predict 0.5 + 0.5 (27 + 80) = 54 s; 3x needs q where
    27 + (1-q)144 = 3 (q + (1-q)107): q = 150/174. The paper's models count nowhere."""
    from evit_search.reproduce.search_bench import cost_lines, costs

    paper = [_cost_rec(10, "ok", 90.0, cpu=60.0, paper="efficientvit_m0"),
             _cost_rec(11, "infeasible", 60.0, paper="efficientvit_m5")]
    full = paper + [_cost_rec(0, "ok", 170.0, cpu=140.0), _cost_rec(1, "ok", 175.0, cpu=148.0),
                    _cost_rec(2, "infeasible", 26.0)]
    sh = paper + [_cost_rec(3, "infeasible", 28.0)]
    other = paper + [_cost_rec(4, "infeasible", 27.0), _cost_rec(5, "predicted-infeasible", 1.0),
                     _cost_rec(6, "invalid", 0.1)]
    c = costs(_cost_arms(full, sh, other))
    assert (c.measure_s, c.measured_n, c.train_cpu_s, c.trained_n) == (27.0, 3, 144.0, 2)
    assert (c.infeasible, c.infeasible_n, c.skip_s) == (0.5, 4, 1.0)
    assert c.halving == pytest.approx(5 / 9)
    assert c.per_candidate("full") == pytest.approx(99.0) and c.per_candidate("sh") == pytest.approx(67.0)
    assert c.per_candidate("sh+predict") == pytest.approx(0.5 + 0.5 * (27 + 80))
    assert c.gain("full") == 1.0 and c.gain("sh+predict") == pytest.approx(99 / 54)
    assert c.gain("sh+predict") < max(1 / c.halving, 1 / (1 - c.infeasible))
    assert c.infeasible_share_for(3.0) == pytest.approx(150 / 174, abs=1e-9)
    assert c.gain("sh+predict", c.infeasible_share_for(3.0)) == pytest.approx(3.0, abs=1e-6)
    assert c.infeasible_share_for(1.0) == 0.0 and c.infeasible_share_for(1e6) is None
    lines = cost_lines(c, [_row("full", 600, 30.0), _row("sh", 600, 45.0), _row("sh+predict", 600, 60.0)])
    assert "k = 0.56" in lines[0] and "rungs 1/3, 1" in lines[0] and "s = 1.0 s" in lines[0]
    assert "sh+predict 1.83x (measured 2.00x)" in lines[1] and "q >= 0.86" in lines[2]
    # nothing skipped: s is assumed, and said to be
    c = costs(_cost_arms(full, sh, paper + [_cost_rec(4, "infeasible", 27.0)]))
    assert c.skip_s is None and c.per_candidate("sh+predict") == pytest.approx(54.0)
    assert "none was skipped (s = 1 s assumed)" in cost_lines(c, [])[0]
    # a part missing (no sampled candidate fully trained in full): not computed, and said so
    assert costs(_cost_arms(paper + full[4:], sh, other)) is None and cost_lines(None, [])[0].startswith("Not computed")


def test_the_share_needed_is_right_when_the_gain_falls_with_it():
    """Skipping dearer than m (m + kT) / (m + T): the gain falls as q grows, and q = 0 is the answer."""
    from evit_search.reproduce.search_bench import Costs, cost_lines

    c = Costs(10.0, 1, 600.0, 1, 0.5, 4, 8.0, (1 / 9, 1 / 3, 1.0), 3)
    assert c.gain("sh+predict", 0.0) > 3.0 > c.gain("sh+predict", 0.999)
    assert c.infeasible_share_for(3.0) == 0.0
    line = cost_lines(c, [])[2]
    assert line.endswith(f"holds even with no infeasible candidate (q = 0: sh+predict {c.gain('sh+predict', 0.0):.2f}x).")
    mostly = dataclasses.replace(c, infeasible=0.99)  # the gain falls with q: below 3x at this q
    assert mostly.gain("sh+predict") < 3.0 and mostly.infeasible_share_for(3.0) == 0.0
    assert f"but not at this run's q ({mostly.gain('sh+predict'):.2f}x)" in cost_lines(mostly, [])[2]
    cheap = Costs(5.0, 1, 10.0, 1, 0.5, 4, 2.0, (1 / 3, 1.0), 3)  # as q -> 1 the gain tends to m/s = 2.5
    assert cheap.infeasible_share_for(3.0) is None
    assert "m/s = 2.5x" in cost_lines(cheap, [])[2]


def test_a_benchmark_report_is_rewritten_from_its_stored_arms(tmp_path):
    """Each arm keeps its clock, CPU seconds and audit in its study; --report-only reads them back,
    and names what is missing in one line when the run never stored them."""
    from evit_search.errors import UserError
    from evit_search.reproduce.search_bench import ARMS, Arm, load_arms

    folder = tmp_path / "runs"
    folder.mkdir()
    with pytest.raises(UserError, match="no study of arm 'full'"):
        load_arms(folder)
    stores = {}
    for i, name in enumerate(ARMS):
        stores[name] = st.create_study(f"bench-{name}", f"sqlite:///{folder / f'{name}.db'}", {})
        if name != "sh+predict":
            Arm(name, stores[name], 100.0 * i, 100.0 * i + 60, 55.0 + i, minutes=1.0).save()
    with pytest.raises(UserError, match="'sh\\+predict'.*no stored summary"):
        load_arms(folder)
    audited = [{"number": 7, "predicted": 1.02, "measured": 1.0}, {"number": 9, "predicted": 0.5, "measured": None}]
    Arm("sh+predict", stores["sh+predict"], 200.0, 262.0, 58.0, skipped_feasible=0, skipped_checked=4, minutes=1.0,
        audited=audited).save()
    arms = load_arms(folder)
    assert [a.name for a in arms] == list(ARMS) and [a.cpu_s for a in arms] == [55.0, 56.0, 58.0]
    assert (arms[2].started, arms[2].ended, arms[2].skipped_checked, arms[2].skipped_feasible) == (200.0, 262.0, 4, 0)
    assert arms[2].audited == audited and arms[0].audited is None  # none stored: an arm without a predictor
    assert all(a.minutes == 1.0 for a in arms)
    Arm("sh", stores["sh"], 100.0, 160.0, 56.0, minutes=1.0, run=5.0).save()  # an arm of another run
    with pytest.raises(UserError, match="different runs"):
        load_arms(folder)


@pytest.mark.slow
def test_a_run_stops_when_its_stop_condition_says_so(tmp_path):
    """The benchmark's CPU budget: a run whose stop condition holds evaluates nothing."""
    from evit_search.hooks import Hooks
    from evit_search.search.config import RunConfig
    from evit_search.search.run import run_search

    rc = RunConfig(space="tiny", data="synthetic", protocol="proxy-fast", budget="0.5x", sampler="random",
                   train_threads=1, train_reference=False, paper_models=False, storage=str(tmp_path / "s.db"),
                   study="stop", trials=1)
    out = run_search(rc, Hooks(), stop=lambda: True)
    assert out.evaluated == 0 and out.added == 0


def test_a_promotion_continues_its_rungs_run_and_is_claimed_once(tmp_path, monkeypatch):
    """The engine's side of 'continues from its rung checkpoint': every rung of a trial trains in
    one checkpoint folder under one run key, to the next rung's fraction (the trainer's side:
    test_train's test_a_rung_continues_exactly_where_it_stopped); the promotion is stored once and
    its claim cleared. The trainer is faked: no training here."""
    from types import SimpleNamespace

    import efficientvit
    from evit_search.search import engine
    from evit_search.search.config import RunConfig
    from evit_search.training.trainer import TrainResult

    calls = []

    def fake_train(cfg, data, protocol, **kw):
        calls.append(kw)
        return TrainResult(status="ok", top1=50.0 + 10 * len(calls), fraction=kw["until"],
                           history=[{"epoch": kw["until"]}], wall_s=1.0)

    monkeypatch.setattr(engine, "train", fake_train)
    monkeypatch.setattr(engine, "save_model", lambda path, *a, **k: path)
    rc = RunConfig(space="tiny", data="synthetic", protocol="proxy-fast", budget="0.5x", fidelity="sh", eta=3, rungs=3, trials=1,
                   storage=str(tmp_path / "s.db"), study="p", runs_dir=str(tmp_path / "runs"))
    worker = engine.Worker(rc)
    fake_data = SimpleNamespace(class_names=None, fingerprint=lambda: "fake-data")
    monkeypatch.setattr(worker, "data", lambda: (fake_data, None))
    store = st.create_study("p", rc.storage, {})
    t = store.ask()
    cfg = efficientvit.get_config("efficientvit_m0")
    t.set("config", cfg.to_dict())
    t.finish("ok", values=[50.0, 1.5], constraints={"throughput_ratio": -0.2})
    res, _ = worker._train(cfg, store, t.number, 0)
    store.record_rung(t.number, worker._rung_entry(0, res, store, None))
    for rung in (1, 2):
        assert store.claim_promotion(t.number, rung)
        out = worker._promote(store, t.number, rung)
        assert out["status"] == f"rung {rung}", out
    assert [c["until"] for c in calls] == pytest.approx([1 / 9, 1 / 3, 1.0])
    assert len({str(c["checkpoint_dir"]) for c in calls}) == 1 and all(c["run_key"] == calls[0]["run_key"] for c in calls)
    state = store.rungs(t.number)
    assert [e["rung"] for e in state["rungs"]] == [0, 1, 2] and [e["rung"] for e in state["log"]] == [0, 1, 2]
    assert "promoting" not in state and not store.claim_promotion(t.number, 2)
    rec = store.record(t.number)
    assert (rec.rung, rec.fidelity, rec.accuracy) == (2, 1.0, 80.0)
