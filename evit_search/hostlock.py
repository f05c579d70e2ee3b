"""A per-host lock so that timing never overlaps heavy work started by this tool.

Timing takes the lock exclusively (:func:`measuring`); every CPU-heavy step of the tool -- a
training epoch with its evaluation and checkpoint, counting FLOPs, loading and resizing data,
building a model, reading a study while workers time -- takes it shared (:func:`working`), so
several of them run together but never while a measurement times. A waiting measurement first
takes the "intent" lock, which new shared holders must pass through, so that they cannot starve
it. Both are ``flock`` locks on files in ``$EVIT_LOCK_DIR`` (default
``~/.cache/evit-search/locks``): released by the kernel when a process dies, so a killed worker
never leaves the host locked.

Whoever holds the lock leaves a note (pid, command, what it does) beside it; a process that has
to wait says for whom, once, through :mod:`logging`.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

log = logging.getLogger(__name__)
WAIT_NOTICE_S = 1.0  # a wait longer than this is worth telling the user
# Tests install a recorder to check, with a clock of their own, that no timed segment overlaps
# held shared work: recorder(event, label, clock()).
recorder: Callable[[str, str, float], None] | None = None
clock: Callable[[], float] = time.monotonic


def record(event: str, label: str = "") -> None:
    if recorder is not None:
        recorder(event, label, clock())


def lock_dir() -> Path:
    d = Path(os.environ.get("EVIT_LOCK_DIR") or Path.home() / ".cache" / "evit-search" / "locks")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _path(kind: str) -> Path:
    return lock_dir() / f"{kind}-{socket.gethostname()}.lock"


def _notes() -> Path:
    d = lock_dir() / f"holders-{socket.gethostname()}"
    d.mkdir(exist_ok=True)
    return d


def _command() -> str:
    argv = [Path(sys.argv[0]).name] + sys.argv[1:] if sys.argv and sys.argv[0] else ["python"]
    return " ".join(argv)[:160]


def holders() -> list[str]:
    """Who holds the host lock now, as ``pid N (command): what`` (notes of dead processes are
    skipped and removed)."""
    out = []
    for f in sorted(_notes().glob("*")):
        try:
            pid = int(f.name.split("-")[0])
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError):
            f.unlink(missing_ok=True)
            continue
        except PermissionError:
            pass
        try:
            out.append(f.read_text().strip())
        except OSError:
            continue
    return out


@contextlib.contextmanager
def _note(what: str) -> Iterator[None]:
    f = _notes() / f"{os.getpid()}-{id(what)}-{time.monotonic_ns()}"
    f.write_text(f"pid {os.getpid()} ({_command()}): {what}")
    try:
        yield
    finally:
        f.unlink(missing_ok=True)


@contextlib.contextmanager
def _flock(path: Path, mode: int, waiting_for: str) -> Iterator[float]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    t0 = time.monotonic()
    try:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            who = "; ".join(holders()) or "another process"
            log.warning("waiting for the host lock (%s) held by %s", waiting_for, who)
            fcntl.flock(fd, mode)
        yield time.monotonic() - t0
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextlib.contextmanager
def measuring(what: str = "measuring throughput") -> Iterator[float]:
    """Exclusive: no other measurement and no work of this tool runs on the host meanwhile.
    Yields the seconds spent waiting."""
    with _flock(_path("intent"), fcntl.LOCK_EX, what) as w1:
        with _flock(_path("host"), fcntl.LOCK_EX, what) as w2, _note(what):
            record("exclusive-acquired", what)
            try:
                yield w1 + w2
            finally:
                record("exclusive-released", what)


@contextlib.contextmanager
def working(what: str) -> Iterator[float]:
    """Shared: heavy work of the tool runs together with other such work, never while a
    measurement times. Yields the seconds spent waiting."""
    with _flock(_path("intent"), fcntl.LOCK_SH, what) as w1:
        pass  # passes at once unless a measurement is waiting or running
    with _flock(_path("host"), fcntl.LOCK_SH, what) as w2, _note(what):
        record("shared-acquired", what)
        try:
            yield w1 + w2
        finally:
            record("shared-released", what)
