"""A per-host lock so that timing never overlaps heavy work started by this tool.

Timing takes the lock exclusively; training takes it shared (many trainers may run together),
one epoch at a time. A waiting measurement first takes the "intent" lock, which new trainers
must pass through, so that trainers cannot starve it. Both are ``flock`` locks on files in
``$EVIT_LOCK_DIR`` (default ``~/.cache/evit-search/locks``): released by the kernel when a
process dies, so a killed worker never leaves the host locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import time
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)


def lock_dir() -> Path:
    d = Path(os.environ.get("EVIT_LOCK_DIR") or Path.home() / ".cache" / "evit-search" / "locks")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _path(kind: str) -> Path:
    return lock_dir() / f"{kind}-{socket.gethostname()}.lock"


@contextlib.contextmanager
def _flock(path: Path, mode: int) -> Iterator[float]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    t0 = time.monotonic()
    try:
        fcntl.flock(fd, mode)
        yield time.monotonic() - t0
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextlib.contextmanager
def measuring() -> Iterator[float]:
    """Exclusive: no other measurement and no training of this tool runs on the host meanwhile.
    Yields the seconds spent waiting."""
    with _flock(_path("intent"), fcntl.LOCK_EX) as w1:
        with _flock(_path("host"), fcntl.LOCK_EX) as w2:
            if w1 + w2 > 1:
                log.info("waited %.1f s for the host measurement lock", w1 + w2)
            yield w1 + w2


@contextlib.contextmanager
def training() -> Iterator[float]:
    """Shared: trainers run together but never while a measurement times."""
    with _flock(_path("intent"), fcntl.LOCK_SH) as w1:
        pass  # passes at once unless a measurement is waiting or running
    with _flock(_path("host"), fcntl.LOCK_SH) as w2:
        yield w1 + w2
