"""The interleaved measurement session.

This module runs inside the measuring worker process (see :mod:`evit_search.measure.runner`, which
starts it with the allocator set up). It never imports optuna.

Protocol (after the official ``speed_test.py``, with the noise handling these machines need):
every model is prepared once (fold BN, trace/freeze, or export to ONNX) outside the timed region
and warmed up; then timed rounds run round-robin over all (backend, model) pairs, the order
rotating each round, each segment a fixed wall-clock budget. Rounds continue until the median
of every pair is known to ``target_ci`` (relative width of its 95 % confidence interval) or the
time cap is reached. A failure (export error, out of memory...) becomes a record with its reason.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from .. import env as envmod
from .. import hostlock
from ..stats import median, median_ci, paired_ratio, relative_ci_width, spread
from .backends import BACKEND_CLASSES, Backend, Prepared
from .records import ModelSpec, Settings, ThroughputRecord

clock = time.monotonic  # for the time cap; tests script it


# --------------------------------------------------------------------------- timing
def timed_segment(run: Callable[[], Any], batch: int, seconds: float, sync=None) -> float:
    """Images per second over one segment of at least ``seconds`` and 2 batches."""
    n = 0
    t0 = time.perf_counter()
    while True:
        run()
        if sync is not None:
            sync()
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and n >= 2:
            return n * batch / elapsed


def _segment(prepared: Prepared, backend: Backend, seconds: float) -> float:
    """One timed segment, with the backend's untimed set-up and tear-down around it."""
    backend.activate()
    if prepared.enter:
        prepared.enter()
    hostlock.record("segment-start")
    try:
        return timed_segment(prepared.run, prepared.batch, seconds, backend.sync)
    finally:
        hostlock.record("segment-end")
        if prepared.exit:
            prepared.exit()


def run_session(specs: list[ModelSpec], backends: list[str], settings: Settings,
                reference: str | None = None, emit: Callable[[dict], None] = lambda e: None) -> list[ThroughputRecord]:
    """Measure every spec on every backend in one interleaved session. Holds the host lock."""
    with hostlock.measuring() as waited:
        emit({"event": "locked", "waited_s": waited})
        return _session(specs, backends, settings, reference, emit)


def _session(specs, backends, settings, reference, emit, classes=None):
    classes = classes or BACKEND_CLASSES
    environment = envmod.fingerprint(threads=settings.threads)
    records: dict[tuple[str, str], ThroughputRecord] = {}
    runners: dict[tuple[str, str], tuple[Prepared, Backend]] = {}
    samples: dict[tuple[str, str], list[float]] = {}

    def base(spec, bname, **kw):
        return ThroughputRecord(model=spec.label, backend=bname, threads=settings.threads, reference=reference,
                                input_size=spec.img_size, jit=spec.jit, fold=spec.fold, env=environment, **kw)

    def seconds_for(backend):
        return settings.cuda_seconds if backend.name.endswith("cuda") and settings.cuda_seconds else settings.seconds

    for bname in backends:
        backend = classes[bname](settings)
        why = backend.unavailable()
        for spec in specs:
            key = (bname, spec.label)
            if why:
                records[key] = base(spec, bname, status="skipped", reason=why)
                continue
            emit({"event": "prepare", "backend": bname, "model": spec.label})
            try:
                prepared = backend.prepare(spec)
                _segment(prepared, backend, settings.warmup_s)
            except Exception as e:  # noqa: BLE001 - any failure becomes a record with its reason
                records[key] = base(spec, bname, status="failed", reason=_reason(e))
                emit({"event": "failed", "backend": bname, "model": spec.label, "reason": records[key].reason})
                continue
            runners[key] = (prepared, backend)
            samples[key] = []
        if why:
            emit({"event": "skipped", "backend": bname, "reason": why})

    t_start = clock()
    keys = list(runners)
    rounds = 0
    while keys and rounds < settings.max_rounds:
        shift = rounds % len(keys)
        for key in keys[shift:] + keys[:shift]:  # rotate so no pair always runs first
            if key not in runners:
                continue
            prepared, backend = runners[key]
            try:
                ips = _segment(prepared, backend, seconds_for(backend))
            except Exception as e:  # noqa: BLE001
                records[key] = base(_spec_by_label(specs, key[1]), key[0], status="failed", reason=_reason(e))
                del runners[key]
                continue
            samples[key].append(ips)
            emit({"event": "sample", "backend": key[0], "model": key[1], "round": rounds + 1, "images_per_s": ips})
        keys = [k for k in keys if k in runners]
        rounds += 1
        emit({"event": "round", "round": rounds})
        if rounds >= settings.min_rounds:
            worst = max((relative_ci_width(samples[k]) for k in keys), default=0.0)
            if worst <= settings.target_ci or clock() - t_start > settings.time_cap_s:
                break

    for key, (prepared, backend) in runners.items():
        spec = _spec_by_label(specs, key[1])
        xs = samples[key]
        lo, hi, coverage = median_ci(xs)
        batch = prepared.batch
        rec = base(spec, key[0], status="ok", batch_size=batch, images_per_s=median(xs),
                   images_per_s_min=min(xs), images_per_s_max=max(xs), images_per_s_ci_low=lo,
                   images_per_s_ci_high=hi, ci_coverage=coverage, spread=spread(xs), rounds=len(xs),
                   samples_images_per_s=xs,
                   ms_per_batch=1000.0 * batch / median(xs), seconds_per_segment=seconds_for(backend),
                   precision=prepared.precision)
        ref_key = (key[0], reference)
        if reference and ref_key in samples and len(samples[ref_key]) == len(xs):
            ratios = paired_ratio(xs, samples[ref_key])
            rec.ratio_to_reference = median(ratios)
            rec.ratio_ci_low, rec.ratio_ci_high, _ = median_ci(ratios)
        records[key] = rec
    order = [(b, s.label) for b in backends for s in specs]
    return [records[k] for k in order if k in records]


def _spec_by_label(specs, label):
    return next(s for s in specs if s.label == label)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _reason(e: BaseException) -> str:
    text = _ANSI.sub("", str(e)).strip()
    msg = text.splitlines()[0] if text else ""
    return f"{type(e).__name__}: {msg}"[:500]


# --------------------------------------------------------------------------- worker entry point
def worker_main(job_path: str) -> int:
    """``python -m evit_search.measure.session JOB.json``: JSON events on stdout, one per line."""
    job = json.loads(Path(job_path).read_text())
    specs = [ModelSpec(**s) for s in job["specs"]]
    settings = Settings(**job["settings"])

    def emit(event):
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()

    try:
        records = run_session(specs, job["backends"], settings, job.get("reference"), emit)
    except Exception as e:  # noqa: BLE001 - reported to the parent, which raises MeasurementError
        emit({"event": "error", "reason": _reason(e), "traceback": traceback.format_exc()})
        return 1
    emit({"event": "done", "records": [r.to_dict() for r in records]})
    return 0


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(worker_main(sys.argv[1]))

