"""Engine and transactions: the one place that commits.

SQLite needs care to be safe under concurrency:
- WAL so readers never block the writer;
- ``synchronous=FULL``: with NORMAL a power loss can undo a committed claim whose code
  was already sent to a customer;
- ``BEGIN IMMEDIATE`` for write transactions, so two writers never both read and then
  fail to upgrade their lock (SQLITE_BUSY mid-transaction cannot be retried by waiting).
  pysqlite opens transactions lazily on its own, so we switch that off and emit BEGIN
  ourselves (SQLAlchemy's documented recipe).
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from promocodes.config import Settings
from promocodes.errors import DomainError
from promocodes.models import sqlite_timestamp

_READONLY = "promocodes_readonly"


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, settings: Settings | None = None) -> Engine:
    settings = settings or Settings()
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    busy_ms = settings.sqlite_busy_timeout_ms

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, see module doc
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        readonly = conn.get_execution_options().get(_READONLY, False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


class DatabaseBusy(DomainError):
    """SQLite stayed locked by another writer for the whole busy timeout. Nothing was
    written; the same request can simply be sent again."""

    slug = "database-busy"
    status = 503
    title = "Database busy"
    retry_after = 1


def _locked(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return "database is locked" in text or "database is busy" in text


@contextmanager
def _busy_is_retryable(busy_ms: int) -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        if not _locked(exc):
            raise
        raise DatabaseBusy(
            f"the database is busy with another writer (waited {busy_ms / 1000:g} s); "
            "nothing was changed, retry in a moment"
        ) from exc


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE/DELETE changed (``Session.execute`` is typed as returning a plain
    ``Result``; for DML it is a ``CursorResult``)."""
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


class Database:
    """Owns the engine and hands out transactions.

    ``write()`` is a read-write transaction (``BEGIN IMMEDIATE`` on SQLite); ``read()``
    a read-only one that never takes the write lock. Services only ``flush()``; the
    transaction commits when the ``with`` block ends without an exception.
    """

    def __init__(self, url: str, settings: Settings | None = None) -> None:
        self.url = url
        self.engine = make_engine(url, settings)
        self._busy_ms = (settings or Settings()).sqlite_busy_timeout_ms
        self._writer = sessionmaker(self.engine, expire_on_commit=False)
        self._reader = sessionmaker(
            self.engine.execution_options(**{_READONLY: True}), expire_on_commit=False
        )
        # SQLite admits one writer at a time. Threads of this process queue here, handing
        # the lock over at once, instead of in SQLite's busy handler, which polls with
        # sleeps of up to 100 ms. Other processes still meet the busy timeout.
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Session]:
        with (
            _busy_is_retryable(self._busy_ms),
            self._local_writer(),
            self._writer() as session,
            session.begin(),
        ):
            yield session

    @contextmanager
    def _local_writer(self) -> Iterator[None]:
        """This process's turn to write on SQLite: waits no longer than SQLite's own busy
        timeout would (a long upload must not hang every other writer of the process)."""
        if self._write_lock is None:
            yield
            return
        if not self._write_lock.acquire(timeout=self._busy_ms / 1000):
            raise DatabaseBusy(
                f"the database is busy with another writer (waited {self._busy_ms / 1000:g} "
                "s); nothing was changed, retry in a moment"
            )
        try:
            yield
        finally:
            self._write_lock.release()

    @contextmanager
    def read(self) -> Iterator[Session]:
        with _busy_is_retryable(self._busy_ms), self._reader() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


# --- the driver's own connection, for the hottest paths -------------------------------


@dataclass(frozen=True, slots=True)
class RawSQL:
    """One prebuilt statement in both drivers' parameter styles: written with ``:name``
    (sqlite3's named style), converted once to ``%(name)s`` for psycopg."""

    sqlite: str
    postgresql: str

    @classmethod
    def of(cls, sql: str) -> RawSQL:
        if "%" in sql or "::" in sql:
            raise ValueError("raw statements use :name parameters only (no %, no ::casts)")
        return cls(sql, re.sub(r":(\w+)", r"%(\1)s", sql))


class Driver:
    """The driver connection (sqlite3 or psycopg) under a session's transaction.

    Issuing a code is a handful of prebuilt statements, and SQLAlchemy's per-statement
    work (result wrapping, events, parameter processing) cost more than the database
    did. Statements run here are part of the session's transaction (same BEGIN
    IMMEDIATE, same commit, savepoints included). Pending ORM changes are flushed first
    when the session autoflushes, as ``Session.execute`` does; objects already loaded
    are not refreshed, as with any textual statement. Driver errors are re-raised as
    SQLAlchemy's, so callers that handle those keep working.
    """

    __slots__ = ("_session", "conn", "postgres")

    def __init__(self, session: Session) -> None:
        if session.autoflush:  # what Session.execute would have done
            session.flush()
        self._session = session
        self.conn: Any = session.connection().connection.driver_connection
        self.postgres = not isinstance(self.conn, sqlite3.Connection)

    def first(self, stmt: RawSQL, params: Mapping[str, Any]) -> Any:
        """The first row (a tuple) or None."""
        sql = stmt.postgresql if self.postgres else stmt.sqlite
        try:
            return self.conn.execute(sql, params).fetchone()
        except Exception as exc:
            raise self._wrap(exc, sql, params) from exc

    def all(self, stmt: RawSQL, params: Mapping[str, Any]) -> list[Any]:
        """Every row (tuples)."""
        sql = stmt.postgresql if self.postgres else stmt.sqlite
        try:
            return list(self.conn.execute(sql, params).fetchall())
        except Exception as exc:
            raise self._wrap(exc, sql, params) from exc

    def execute(self, stmt: RawSQL, params: Mapping[str, Any]) -> int:
        """Run a statement that returns no rows; the number of rows it changed."""
        sql = stmt.postgresql if self.postgres else stmt.sqlite
        try:
            return int(self.conn.execute(sql, params).rowcount)
        except Exception as exc:
            raise self._wrap(exc, sql, params) from exc

    def bind_time(self, value: datetime) -> Any:
        """A bind value for a UTCDateTime column (SQLite keeps naive UTC text)."""
        return value if self.postgres else sqlite_timestamp(value)

    def read_time(self, value: Any) -> datetime | None:
        """A UTCDateTime column's value as an aware UTC datetime."""
        if value is None:
            return None
        if isinstance(value, str):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def _wrap(self, exc: Exception, sql: str, params: Mapping[str, Any]) -> Exception:
        connection = self._session.connection()
        dialect = connection.dialect
        if not isinstance(exc, dialect.loaded_dbapi.Error):
            return exc
        invalidated = dialect.is_disconnect(exc, self.conn, None)
        if invalidated:
            connection.invalidate(exc)
        return DBAPIError.instance(
            sql,
            dict(params),
            exc,
            dialect.loaded_dbapi.Error,
            connection_invalidated=invalidated,
            dialect=dialect,
        )
