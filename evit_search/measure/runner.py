"""Parent side of throughput measurement: runs :mod:`evit_search.throughput` in a worker process
whose allocator is set up for honest timing, shows progress, returns records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterable

from ..env import GLIBC_TUNED, allocator
from ..errors import MeasurementError, UserError
from .backends import BACKEND_CLASSES
from .records import BACKENDS, ModelSpec, Settings, ThroughputRecord

Listener = Callable[[dict], None]


def worker_env() -> dict[str, str]:
    """The current environment, plus the glibc tuning unless another allocator is preloaded."""
    env = dict(os.environ)
    if allocator(env) not in ("jemalloc", "tcmalloc", "mimalloc"):
        env.update(GLIBC_TUNED)
    env["PYTHONWARNINGS"] = "ignore"
    return env


def check_backends(backends: Iterable[str], flag: str = "--backends") -> list[str]:
    """Known backend names; errors name ``flag``, the option the names came from."""
    out = []
    for b in backends:
        if b not in BACKENDS:
            raise UserError(f"{flag}: {b!r} is not one of {', '.join(BACKENDS)}")
        out.append(b)
    if not out:
        raise UserError(f"{flag}: give at least one backend")
    return out


def usable_backends(backends: Iterable[str], flag: str = "--backends",
                    warn: Callable[[str], None] | None = None) -> list[str]:
    """The backends that can run on this machine, checked here before anything is measured or
    stored. Those that cannot are reported through ``warn`` (or are an error when ``warn`` is
    None); none usable at all is an error naming why each one is out."""
    backends = check_backends(backends, flag)
    why = {b: r for b in backends if (r := BACKEND_CLASSES[b].unavailable())}
    if why and (warn is None or len(why) == len(backends)):
        out = "; ".join(f"{b}: {r}" for b, r in why.items())
        raise UserError(f"{flag}: {out}; pick one of {', '.join(b for b in BACKENDS if not BACKEND_CLASSES[b].unavailable())}")
    for b, r in why.items():
        warn(f"skipping {b}: {r}")
    return [b for b in backends if b not in why]


def measure(specs: list[ModelSpec], backends: Iterable[str] = ("torch-cpu",), settings: Settings | None = None,
            reference: str | None = None, listener: Listener | None = None) -> list[ThroughputRecord]:
    """Measure ``specs`` on ``backends`` in one interleaved session in a worker process.

    ``reference`` is the label of the spec every throughput is also expressed against (paired
    per-round ratios). Failures come back as records with ``status='failed'`` and a reason.
    """
    backends = check_backends(backends)
    settings = settings or Settings()
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise UserError(f"model labels must be unique: {labels}")
    if reference is not None and reference not in labels:
        raise UserError(f"reference {reference!r} is not among the measured models")
    job = {"specs": [s.to_dict() for s in specs], "backends": backends,
           "settings": settings.to_dict(), "reference": reference}
    with tempfile.TemporaryDirectory(prefix="evit-measure-") as tmp:
        job_path = Path(tmp) / "job.json"
        job_path.write_text(json.dumps(job))
        proc = subprocess.Popen([sys.executable, "-m", "evit_search.measure.session", str(job_path)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=worker_env())
        done = None
        error = None
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # a library printing to stdout; the events are JSON lines
            if event.get("event") == "done":
                done = event
            elif event.get("event") == "error":
                error = event
            if listener:
                listener(event)
        stderr = proc.stderr.read() if proc.stderr else ""
        proc.wait()
    if done is None:
        why = error["reason"] if error else (stderr.strip().splitlines() or ["no output"])[-1]
        raise MeasurementError(f"measurement worker failed (exit {proc.returncode}): {why}")
    return [ThroughputRecord.from_dict(r) for r in done["records"]]
