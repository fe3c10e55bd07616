"""Engines and sessions: one URL picks SQLite (default) or PostgreSQL.

Writers use `session_scope`; on SQLite it takes the write lock up front (BEGIN
IMMEDIATE) and, within a process, queues writers on a Python lock first, which
hands over at once where SQLite's busy handler sleeps in steps of up to 100 ms.
Readers use `read_scope`: one snapshot that takes no write lock (SQLite: a
deferred BEGIN in WAL mode; PostgreSQL: a REPEATABLE READ, READ ONLY
transaction), so a long report never holds up a submit, and a write attempted
in it fails.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, create_engine

from storage.crud import StoreError

DEFAULT_URL = "sqlite:///rlhf.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000
_READ_ONLY = "rlhf_read_only"


def database_url(url: str | None = None) -> str:
    """The store's URL: the argument, else `$RLHF_DB_URL`, else `sqlite:///rlhf.db`."""
    return url or os.environ.get("RLHF_DB_URL") or DEFAULT_URL


def _tune_sqlite(dbapi_connection, _record) -> None:
    # pysqlite's own transaction handling defers BEGIN; `_begin_sqlite` issues it instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _begin_sqlite(connection) -> None:
    """Writers lock up front (so they never fail upgrading a read lock); readers defer and cannot write."""
    query_only = connection.info.get("query_only", False)
    if connection.get_execution_options().get(_READ_ONLY):
        connection.exec_driver_sql("BEGIN")
        if not query_only:
            connection.exec_driver_sql("PRAGMA query_only=ON")
            connection.info["query_only"] = True
    else:
        if query_only:
            connection.exec_driver_sql("PRAGMA query_only=OFF")
            connection.info["query_only"] = False
        connection.exec_driver_sql("BEGIN IMMEDIATE")


_ENGINES: dict[str, Engine] = {}
_WRITERS: dict[str, threading.RLock] = {}


def make_engine(url: str | None = None) -> Engine:
    """A new engine; SQLite gets WAL, a busy timeout and enforced foreign keys on every connection."""
    url = database_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        )
        event.listen(engine, "connect", _tune_sqlite)
        event.listen(engine, "begin", _begin_sqlite)
        return engine
    return create_engine(url, pool_pre_ping=True)


def get_engine(url: str | None = None) -> Engine:
    """A process-wide engine per URL, so sessions share one pool."""
    url = database_url(url)
    if url not in _ENGINES:
        _ENGINES[url] = make_engine(url)
    return _ENGINES[url]


def dispose_engines() -> None:
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()


def _engine(engine: Engine | str | None) -> Engine:
    return engine if isinstance(engine, Engine) else get_engine(engine)


@contextmanager
def _writer_turn(engine: Engine) -> Iterator[None]:
    """On SQLite, this process's writers one at a time; past the busy timeout, SQLite's own lock decides."""
    if engine.dialect.name != "sqlite":
        yield
        return
    lock = _WRITERS.setdefault(str(engine.url), threading.RLock())
    acquired = lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    try:
        yield
    finally:
        if acquired:
            lock.release()


@contextmanager
def session_scope(engine: Engine | str | None = None) -> Iterator[Session]:
    """A write transaction that commits on success and rolls back on any exception."""
    engine = _engine(engine)
    with _writer_turn(engine), Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except OperationalError as error:
            session.rollback()
            refusal = _write_refusal(engine, error)
            if refusal is None:
                raise
            raise refusal from None
        except BaseException:
            session.rollback()
            raise


_READ_ONLY_SIGNS = ("readonly database", "read-only")
_CANNOT_OPEN = "unable to open database file"  # SQLite in WAL mode, when the folder is read-only or gone


def _write_refusal(engine: Engine, error: OperationalError) -> StoreError | None:
    """A store that cannot be written, as one line for the user; the driver's text holds the SQL and its parameters."""
    text = str(error.orig).lower()
    if not any(sign in text for sign in (*_READ_ONLY_SIGNS, _CANNOT_OPEN)):
        return None
    where = (
        sqlite_path(f"sqlite:///{engine.url.database}")
        if engine.dialect.name == "sqlite"
        else engine.url.render_as_string(hide_password=True)
    )
    if _CANNOT_OPEN in text:
        return StoreError(
            f"the store cannot be opened for writing: {where} (its folder is read-only or missing); ask an admin"
        )
    return StoreError(f"the store is read-only: {where}; ask an admin to make it writable")


@contextmanager
def read_scope(engine: Engine | str | None = None) -> Iterator[Session]:
    """A read-only snapshot that never waits for writers nor holds them up.

    Closing it ends the transaction (nothing to commit) and leaves what it loaded readable, detached.
    """
    engine = _engine(engine)
    options = (
        {_READ_ONLY: True}
        if engine.dialect.name == "sqlite"
        else {"postgresql_readonly": True, "isolation_level": "REPEATABLE READ"}
    )
    with Session(engine.execution_options(**options), expire_on_commit=False) as session:
        yield session


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for other databases and in-memory SQLite."""
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[-1]
    if path.startswith("file:"):
        path = path.removeprefix("file:").split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path)
