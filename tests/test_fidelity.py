"""Successive halving: rung fractions, non-dominated promotion on constructed numbers."""

import pytest

from evit_search.search.fidelity import Point, fractions, nondominated_fronts, promotable, top_fraction


def test_rungs_are_fractions_of_the_training():
    assert fractions(3) == pytest.approx([1 / 9, 1 / 3, 1.0])
    assert fractions(2) == pytest.approx([0.25, 0.5, 1.0])


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


# --------------------------------------------------------------------------- with real trials
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from test_search import BASE, _wait_for, cli  # noqa: E402

from evit_search import storage as st  # noqa: E402

SH = ["--fidelity", "sh", "--eta", "2", "--no-train-reference", "--no-predict"]


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
            return any(s.get("promoting") for s in st.load_study("k", str(db)).rungs().values())
        except Exception:  # noqa: BLE001 - the study may not exist yet
            return False

    assert _wait_for(promoting, 600)
    before = {n: [dict(e) for e in s["rungs"]] for n, s in st.load_study("k", str(db)).rungs().items()}
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    out = cli("run", *args[1:], "--trials", "1", cwd=tmp_path)
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
