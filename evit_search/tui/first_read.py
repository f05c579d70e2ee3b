"""The TUI's first read of a study, in a forked process: it runs on another core while Textual
starts on this one. Reading a study is CPU work in Python (Optuna's storage opens with alembic,
the ORM builds every trial), and in a thread it would share one interpreter lock with Textual's
start-up: on a 2-core machine the first screen came about a third later.

Only where ``fork`` is safe: Linux, and a process with no other thread yet (the App forks in its
constructor, before Textual starts any). Elsewhere :func:`start` returns None and the App reads
in a thread as it does for every later read.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
import weakref

from ..errors import StorageError
from . import view as D


def _reap(pid: int, fd: int) -> None:
    """End a reader nobody will wait for and collect it (no zombie left behind)."""
    try:
        os.close(fd)
    except OSError:
        pass
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


class ForkedRead:
    """A study being read by a child process; :meth:`result` waits for it (off the UI thread).
    One dropped unread (an App built and never run) is ended and reaped when collected."""

    def __init__(self, pid: int, fd: int):
        self.pid, self.fd = pid, fd
        self._reaper = weakref.finalize(self, _reap, pid, fd)

    def result(self) -> D.StudyView:
        self._reaper.detach()  # read to the end and waited for below
        with os.fdopen(self.fd, "rb") as f:
            data = f.read()
        os.waitpid(self.pid, 0)
        if not data:
            raise StorageError("the process reading the study ended without an answer")
        kind, value = pickle.loads(data)
        if kind == "error":
            raise StorageError(value)
        return value

    def discard(self) -> None:
        """Not wanted after all (the study was not there): end the child and reap it."""
        self._reaper()


def start(name: str, url: str | None) -> ForkedRead | None:
    """Start reading the study in a child process, or None where forking is not safe."""
    if not sys.platform.startswith("linux") or threading.active_count() != 1:
        return None
    r, w = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return None
    if pid:
        os.close(w)
        return ForkedRead(pid, r)
    code = 0
    try:  # the child: read, answer, leave without running the parent's exit handlers
        os.close(r)
        try:
            payload = ("view", D.load_view(name, url))
        except Exception as e:  # noqa: BLE001 - handed to the parent, which shows it
            payload = ("error", str(e) or type(e).__name__)
        with os.fdopen(w, "wb") as f:
            pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException:  # noqa: BLE001 - the parent sees no answer and says so
        code = 1
    finally:
        os._exit(code)
