"""Measurement layer: records, statistics, failures, the host lock, the bench command."""

import multiprocessing as mp
import os
import subprocess
import sys
import threading
import time

import pytest
import torch

import efficientvit
from evit_search import hostlock
from evit_search.measure.records import ModelSpec, Settings
from evit_search.measure.runner import measure
from evit_search.measure.session import run_session
from evit_search.stats import (
    kendall,
    median_ci,
    median_ci_coverage,
    paired_ratio,
    relative_ci_width,
    spearman,
    spread,
    stored_ci_coverage,
)

TINY = Settings(seconds=0.05, warmup_s=0.05, min_rounds=3, max_rounds=3, batch_size=2)


def tiny_spec(label="m0", **kw):
    cfg = efficientvit.get_config("efficientvit_m0", img_size=32)
    return ModelSpec(label, config=cfg.to_dict(), img_size=32, **kw)


def test_stats_maths():
    assert spread([100, 110, 105]) == pytest.approx(0.10)
    lo, hi, cov = median_ci(list(range(20)))
    assert (lo, hi) == (5.0, 14.0) and cov == pytest.approx(0.9586, abs=1e-4)  # textbook 95 % interval: x(6), x(15)
    # too few values for 95 %: the whole range, with the coverage it really has
    assert median_ci([3, 1, 2]) == (1.0, 3.0, pytest.approx(0.75))
    assert median_ci([1, 2, 3, 4])[2] == pytest.approx(0.875)
    assert median_ci([1, 2, 3, 4, 5])[2] == pytest.approx(0.9375)
    assert median_ci(list(range(6)))[2] == pytest.approx(0.96875)  # 6 rounds: the fewest for a 95 % claim
    # the coverage depends on the count alone: told for records stored before it was
    assert [median_ci_coverage(n) for n in range(2, 21)] == [median_ci(list(range(n)))[2] for n in range(2, 21)]
    assert stored_ci_coverage({"rounds": 5}) == 0.9375 and stored_ci_coverage({"rounds": 5, "ci_coverage": 0.5}) == 0.5
    assert stored_ci_coverage({}) is None and stored_ci_coverage(None) is None
    assert relative_ci_width([10.0] * 9) == 0.0
    assert paired_ratio([2, 4, 6], [1, 2, 0]) == [2.0, 2.0]  # a zero reference is dropped, not divided by
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert kendall([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


@pytest.mark.parametrize("backend", ["torch-cpu", "onnx-cpu"])
def test_backend_record_is_well_formed(backend):
    recs = run_session([tiny_spec("a"), tiny_spec("b", jit="trace")], [backend], TINY, reference="a")
    assert [r.model for r in recs] == ["a", "b"]
    for r in recs:
        assert r.status == "ok", r.reason
        assert r.backend == backend and r.batch_size == 2 and r.threads == 1 and r.rounds == 3
        assert r.images_per_s_min <= r.images_per_s <= r.images_per_s_max
        assert r.images_per_s_ci_low <= r.images_per_s <= r.images_per_s_ci_high
        assert len(r.samples_images_per_s) == 3
        assert r.env["cpu_model"] and r.env["torch_version"] and "allocator" in r.env
    assert recs[0].ratio_to_reference == 1.0
    assert recs[1].ratio_to_reference == pytest.approx(
        sorted(b / a for a, b in zip(recs[0].samples_images_per_s, recs[1].samples_images_per_s))[1])


def test_cuda_backend_skipped_cleanly_without_gpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: exercised by test_cuda_backend")
    (rec,) = run_session([tiny_spec()], ["cuda"], TINY)
    assert rec.status == "skipped" and "no CUDA GPU" in rec.reason


def test_batch_search_halves_on_out_of_memory_only():
    from evit_search.measure.backends import largest_fitting_batch

    tried = []

    def attempt(batch):
        tried.append(batch)
        if batch > 300:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.19 GiB")
        return f"fn@{batch}"

    freed = []
    assert largest_fitting_batch(attempt, 2048, fixed=False, cleanup=lambda: freed.append(1)) == ("fn@256", 256)
    assert tried == [2048, 1024, 512, 256] and len(freed) == 3
    with pytest.raises(torch.OutOfMemoryError):  # a batch the user asked for is never shrunk
        largest_fitting_batch(attempt, 512, fixed=True)
    with pytest.raises(RuntimeError, match="even at batch 1"):
        largest_fitting_batch(lambda b: attempt(10_000), 4, fixed=False)

    def broken(batch):
        raise ValueError("shape mismatch")  # not a memory problem: no retry at a smaller batch

    with pytest.raises(ValueError):
        largest_fitting_batch(broken, 2048, fixed=False)


def test_onnxruntime_allocation_failure_counts_as_out_of_memory():
    from evit_search.measure.backends import is_out_of_memory

    ort_text = ("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned while running Conv node. "
                "Failed to allocate memory for requested buffer of size 1644167168")
    assert is_out_of_memory(RuntimeError(ort_text))
    assert not is_out_of_memory(RuntimeError("[ONNXRuntimeError] : 1 : FAIL : Load model failed"))


def test_segments_set_up_and_tear_down_around_timing():
    from evit_search.measure.backends import Backend, Prepared
    from evit_search.measure.session import _segment

    log = []
    prepared = Prepared(run=lambda: log.append("run") if "in" in log else pytest.fail("run before enter"), batch=4,
                        enter=lambda: log.append("in"), exit=lambda: log.append("out"))
    ips = _segment(prepared, Backend(TINY), 0.01)
    assert ips > 0 and log[0] == "in" and log[-1] == "out" and log.count("run") >= 2

    def boom():
        raise RuntimeError("device lost")

    log.clear()
    with pytest.raises(RuntimeError):
        _segment(Prepared(boom, 4, enter=lambda: log.append("in"), exit=lambda: log.append("out")), Backend(TINY), 0.01)
    assert log == ["in", "out"]  # the input is freed even when a batch fails


def _gpu_backends_on_cpu():
    """The GPU backends' own code (batch search, autocast + trace, per-segment input, IOBinding),
    pointed at the CPU: every line runs here except the CUDA calls themselves."""
    from evit_search.measure.backends import BACKEND_CLASSES, Cuda, OnnxCuda

    class CudaOnCpu(Cuda):
        device, amp_dtype = "cpu", "bfloat16"

        @classmethod
        def unavailable(cls):
            return None

    class OnnxCudaOnCpu(OnnxCuda):
        device, provider = "cpu", "CPUExecutionProvider"

    return {**BACKEND_CLASSES, "cuda": CudaOnCpu, "onnx-cuda": OnnxCudaOnCpu}


@pytest.mark.parametrize("batch", [8, None])
def test_gpu_backend_code_paths_on_cpu(batch, monkeypatch):
    from evit_search.measure import backends
    from evit_search.measure.session import _session

    # the batch search's start, scaled down: 2048 images through bf16 autocast on a CPU take minutes
    monkeypatch.setattr(backends, "CUDA_SEARCH_FROM", 64)
    monkeypatch.setattr(backends, "ONNX_CUDA_SEARCH_FROM", 32)
    s = Settings(seconds=0.05, warmup_s=0.05, min_rounds=2, max_rounds=2, cuda_batch=batch, cuda_seconds=0.03)
    specs = [tiny_spec("a"), tiny_spec("b", jit="none")]
    recs = _session(specs, ["cuda", "onnx-cuda"], s, "a", lambda e: None, classes=_gpu_backends_on_cpu())
    by = {(r.backend, r.model): r for r in recs}
    for key, r in by.items():
        assert r.status == "ok", (key, r.reason)
        assert r.rounds == 2 and r.images_per_s > 0 and r.seconds_per_segment == 0.03
        assert r.batch_size == (batch or (64 if r.backend == "cuda" else 32))
    assert by[("cuda", "a")].precision == "bfloat16-autocast" and by[("onnx-cuda", "a")].precision == "fp32"
    assert by[("cuda", "a")].ratio_to_reference == 1.0 and by[("onnx-cuda", "b")].ratio_to_reference > 0


@pytest.mark.gpu
def test_cuda_backend():
    s = Settings(seconds=0.2, warmup_s=0.2, min_rounds=2, max_rounds=2, cuda_batch=64)
    (rec,) = run_session([tiny_spec()], ["cuda"], s)
    assert rec.status == "ok", rec.reason
    assert rec.batch_size == 64 and rec.env.get("gpu_name") and rec.precision == "float16-autocast"
    s = Settings(seconds=0.2, warmup_s=0.2, min_rounds=2, max_rounds=2)  # the batch search, from 2048
    recs = run_session([tiny_spec("a"), tiny_spec("b")], ["cuda", "onnx-cuda"], s, reference="a")
    for r in recs:
        if r.backend == "onnx-cuda" and r.status == "skipped":
            continue  # onnxruntime without its CUDA provider: the reason says to install onnxruntime-gpu
        assert r.status == "ok", r.reason
        assert r.batch_size == (2048 if r.backend == "cuda" else 256) and r.images_per_s > 0


def test_failure_becomes_a_record_and_the_rest_goes_on():
    bad = ModelSpec("bad", source="timm", timm_name="no_such_model_xyz", img_size=32)
    recs = run_session([tiny_spec("good"), bad], ["torch-cpu", "onnx-cpu"], TINY, reference="good")
    by = {(r.backend, r.model): r for r in recs}
    assert by[("torch-cpu", "good")].status == "ok" and by[("onnx-cpu", "good")].status == "ok"
    for b in ("torch-cpu", "onnx-cpu"):
        assert by[(b, "bad")].status == "failed" and "no_such_model_xyz" in by[(b, "bad")].reason
    assert by[("torch-cpu", "bad")].images_per_s is None  # never a zero throughput


def test_onnx_export_failure_is_recorded(tmp_path):
    from evit_search.errors import MeasurementError
    from evit_search.measure.onnx_export import export_onnx

    class Unexportable(torch.nn.Module):
        def forward(self, x):
            if x.shape[0] == 2:  # the export example: every exporter fails on it
                raise RuntimeError("cannot trace this")
            return x

    with pytest.raises(MeasurementError, match="ONNX export failed: torchscript exporter: cannot trace this"):
        export_onnx(Unexportable(), tmp_path / "u.onnx", (1, 4, 4))


def test_worker_process_uses_the_tuned_allocator():
    (rec,) = measure([tiny_spec()], ["torch-cpu"], TINY)
    assert rec.status == "ok"
    assert rec.env["allocator"] == "glibc (mmap/trim thresholds raised)"


def _lock(kind):
    return hostlock.measuring() if kind == "measuring" else hostlock.working("test work")


def _hold(kind, started, seconds):
    with _lock(kind):
        started.set()
        time.sleep(seconds)


def _seconds_behind(held: str, then: str, hold_s: float) -> float:
    """Another process holds the lock ``held``; how long does taking ``then`` here take?"""
    ctx = mp.get_context("spawn")
    started = ctx.Event()
    p = ctx.Process(target=_hold, args=(held, started, hold_s))
    p.start()
    try:
        assert started.wait(30)
        t0 = time.monotonic()
        with _lock(then):
            pass
        return time.monotonic() - t0
    finally:
        p.join()


def test_measurement_lock_makes_a_second_process_wait():
    assert _seconds_behind("measuring", "working", 1.5) > 0.8  # heavy work waits for a measurement
    assert _seconds_behind("working", "measuring", 1.5) > 0.8  # and a measurement for heavy work
    assert _seconds_behind("measuring", "measuring", 1.5) > 0.8


def test_heavy_work_shares_the_lock():
    assert _seconds_behind("working", "working", 2.0) < 1.0


def test_a_wait_says_for_whom(caplog):
    """The process that waits is told who holds the lock: pid and command."""
    ctx = mp.get_context("spawn")
    started = ctx.Event()
    p = ctx.Process(target=_hold, args=("measuring", started, 1.0))
    p.start()
    try:
        assert started.wait(30)
        with caplog.at_level("WARNING", logger="evit_search.hostlock"), hostlock.working("training"):
            pass
    finally:
        p.join()
    (msg,) = [r.getMessage() for r in caplog.records]
    assert msg.startswith("waiting for the host lock (training) held by pid ") and f"pid {p.pid} " in msg
    assert ": measuring throughput" in msg


@pytest.mark.slow
def test_bench_command_end_to_end(tmp_path, monkeypatch, capsys):
    """The command in this process (the measurement still in its worker), so that the records it
    measured can be held against every number it wrote and printed."""
    import pandas as pd

    from evit_search.cli import main
    from evit_search.measure import runner
    from evit_search.reproduce import paper
    from evit_search.reproduce.bench import REFERENCE

    measured = []

    def keep(*a, **kw):
        recs = runner_measure(*a, **kw)
        measured.extend(recs)
        return recs

    runner_measure = runner.measure
    monkeypatch.setattr(runner, "measure", keep)
    monkeypatch.setenv("COLUMNS", "200")  # main() would set it for a pipe, and keep it after the test
    assert main(["bench", "table2", "--models", "mobilenetv3_small_100", "--backends", "torch-cpu,onnx-cpu,cuda",
                 "--seconds", "0.1", "--warmup", "0.1", "--rounds", "2", "--max-rounds", "2", "--repeat-reference", "2",
                 "--reports", str(tmp_path)]) == 0
    stdout = capsys.readouterr().out
    ok = {(r.backend, r.model): r for r in measured if r.status == "ok"}
    assert {m for _, m in ok} == {"MobileNetV3-Small", REFERENCE, f"{REFERENCE} #2"}
    assert {b for b, _ in ok} == {"torch-cpu", "onnx-cpu"}
    df = pd.read_csv(next(tmp_path.glob("bench-table2-*.csv")))
    assert set(zip(df[df.status == "ok"].backend, df[df.status == "ok"].model)) == set(ok)
    paper_t2 = paper.table("table2").set_index("model")
    md = next(tmp_path.glob("bench-table2-*.md")).read_text()
    md_rows = {(cells[1], cells[0]): cells for cells in
               ([c.strip() for c in line.strip("|").split("|")] for line in md.splitlines() if line.startswith("| "))
               if len(cells) == 10}
    for row in df[df.status == "ok"].itertuples():
        rec = ok[(row.backend, row.model)]
        # the CSV holds the records' numbers, and the paper's
        assert (row.images_per_s, row.images_per_s_min, row.images_per_s_max, row.rounds) == pytest.approx(
            (rec.images_per_s, rec.images_per_s_min, rec.images_per_s_max, rec.rounds), rel=1e-12)
        assert row.ratio_to_m4 == pytest.approx(rec.ratio_to_reference, rel=1e-12)
        p_ips = paper_t2.loc[row.model.split(" #")[0], paper.PAPER_THROUGHPUT[row.backend]]
        p_ref = paper_t2.loc[REFERENCE, paper.PAPER_THROUGHPUT[row.backend]]
        assert row.paper_images_per_s == pytest.approx(p_ips) and row.paper_ratio_to_m4 == pytest.approx(p_ips / p_ref)
        assert row.ours_over_paper == pytest.approx(rec.images_per_s / p_ips)
        # the markdown table shows the same numbers, rounded
        cells = md_rows[(row.backend, row.model)]
        assert cells[2:6] == [f"{rec.images_per_s:.1f}", f"{rec.images_per_s_min:.1f}", f"{rec.images_per_s_max:.1f}",
                              f"{rec.ratio_to_reference:.3f}"]
        assert cells[6:9] == [f"{p_ips:.1f}", f"{p_ips / p_ref:.3f}", f"{rec.images_per_s / p_ips:.2f}"]
    assert ok[("torch-cpu", REFERENCE)].ratio_to_reference == 1.0
    for b in ("torch-cpu", "onnx-cpu"):
        # rank agreement and repeatability, from the records, as written and printed
        ours = [ok[(b, m)].images_per_s for m in ("MobileNetV3-Small", REFERENCE)]
        rho = spearman(ours, [paper_t2.loc[m, paper.PAPER_THROUGHPUT[b]] for m in ("MobileNetV3-Small", REFERENCE)])
        assert f"- {b}: Spearman {rho:.3f} over 2 models" in md and f"Spearman vs paper, {b}: {rho:.3f} over 2" in stdout
        reps = [ok[(b, m)].images_per_s for m in (REFERENCE, f"{REFERENCE} #2")]
        assert f"spread {100 * (max(reps) / min(reps) - 1):.1f} %" in md
    assert next(tmp_path.glob("bench-table2-*.png")).stat().st_size > 1000


def test_bench_bad_input_is_one_line():
    out = subprocess.run([sys.executable, "-m", "evit_search", "bench", "table2", "--backends", "tpu"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip() == "evit-search bench: error: --backends: 'tpu' is not one of torch-cpu, onnx-cpu, cuda, onnx-cuda"
    out = subprocess.run([sys.executable, "-m", "evit_search", "bench", "table2", "--models", "resnet50"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "--models: resnet50 not in table2" in out.stderr and "Traceback" not in out.stderr


def test_backends_that_cannot_run_here_are_named_before_anything_runs(tmp_path):
    from evit_search.errors import UserError
    from evit_search.measure.runner import usable_backends

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    warned = []
    assert usable_backends(["torch-cpu", "cuda"], warn=warned.append) == ["torch-cpu"]
    assert warned == ["skipping cuda: no CUDA GPU on this machine"]
    with pytest.raises(UserError, match=r"^--backend: cuda: no CUDA GPU on this machine; pick one of torch-cpu"):
        usable_backends(["cuda"], "--backend")  # a backend the user relies on (run --backend) is never skipped
    out = subprocess.run([sys.executable, "-m", "evit_search", "bench", "table2", "--backends", "cuda",
                          "--reports", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().startswith("evit-search bench: error: --backends: cuda: no CUDA GPU on this machine")
    assert list(tmp_path.iterdir()) == []  # no empty report



class _Scripted:
    """A backend whose segments return scripted images/s (no timing): the stopping rule alone."""

    name = "torch-cpu"
    sync = None

    def __init__(self, settings, script):
        self.settings, self.script = settings, script

    @classmethod
    def unavailable(cls):
        return None

    def activate(self):
        pass

    def prepare(self, spec):
        from evit_search.measure.backends import Prepared

        values = iter(self.script[spec.label])
        return Prepared(run=lambda: None, batch=1, enter=None, exit=None), values


def _scripted_session(monkeypatch, script, settings, clock_step=0.0):
    """Run the real session loop over ``script`` ({label: [warm-up, round 1, round 2, ...]})."""
    from evit_search.measure import session as sess

    current = {}

    class Backend(_Scripted):
        def __init__(self, s):
            super().__init__(s, script)

        def prepare(self, spec):
            prepared, values = super().prepare(spec)
            current[id(prepared)] = values
            return prepared

    monkeypatch.setattr(sess, "_segment", lambda prepared, backend, seconds: next(current[id(prepared)]))
    t = [0.0]

    def clock():
        t[0] += clock_step
        return t[0]

    monkeypatch.setattr(sess, "clock", clock)
    specs = [ModelSpec(label) for label in script]
    return sess._session(specs, ["torch-cpu"], settings, "ref", lambda e: None, classes={"torch-cpu": Backend})


def test_stopping_rule_stops_when_every_interval_is_narrow(monkeypatch):
    steady = {"ref": [100.0] * 20, "cand": [150.0] * 20}
    recs = _scripted_session(monkeypatch, steady, Settings(min_rounds=6, max_rounds=12, target_ci=0.03))
    assert [r.rounds for r in recs] == [6, 6]  # narrow at once: the minimum
    assert recs[1].ratio_to_reference == pytest.approx(1.5) and recs[1].ci_coverage == pytest.approx(0.96875)


def test_stopping_rule_adds_rounds_while_noisy_up_to_the_maximum(monkeypatch):
    noisy = {"ref": [100.0] + [80.0, 120.0] * 10, "cand": [150.0] * 21}
    recs = _scripted_session(monkeypatch, noisy, Settings(min_rounds=6, max_rounds=12, target_ci=0.03))
    assert [r.rounds for r in recs] == [12, 12]


def test_stopping_rule_respects_the_time_cap(monkeypatch):
    noisy = {"ref": [100.0] + [80.0, 120.0] * 10, "cand": [150.0] * 21}
    recs = _scripted_session(monkeypatch, noisy, Settings(min_rounds=6, max_rounds=12, target_ci=0.03, time_cap_s=50),
                             clock_step=100.0)  # each round "takes" 100 s
    assert [r.rounds for r in recs] == [6, 6]  # past the cap after the minimum: no more rounds


def test_a_reference_that_fails_mid_session_leaves_no_ratio(monkeypatch):
    def failing():
        yield 100.0  # warm-up
        yield 100.0
        yield 101.0
        raise RuntimeError("out of memory in round 3")

    script = {"ref": failing(), "cand": iter([150.0] * 20)}
    recs = _scripted_session(monkeypatch, script, Settings(min_rounds=6, max_rounds=6))
    ref, cand = recs
    assert ref.status == "failed" and "out of memory in round 3" in ref.reason
    assert cand.status == "ok" and cand.ratio_to_reference is None  # never a ratio to a partial reference


def test_a_worker_that_floods_stderr_does_not_deadlock(tmp_path, monkeypatch):
    """A worker writing 1 MB to stderr (far more than a pipe buffer) before its result."""
    from evit_search.measure import runner

    (tmp_path / "loud_worker.py").write_text(
        "import json, sys\n"
        "sys.stderr.write('x' * 1_000_000)\n"
        "sys.stderr.flush()\n"
        "print(json.dumps({'event': 'done', 'records': []}), flush=True)\n")
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.setattr(runner, "WORKER_MODULE", "loud_worker")
    procs, out = [], {}
    real_popen = subprocess.Popen
    monkeypatch.setattr(runner.subprocess, "Popen", lambda *a, **kw: procs.append(real_popen(*a, **kw)) or procs[-1])

    def call():
        try:
            out["records"] = runner.measure([tiny_spec()], ["torch-cpu"], TINY)
        except Exception as e:  # noqa: BLE001 - kept for the assertion below
            out["error"] = e

    # in a thread with a deadline: a deadlock fails the test instead of hanging it
    th = threading.Thread(target=call, daemon=True)
    th.start()
    th.join(timeout=60)
    hung = th.is_alive()
    for proc in procs:  # a blocked worker (and so the blocked reader) is ended either way
        proc.kill()
        proc.wait()
    th.join(timeout=10)
    assert not hung, "measure() did not return within 60 s: the worker blocked writing to stderr"
    assert out == {"records": []}


def test_stale_measurement_folders_of_dead_processes_are_removed(tmp_path):
    from evit_search.measure.runner import TMP_PREFIX, clean_stale_folders

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{TMP_PREFIX}{dead.pid}-abc"
    alive = tmp_path / f"{TMP_PREFIX}{os.getpid()}-def"
    other = tmp_path / f"{TMP_PREFIX}notapid"
    for d in (stale, alive, other):
        d.mkdir()
    assert clean_stale_folders(str(tmp_path)) == [stale]
    assert not stale.exists() and alive.exists() and other.exists()
