"""Parent side of throughput measurement: runs :mod:`evit_search.measure.session` in a worker
process whose allocator is set up for honest timing, passes its events on, returns records.

The worker dies with its parent (``PR_SET_PDEATHSIG`` on Linux), so a killed search never leaves
a timing process behind holding the host lock; its temporary folder carries the parent's pid, and
the next measurement on the host removes folders whose owner is gone."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
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
WORKER_MODULE = "evit_search.measure.session"  # run with -m in the measuring process
TMP_PREFIX = "evit-measure-"


def die_with_parent(parent_pid: int | None = None) -> None:
    """In a child: be killed when the parent dies (Linux prctl PR_SET_PDEATHSIG). With
    ``parent_pid``, a parent that died before this call (the child was re-parented already) ends
    the child at once."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except OSError:  # not Linux: a killed parent's worker finishes its session and exits
        pass
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


def clean_stale_folders(tmp_root: str | None = None) -> list[Path]:
    """Remove measurement folders left by processes that are gone (a parent killed with -9)."""
    removed = []
    for d in Path(tmp_root or tempfile.gettempdir()).glob(f"{TMP_PREFIX}*"):
        try:
            pid = int(d.name[len(TMP_PREFIX):].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
        except (ValueError, PermissionError, OSError):
            continue  # not ours, or alive
    return removed


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
    clean_stale_folders()
    with tempfile.TemporaryDirectory(prefix=f"{TMP_PREFIX}{os.getpid()}-") as tmp:
        job_path = Path(tmp) / "job.json"
        job_path.write_text(json.dumps(job))
        # stderr goes to a file: a worker that writes more than a pipe holds (exporter warnings, a
        # long traceback) must never block while it holds the exclusive host lock
        with open(Path(tmp) / "stderr.txt", "w+") as err:
            proc = subprocess.Popen([sys.executable, "-m", WORKER_MODULE, str(job_path)], stdout=subprocess.PIPE,
                                    stderr=err, text=True, env=worker_env(),
                                    preexec_fn=die_with_parent if sys.platform.startswith("linux") else None)
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
            proc.wait()
            err.seek(0)
            stderr = err.read()
    if done is None:
        why = error["reason"] if error else (stderr.strip().splitlines() or ["no output"])[-1]
        raise MeasurementError(f"measurement worker failed (exit {proc.returncode}): {why}")
    return [ThroughputRecord.from_dict(r) for r in done["records"]]
