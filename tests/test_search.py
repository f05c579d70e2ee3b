"""The search end to end on the tiny space: SQLite, resume after a kill, two workers, PostgreSQL."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from helpers import optuna_study

from evit_search import storage as st
from evit_search.stats import median_ci_coverage

pytestmark = pytest.mark.slow

BASE = ["--space", "tiny", "--data", "synthetic", "--protocol", "proxy-fast", "--budget", "0.5x",
        "--measure-seconds", "0.05", "--measure-rounds", "2", "--train-threads", "1", "--sampler", "random"]


def cli(*args, timeout=900, **kw):
    return subprocess.run([sys.executable, "-m", "evit_search", *args], capture_output=True, text=True,
                          timeout=timeout, **kw)


def check_trials(study, expected, url):
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == expected
    assert sorted(t.number for t in trials) == list(range(expected))  # none lost, none duplicated
    for t in trials:
        assert t.state != optuna.trial.TrialState.RUNNING
        status = t.user_attrs.get("status")
        assert status in {"ok", "infeasible", "invalid", "duplicate", "failed"}, (t.number, t.user_attrs)
        if status == "ok":
            acc, ratio = t.values
            assert 0 <= acc <= 100 and ratio > 0
            assert all(v <= 0 for v in t.user_attrs["constraints"].values())
            assert st.load_study(study.study_name, url).resolve_path(t.user_attrs["checkpoint"]).is_file()
        else:
            assert t.values is None  # never a made-up score
            assert t.user_attrs.get("reason")


def test_tiny_run_into_sqlite_show_report_export(tmp_path):
    db = tmp_path / "s.db"
    out = cli("run", *BASE, "--trials", "5", "--storage", str(db), "--study", "t1", "--runs-dir", str(tmp_path / "runs"),
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "feasible Pareto front" in out.stdout and "study t1" in out.stdout
    study = optuna_study("t1", str(db))
    check_trials(study, 5, str(db))
    assert study.user_attrs["reference_result"]["top1"] is not None
    recs = st.load_study("t1", str(db)).records()
    ok = [r for r in recs if r.status == "ok"]
    assert ok, [(r.status, r.reason) for r in recs]
    for r in recs:
        if r.status in ("ok", "infeasible"):
            thr = r.throughput["torch-cpu"]
            assert thr["images_per_s"] > 0 and thr["ratio_to_reference"] == pytest.approx(r.ratio)
            assert r.reference_throughput["torch-cpu"]["images_per_s"] > 0  # measured in the same session
    front = st.pareto_front(recs)
    assert front and all(r.status == "ok" for r in front)

    out = cli("show", "t1", "--storage", str(db), "--all", "--csv", str(tmp_path / "t.csv"), "--parquet", str(tmp_path / "t.parquet"))
    assert out.returncode == 0, out.stderr
    import pandas as pd

    assert len(pd.read_csv(tmp_path / "t.csv")) == 5 and len(pd.read_parquet(tmp_path / "t.parquet")) == 5
    out = cli("report", "t1", "--storage", str(db), "--reports", str(tmp_path / "rep"))
    assert out.returncode == 0, out.stderr
    assert next((tmp_path / "rep").glob("study-t1-*.png")).stat().st_size > 1000
    # the CSVs (show's and the report's) and the report's front table hold the study's numbers
    for path in (tmp_path / "t.csv", next((tmp_path / "rep").glob("study-t1-*.csv"))):
        df = pd.read_csv(path).set_index("number")
        for r in recs:
            got, thr = df.loc[r.number], r.throughput.get("torch-cpu") or {}
            assert got["status"] == r.status, (path, r.number)
            for col, want in (("accuracy", r.accuracy), ("ratio", r.ratio), ("torch-cpu_ratio", thr.get("ratio_to_reference")),
                              ("torch-cpu_images_per_s", thr.get("images_per_s")),
                              ("torch-cpu_ci_coverage", thr.get("ci_coverage")),
                              ("budget_verdict", r.budget_verdict)):
                assert (want is None and pd.isna(got[col])) or got[col] == pytest.approx(want, rel=1e-9), (path, r.number, col)
    md = next((tmp_path / "rep").glob("study-t1-*.md")).read_text()
    table = md.split("## Feasible Pareto front")[1].split("\n\n")[1].splitlines()
    head = [c.strip() for c in table[0].strip("|").split("|")]
    rows = {int(cells[0].split()[0]): dict(zip(head, cells))
            for cells in ([c.strip() for c in line.strip("|").split("|")] for line in table[2:])}
    assert sorted(rows) == sorted(r.number for r in front)
    for r in front:
        thr = r.throughput["torch-cpu"]
        assert rows[r.number]["ratio"] == f"{r.ratio:.3f}" and rows[r.number]["val top-1 %"] == f"{r.accuracy:.2f}"
        assert rows[r.number]["budget"] == r.budget_verdict
        # the interval with the real coverage of its rounds (--measure-rounds 2: from 50 %)
        assert rows[r.number]["ratio [CI]"] == (f"[{thr['ratio_ci_low']:.3f}, {thr['ratio_ci_high']:.3f}] "
                                                f"{100 * thr['ci_coverage']:.1f} % CI")
        assert thr["ci_coverage"] == pytest.approx(median_ci_coverage(thr["rounds"]))
    out = cli("export", "t1", str(front[0].number), "--storage", str(db), "--to", str(tmp_path / "exp"))
    assert out.returncode == 0, out.stderr
    import torch

    import efficientvit

    m = efficientvit.load_model(tmp_path / "exp" / f"trial-{front[0].number}.pt")
    assert m.config.num_classes == 4  # trained weights (synthetic has 4 classes), not the measured config
    import onnxruntime as ort

    sess = ort.InferenceSession(str(tmp_path / "exp" / f"trial-{front[0].number}.onnx"), providers=["CPUExecutionProvider"])
    x = torch.randn(3, 1, m.config.img_size, m.config.img_size)
    with torch.no_grad():
        assert abs(sess.run(None, {"input": x.numpy()})[0] - m(x).numpy()).max() < 1e-4


def test_also_measure_stores_every_backend_with_the_budget_one_first(tmp_path):
    db = tmp_path / "s.db"
    out = cli("run", *BASE, "--trials", "2", "--also-measure", "onnx-cpu,torch-cpu", "--storage", str(db),
              "--study", "am", "--runs-dir", str(tmp_path / "runs"), "--no-train-reference", cwd=tmp_path,
              env={**os.environ, "COLUMNS": "250"})  # the front table on one line per row
    assert out.returncode == 0, out.stderr[-3000:]
    assert "also measured on onnx-cpu" in out.stdout
    recs = [r for r in st.load_study("am", str(db)).records() if r.status in ("ok", "infeasible")]
    assert recs, out.stdout[-2000:]
    for r in recs:
        assert list(r.throughput) == ["torch-cpu", "onnx-cpu"] == list(r.reference_throughput)
        assert r.ratio == pytest.approx(r.throughput["torch-cpu"]["ratio_to_reference"])  # the budget's backend
        assert r.throughput["onnx-cpu"]["images_per_s"] > 0 and r.reference_throughput["onnx-cpu"]["images_per_s"] > 0
    if any(r.status == "ok" for r in recs):
        assert "onnx-cpu ratio" in out.stdout


def test_bad_input_is_one_line_and_loses_nothing(tmp_path):
    db = tmp_path / "s.db"
    for args, msg in [(["--budget", "fast"], "--budget: 'fast' is not a budget term"),
                      (["--space", str(tmp_path / "none.yaml")], "no such file"),
                      (["--sampler", "cmaes"], "--sampler 'cmaes' is not one of"),
                      (["--data", "mnist"], "--data='mnist' is not one of")]:
        out = cli("run", "--trials", "1", "--storage", str(db), *args)
        assert out.returncode == 2 and msg in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert not db.exists()  # nothing created for a mistake
    out = cli("show", "nope", "--storage", str(db))
    assert out.returncode == 2 and "no study database" in out.stderr


def _wait_for(pred, timeout):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.5)
    return False


def test_killed_run_resumes_with_completed_trials_intact(tmp_path):
    db = tmp_path / "s.db"
    args = ["run", *BASE, "--trials", "6", "--storage", str(db), "--study", "k", "--runs-dir", str(tmp_path / "runs"),
            "--no-train-reference"]
    proc = subprocess.Popen([sys.executable, "-m", "evit_search", *args], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)

    def finished():
        if not db.exists():
            return False
        try:
            s = optuna_study("k", str(db))
        except Exception:
            return False
        return len([t for t in s.get_trials(deepcopy=False) if t.state.is_finished()]) >= 2

    assert _wait_for(finished, 600)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {t.number: (t.state, t.values, t.user_attrs.get("arch_id"))
              for t in optuna_study("k", str(db)).get_trials(deepcopy=False) if t.state.is_finished()}
    out = cli("run", *args[1:], "--trials", "2", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    study = optuna_study("k", str(db))
    after = {t.number: (t.state, t.values, t.user_attrs.get("arch_id")) for t in study.get_trials(deepcopy=False)}
    for n, v in before.items():
        assert after[n] == v  # every completed trial intact
    assert all(t.state != optuna.trial.TrialState.RUNNING for t in study.get_trials(deepcopy=False))
    interrupted = [t for t in study.get_trials(deepcopy=False) if "interrupted" in (t.user_attrs.get("reason") or "")]
    assert len(after) >= len(before) + 2 and len(interrupted) <= 1


def _two_workers(url, tmp_path, name):
    out = cli("run", *BASE, "--trials", "6", "--jobs", "2", "--storage", url, "--study", name,
              "--runs-dir", str(tmp_path / "runs"), "--no-train-reference", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    study = optuna_study(name, url)
    check_trials(study, 6, url)
    hosts_pids = {t.user_attrs.get("pid") for t in study.get_trials(deepcopy=False)}
    assert len(hosts_pids) == 2  # both workers did trials
    archs = [t.user_attrs.get("arch_id") for t in study.get_trials(deepcopy=False)
             if t.user_attrs.get("status") in ("ok", "infeasible")]
    assert len(archs) == len(set(archs))  # no architecture evaluated twice


def test_two_workers_on_sqlite(tmp_path):
    _two_workers(f"sqlite:///{tmp_path / 's.db'}", tmp_path, "w2")


def test_journal_storage(tmp_path):
    out = cli("run", *BASE, "--trials", "2", "--storage", str(tmp_path / "s.journal"), "--study", "j",
              "--runs-dir", str(tmp_path / "runs"), "--no-train-reference", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "to acquire the lock file" not in out.stdout + out.stderr  # Optuna's journal lock never waits on ours
    check_trials(optuna_study("j", str(tmp_path / "s.journal")), 2, str(tmp_path / "s.journal"))


PGBIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None) if Path("/usr/lib/postgresql").exists() else None


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL server on loopback, started by the test."""
    if PGBIN is None or not (PGBIN / "initdb").exists():
        pytest.skip("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin) on this machine")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pytest.skip("psycopg2 is not installed (pip install 'evit-search[postgres]')")
    import tempfile

    # directly under /tmp: pytest's own temp folders are private to root, and initdb runs as postgres
    d = Path(tempfile.mkdtemp(prefix="evit-pg-", dir="/tmp"))
    run_as = []
    if os.geteuid() == 0:  # initdb refuses root
        if shutil.which("su") is None:
            pytest.skip("running as root without su: cannot start PostgreSQL as another user")
        shutil.chown(d, "postgres", "postgres")
        run_as = ["su", "postgres", "-c"]
    port = 55432 + os.getpid() % 1000

    def sh(cmd):
        full = run_as + [cmd] if run_as else ["bash", "-c", cmd]
        return subprocess.run(full, capture_output=True, text=True, timeout=120)

    r = sh(f"{PGBIN}/initdb -D {d}/data -A trust -U postgres --no-instructions")
    if r.returncode:
        pytest.skip(f"initdb failed: {r.stderr.strip()[:200]}")
    r = sh(f"{PGBIN}/pg_ctl -D {d}/data -l {d}/pg.log -o \"-c listen_addresses=127.0.0.1 -c port={port} "
           f"-c unix_socket_directories={d}\" -w start")
    if r.returncode:
        pytest.skip(f"PostgreSQL did not start: {r.stderr.strip()[:200]}")
    try:
        r = sh(f"{PGBIN}/createdb -h 127.0.0.1 -p {port} -U postgres evit")
        assert r.returncode == 0, r.stderr
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/evit"
    finally:
        sh(f"{PGBIN}/pg_ctl -D {d}/data -m fast -w stop")
        shutil.rmtree(d, ignore_errors=True)


def test_two_workers_on_postgresql(postgres, tmp_path):
    _two_workers(postgres, tmp_path, "pg2")


def test_unreachable_storage_is_one_line(tmp_path):
    out = cli("show", "x", "--storage", "postgresql+psycopg2://postgres@127.0.0.1:1/none", timeout=120)
    assert out.returncode == 2 and "cannot open storage" in out.stderr and "Traceback" not in out.stderr


def test_closing_hint_works_as_printed_from_any_folder(tmp_path):
    """``run`` into ``sqlite:///relative.db`` (made in the folder it ran from) ends with commands
    that name the storage by its absolute path: run from another folder, as printed, they work."""
    import shlex

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    cheap = [x if x != "0.5x" else "params<0.001M" for x in BASE]
    out = cli("run", *cheap, "--trials", "1", "--storage", "sqlite:///rel.db", "--study", "h", "--no-train-reference",
              "--no-paper-models", cwd=a)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (a / "rel.db").is_file()
    hints = [line.strip() for line in out.stdout.splitlines() if line.strip().startswith("evit-search ")]
    assert [h.split()[1] for h in hints] == ["show", "report", "tui"]
    assert f"--storage sqlite:///{a / 'rel.db'}" in hints[0]
    show = shlex.split(hints[0])[1:]
    again = cli(*show, cwd=b)
    assert again.returncode == 0 and "trials 1" in again.stdout, again.stderr[-2000:]
    assert not (b / "rel.db").exists()
