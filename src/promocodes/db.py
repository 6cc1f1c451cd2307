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
import select
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import CursorResult, Engine, Result, create_engine, event, text
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from promocodes.config import Settings
from promocodes.errors import DatabaseBusy
from promocodes.models import sqlite_timestamp

_READONLY = "promocodes_readonly"


def dialect_of(session: Session) -> str:
    """``sqlite`` or ``postgresql``: the backend a session's statements run on."""
    return session.get_bind().dialect.name


def make_engine(url: str, settings: Settings | None = None) -> Engine:
    settings = settings or Settings()
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # As many kept connections as the server's thread pool runs requests at once
        # (anyio's 40, shared by two processes or more with --workers): overflow
        # connections are opened and closed per request, which costs more than the query.
        # JIT off: PostgreSQL compiles a query to machine code once its estimated cost
        # passes a threshold, and a segment count over a million customers passes it;
        # compiling took 1–3 s (``EXPLAIN ANALYZE``'s "JIT: Timing"), more than the
        # count itself. The product's queries are short or set-based scans that JIT
        # does not make faster by as much as it costs.
        # (A URL that sets ``options`` itself is left as given.)
        jit_off = {} if "options" in parsed.query else {"options": "-c jit=off"}
        engine = create_engine(url, pool_size=20, max_overflow=20, connect_args=jit_off)
        event.listen(engine, "checkout", _drop_if_closed_by_server)
        return engine

    pool: dict[str, int] = {}
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # One kept connection per thread-pool thread (anyio runs 40): an overflow
        # connection would be opened, set up (the PRAGMAs below) and closed for a single
        # request. (An in-memory database has a pool of its own kind.)
        pool = {"pool_size": 40, "max_overflow": 10}
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **pool)
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


def _drop_if_closed_by_server(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """Refuse a pooled PostgreSQL connection the server has closed (a restart, an idle
    timeout), so the pool opens a fresh one instead of failing the caller's first
    statement.

    The pool's ``pre_ping`` asks the same with a ``SELECT 1`` round trip (three, with the
    BEGIN and ROLLBACK around it) on every checkout, which cost more than a single issue's
    own statements. An idle connection has nothing to read unless the server has written
    to it, and a server only writes to an idle client to close it (the termination notice,
    then EOF), so a readable socket means a dead connection: one ``poll`` call, no round
    trip. A false alarm would only cost a new connection. Like ``pre_ping``, this cannot
    see a peer that vanished without closing.
    """
    if dbapi_conn.closed:
        raise DisconnectionError("the pooled connection was closed")
    poller = select.poll()
    poller.register(dbapi_conn.fileno(), select.POLLIN)
    if poller.poll(0):
        raise DisconnectionError("the server closed the pooled connection")


def _locked(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return "database is locked" in text or "database is busy" in text


@contextmanager
def _busy_is_retryable() -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    except OperationalError as exc:
        if not _locked(exc):
            raise
        raise DatabaseBusy.after(time.monotonic() - started) from exc


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE/DELETE changed (``Session.execute`` is typed as returning a plain
    ``Result``; for DML it is a ``CursorResult``)."""
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


class Keyed(Protocol):
    @property
    def id(self) -> int: ...


Row = TypeVar("Row", bound=Keyed)


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
            _busy_is_retryable(),
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
            raise DatabaseBusy.after(self._busy_ms / 1000)
        try:
            yield
        finally:
            self._write_lock.release()

    @contextmanager
    def driver_write(self) -> Iterator[Driver]:
        """A write transaction on a pooled driver connection, without a Session (an API
        issue: the Session's bookkeeping cost as much as the statements). Same rules as
        ``write()``: BEGIN IMMEDIATE and this process's write lock on SQLite, a commit
        when the block ends without an exception, a rollback otherwise."""
        with _busy_is_retryable(), self._local_writer(), self._driver() as driver:
            driver.begin()
            try:
                yield driver
            except BaseException:
                driver.rollback()
                raise
            driver.commit()

    @contextmanager
    def driver_read(self) -> Iterator[Driver]:
        """A pooled driver connection for one read statement, without a Session (an API
        ``GET`` of a group: the Session and the ORM cost several times the statement).
        One statement is its own snapshot on both backends (SQLite runs it in autocommit;
        psycopg's implicit transaction ends with the pool's reset, a rollback), so no
        BEGIN is sent; statements that must agree with each other take ``read()``."""
        with _busy_is_retryable(), self._driver() as driver:
            yield driver

    @contextmanager
    def _driver(self) -> Iterator[Driver]:
        fairy = self.engine.raw_connection()
        try:
            yield Driver(fairy.driver_connection, self.engine.dialect, fairy.invalidate)
        finally:
            fairy.close()

    @contextmanager
    def read(self) -> Iterator[Session]:
        with _busy_is_retryable(), self._reader() as session, session.begin():
            yield session

    def ping(self) -> None:
        """One round trip in a read transaction: raises when the database is away."""
        with self.read() as session:
            session.execute(text("SELECT 1"))

    def pages(
        self, fetch: Callable[[Session, int | None], Sequence[Row]], *, size: int
    ) -> Iterator[Sequence[Row]]:
        """Keyset pages, each read in a short read transaction of its own, so a stream of
        millions of rows (an export) never holds a transaction, or all its rows, at once.
        ``fetch(session, after_id)`` returns up to ``size`` rows after that id, in id
        order; a shorter page is the last."""
        after: int | None = None
        while True:
            with self.read() as session:
                rows = fetch(session, after)
            yield rows
            if len(rows) < size:
                return
            after = rows[-1].id

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
    """A driver connection (sqlite3 or psycopg) and the transaction it is in.

    Issuing a code is a handful of prebuilt statements, and SQLAlchemy's per-statement
    work (result wrapping, events, parameter processing) cost more than the database
    did. A Driver is either ``Database.driver_write()``'s own transaction or, through
    ``Driver.of(session)``, the connection under a session's transaction (same BEGIN
    IMMEDIATE, same commit, savepoints included; pending ORM changes are flushed first
    when the session autoflushes, as ``Session.execute`` does; objects already loaded
    are not refreshed, as with any textual statement). Driver errors are re-raised as
    SQLAlchemy's, so callers that handle those keep working.
    """

    __slots__ = ("_dialect", "_invalidate", "conn", "postgres")

    def __init__(
        self, conn: Any, dialect: Dialect, invalidate: Callable[[BaseException], None]
    ) -> None:
        self.conn: Any = conn
        self.postgres = not isinstance(conn, sqlite3.Connection)
        self._dialect = dialect
        self._invalidate = invalidate

    @classmethod
    def of(cls, tx: Session | Driver) -> Driver:
        """The driver of a session's transaction (or the Driver itself)."""
        if isinstance(tx, Driver):
            return tx
        if tx.autoflush:  # what Session.execute would have done
            tx.flush()
        connection = tx.connection()
        return cls(
            connection.connection.driver_connection, connection.dialect, connection.invalidate
        )

    def begin(self) -> None:
        """Start the transaction (psycopg starts one itself at the first statement)."""
        if not self.postgres:
            self._run(lambda: self.conn.execute("BEGIN IMMEDIATE"), "BEGIN IMMEDIATE")

    def commit(self) -> None:
        self._run(
            self.conn.commit if self.postgres else lambda: self.conn.execute("COMMIT"), "COMMIT"
        )

    def rollback(self) -> None:
        if self.postgres or self.conn.in_transaction:
            self._run(self.conn.rollback, "ROLLBACK")

    def _run(self, call: Callable[[], object], what: str) -> None:
        try:
            call()
        except Exception as exc:
            raise self._wrap(exc, what, {}) from exc

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

    def many(self, stmt: RawSQL, rows: Iterable[Sequence[Any] | Mapping[str, Any]]) -> None:
        """Run a statement once per row of parameters (``executemany``): a bulk INSERT
        whose rows the driver binds without a Python call per row."""
        sql = stmt.postgresql if self.postgres else stmt.sqlite
        try:
            if self.postgres:
                with self.conn.cursor() as cursor:
                    cursor.executemany(sql, rows)
            else:
                self.conn.executemany(sql, rows)
        except Exception as exc:
            raise self._wrap(exc, sql, {}) from exc

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
        dialect = self._dialect
        if not isinstance(exc, dialect.loaded_dbapi.Error):
            return exc
        invalidated = dialect.is_disconnect(exc, self.conn, None)
        if invalidated:
            self._invalidate(exc)
        return DBAPIError.instance(
            sql,
            dict(params),
            exc,
            dialect.loaded_dbapi.Error,
            connection_invalidated=invalidated,
            dialect=dialect,
        )
