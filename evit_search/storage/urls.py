"""Storage URLs and the storage-wide lock.

What a user types becomes one URL (:func:`normalize_url`): any Optuna RDB URL
(``sqlite:///path.db``, ``postgresql+psycopg2://...``), a journal file (``journal:PATH`` or a
path ending in ``.journal``/``.log``/``.jsonl``), or a plain path to a ``.db`` file. The default
is an SQLite file in ``runs/``.

:func:`storage_lock` serialises what must be atomic across workers and machines sharing one
storage (creating the schema and the study, claiming an architecture, registering a worker): an
``flock`` beside an SQLite or journal file, an advisory lock on PostgreSQL (``pg_advisory_lock``)
or MySQL (``GET_LOCK``) whose key is the database's identity as the server reports it, so that
workers that reach one database by different URLs still exclude each other.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import random
import time
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import sqlalchemy
from optuna.storages import RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalStorage

from ..errors import StorageError

DEFAULT_DB = Path("runs") / "evit-search.db"
HEARTBEAT_S = 60  # a running trial's worker records a heartbeat this often (RDB storages)
GRACE_S = 600  # after this long without one, any worker fails the trial as interrupted

log = logging.getLogger(__name__)
T = TypeVar("T")


def default_storage_url() -> str:
    return os.environ.get("EVIT_STORAGE") or f"sqlite:///{DEFAULT_DB}"


def normalize_url(url: str | None) -> str:
    """One function that turns what a user typed into a storage URL."""
    url = (url or default_storage_url()).strip()
    if url.startswith("journal:") or "://" in url:
        return url
    if url.endswith((".journal", ".log", ".jsonl")):
        return f"journal:{url}"
    return f"sqlite:///{url}"


def local_path(url: str | None) -> Path | None:
    """The file behind an SQLite or journal URL (None for a database server)."""
    url = normalize_url(url)
    if url.startswith("journal:"):
        return Path(url[len("journal:"):])
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///"):])
    return None


def display_url(url: str | None) -> str:
    """The URL as a user should read it: files with their absolute path, passwords hidden."""
    path = local_path(url)
    if path is not None:
        return ("journal:" if normalize_url(url).startswith("journal:") else "sqlite:///") + str(path.resolve())
    norm = normalize_url(url)
    scheme, sep, rest = norm.partition("://")
    creds, at, host = rest.rpartition("@")
    if at and ":" in creds:
        creds = creds.split(":", 1)[0] + ":***"
    return f"{scheme}{sep}{creds}{at}{host}"


_SERVER_IDS: dict[str, str] = {}  # normalised URL -> the database's identity, as its server gave it


def _server_identity(conn) -> str:
    """The database a connection is in, as the server names it: two URLs for one database
    (``localhost`` and ``127.0.0.1``, another driver, a password or not) give the same string."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        db = conn.execute(sqlalchemy.text("SELECT current_database()")).scalar()
        try:  # the cluster's id (one per initdb); a role without the right to read it gets the name alone
            with conn.begin_nested():
                cluster = conn.execute(sqlalchemy.text("SELECT system_identifier FROM pg_control_system()")).scalar()
        except sqlalchemy.exc.DBAPIError:
            cluster = None
        return f"postgresql:{cluster}:{db}"
    if dialect in ("mysql", "mariadb"):
        db = conn.execute(sqlalchemy.text("SELECT DATABASE()")).scalar()
        try:
            server = conn.execute(sqlalchemy.text("SELECT @@server_uuid")).scalar()
        except sqlalchemy.exc.DBAPIError:
            server = None
        return f"mysql:{server}:{db}"
    return f"{dialect}:{display_url(str(conn.engine.url))}"


def storage_identity(url: str | None) -> str:
    """A short stable id of a storage: its file's absolute path, or for a database server the
    database's identity as the server reports it (:func:`_server_identity`), so that every
    URL that reaches one database gives one id (checkpoints and locks key on it)."""
    url = normalize_url(url)
    if local_path(url) is not None:
        return hashlib.sha256(display_url(url).encode()).hexdigest()[:12]
    if url not in _SERVER_IDS:
        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        try:
            with engine.connect() as conn:
                _SERVER_IDS[url] = _server_identity(conn)
        finally:
            engine.dispose()
    return hashlib.sha256(_SERVER_IDS[url].encode()).hexdigest()[:12]


def _lock_key(identity: str) -> int:
    return int(hashlib.sha256(f"evit-storage-lock:{identity}".encode()).hexdigest()[:15], 16)  # a signed 64-bit int


@contextlib.contextmanager
def storage_lock(url: str | None, engine=None) -> Iterator[None]:
    """Exclusive across every process (and machine) using this storage."""
    url = normalize_url(url)
    path = local_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # not "<path>.lock": Optuna's journal backend takes that name for its own lock file, and
        # finding ours there it waited 30 s per access before breaking it
        fd = os.open(f"{path}.evit-lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return
    own = engine is None
    engine = engine or sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as conn:
            dialect = conn.dialect.name
            if url not in _SERVER_IDS:
                _SERVER_IDS[url] = _server_identity(conn)
            key = _lock_key(_SERVER_IDS[url])  # the database's identity: every URL for it takes one lock
            if dialect == "postgresql":
                conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
                unlock = sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key}
            elif dialect in ("mysql", "mariadb"):
                conn.execute(sqlalchemy.text("SELECT GET_LOCK(:k, 600)"), {"k": f"evit-{key}"})
                unlock = sqlalchemy.text("SELECT RELEASE_LOCK(:k)"), {"k": f"evit-{key}"}
            else:
                log.warning("no cross-process lock for %s databases: concurrent workers may repeat work", dialect)
                unlock = None
            conn.commit()
            try:
                yield
            finally:
                if unlock is not None:
                    conn.execute(*unlock)
                    conn.commit()
    finally:
        if own:
            engine.dispose()


def _retrying(what: str, fn: Callable[[], T], attempts: int = 5) -> T:
    """Creating a schema from several processes at once can still collide on servers without the
    lock (e.g. ``UniqueViolation ... pg_type``): such errors are retried, as the other process
    finished what this one started."""
    for i in range(attempts):
        try:
            return fn()
        except StorageError:
            raise
        except Exception as e:  # noqa: BLE001 - sqlalchemy's errors differ per driver; retried, then reported
            text = str(e).lower()
            racy = any(w in text for w in ("already exists", "unique", "duplicate", "database is locked"))
            if not racy or i == attempts - 1:
                raise
            log.info("%s: retrying after %s", what, str(e).splitlines()[0])
            time.sleep(0.2 + random.random())
    raise AssertionError("unreachable")


def open_storage(url: str | None = None, create: bool = True, heartbeat: bool = False):
    """An Optuna storage object, or StorageError with one clear line. ``heartbeat``: workers that
    run trials record heartbeats (RDB storages), so that trials of a worker that died on another
    machine are failed as interrupted after :data:`GRACE_S`."""
    url = normalize_url(url)
    path = local_path(url)
    try:
        if path is not None and not create and not path.exists():
            what = "journal file" if url.startswith("journal:") else "no study database at"
            raise StorageError(f"{what} {path.resolve()} does not exist" if url.startswith("journal:")
                               else f"{what} {path.resolve()} (run `evit-search run` first, or pass --storage)")
        if url.startswith("journal:"):
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        kwargs: dict[str, Any] = {}
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # wait for other writers instead of failing with "database is locked"
            kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
        elif url.startswith("postgresql"):
            kwargs["engine_kwargs"] = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
        if heartbeat:
            kwargs.update(heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
        if not create:
            return RDBStorage(url, **kwargs)
        with storage_lock(url):  # one process creates the schema; the others find it
            return _retrying(f"creating the schema of {display_url(url)}", lambda: RDBStorage(url, **kwargs))
    except StorageError:
        raise
    except ImportError as e:
        raise StorageError(f"storage {display_url(url)}: a driver is missing ({e}); for PostgreSQL: "
                           "pip install 'evit-search[postgres]'") from None
    except Exception as e:  # noqa: BLE001 - sqlalchemy errors: unreachable server, bad URL...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StorageError(f"cannot open storage {display_url(url)}: {first}") from None

