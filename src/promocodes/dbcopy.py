"""Copy every table of one database into another, then verify the copy
(``promocodes db copy --to URL``: moving an embedded SQLite installation to PostgreSQL).

- The target is migrated first and must hold no rows: merging two installations would
  need renumbering every id, and ids are what codes, issuances and messages refer to.
- Tables are copied in dependency order, whatever tables the metadata has, with their
  primary keys. The source is read in one read transaction (one consistent snapshot),
  streamed by primary key in batches; the target is written in one transaction, so a
  failed copy leaves it empty and can simply be run again.
- On PostgreSQL the rows go in through ``COPY`` and every serial sequence is then moved
  past the largest id, or the first new row would collide with a copied one.
- Verification compares the row count of every table, and a sample of rows (the first,
  the last and a uniform random sample by primary key) column by column, as the product
  reads them (datetimes in UTC, JSON decoded, booleans), so a type conversion that lost
  something shows up as a difference.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from rich.table import Table as RichTable
from sqlalchemy import Connection, Table, func, select, text, tuple_
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import SQLAlchemyError

from promocodes import migrate
from promocodes.db import Database
from promocodes.errors import Conflict, DomainError
from promocodes.schema import metadata

BATCH_SIZE = 5_000
# Rows compared column by column per table: this many first, last and random rows.
SAMPLE_SIZE = 50

Row = tuple[Any, ...]
Key = tuple[Any, ...]


class TargetNotEmpty(Conflict):
    slug = "target-not-empty"
    title = "The target database already holds data"


class CopyFailed(DomainError):
    slug = "copy-failed"
    title = "The copy failed"


@dataclass
class TableReport:
    table: str
    source_rows: int
    copied_rows: int = 0
    target_rows: int = 0
    sampled: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class Progress:
    """Told where the copy is; the CLI draws bars, tests and library callers ignore it."""

    def table_started(self, table: str, rows: int) -> None:
        pass

    def rows_copied(self, table: str, rows: int) -> None:
        pass


class ProgressBars(Progress):
    """One rich progress bar per table (the CLI)."""

    def __init__(self, console: Console) -> None:
        self._bars = RichProgress(
            TextColumn("{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> ProgressBars:
        self._bars.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._bars.stop()

    def table_started(self, table: str, rows: int) -> None:
        self._tasks[table] = self._bars.add_task(table, total=rows)

    def rows_copied(self, table: str, rows: int) -> None:
        self._bars.advance(self._tasks[table], rows)


def print_report(console: Console, reports: Iterable[TableReport]) -> None:
    """A table of counts per table, then every problem on a line of its own (at most 20
    per table: one wrong conversion would otherwise repeat for every sampled row)."""
    reports = list(reports)
    out = RichTable("table", "source rows", "target rows", "rows compared", "result")
    for r in reports:
        result = "ok" if r.ok else f"[red]{len(r.problems)} problems[/]"
        out.add_row(r.table, f"{r.source_rows:,}", f"{r.target_rows:,}", f"{r.sampled:,}", result)
    console.print(out)
    for r in reports:
        for problem in r.problems[:20]:
            console.print(f"{r.table}: {escape(problem)}", highlight=False, soft_wrap=True)


@dataclass
class _Sample:
    """First, last and reservoir-sampled rows of one table, in bounded memory."""

    size: int
    rng: random.Random
    first: list[Row] = field(default_factory=list)
    last: deque[Row] = field(init=False)
    reservoir: list[Row] = field(default_factory=list)
    seen: int = 0

    def __post_init__(self) -> None:
        self.last = deque(maxlen=self.size)

    def add(self, row: Row) -> None:
        self.seen += 1
        if len(self.first) < self.size:
            self.first.append(row)
            return
        self.last.append(row)
        if len(self.reservoir) < self.size:
            self.reservoir.append(row)
        elif (slot := self.rng.randrange(self.seen - len(self.first))) < self.size:
            self.reservoir[slot] = row

    def rows(self) -> list[Row]:
        return [*self.first, *self.last, *self.reservoir]


def copy_database(
    source: Database,
    target: Database,
    *,
    batch_size: int = BATCH_SIZE,
    sample_size: int = SAMPLE_SIZE,
    progress: Progress | None = None,
    seed: int | None = None,
) -> list[TableReport]:
    """Copy ``source`` into the empty ``target`` and verify; one report per table.

    Raises ``TargetNotEmpty`` before writing anything when the target has rows."""
    progress = progress or Progress()
    migrate.upgrade(target.engine)
    _refuse_non_empty(target)
    tables = list(metadata.sorted_tables)
    rng = random.Random(seed)
    reports: list[TableReport] = []
    samples: dict[str, _Sample] = {}
    with source.read() as read, target.write() as write:
        # SQLite's read transaction is a snapshot already; PostgreSQL's default (read
        # committed) would let tables read later see rows added after earlier ones.
        snapshot = {"isolation_level": "REPEATABLE READ"} if source.dialect == "postgresql" else {}
        src, dst = read.connection(execution_options=snapshot), write.connection()
        for table in tables:
            total = int(src.scalar(select(func.count()).select_from(table)) or 0)
            report = TableReport(table.name, source_rows=total)
            sample = samples[table.name] = _Sample(sample_size, rng)
            progress.table_started(table.name, total)
            try:
                for batch in _stream(src, table, batch_size):
                    _insert(dst, table, batch)
                    for row in batch:
                        sample.add(row)
                    report.copied_rows += len(batch)
                    progress.rows_copied(table.name, len(batch))
            except (SQLAlchemyError, dst.dialect.loaded_dbapi.Error) as exc:
                # COPY goes to the driver directly, so its errors arrive unwrapped.
                first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
                raise CopyFailed(
                    f"copying table {table.name} failed, nothing was written: {first}"
                ) from exc
            reports.append(report)
        if dst.dialect.name == "postgresql":
            _reset_sequences(dst, tables)
    with target.read() as check:
        conn = check.connection()
        for table, report in zip(tables, reports, strict=True):
            _verify(conn, table, report, samples[table.name].rows())
    return reports


def _refuse_non_empty(target: Database) -> None:
    with target.read() as s:
        for table in metadata.sorted_tables:
            if s.scalar(select(1).select_from(table).limit(1)) is not None:
                raise TargetNotEmpty(
                    f"the target database already holds data (table {table.name}); "
                    "copy only into an empty database"
                )


def _stream(conn: Connection, table: Table, batch_size: int) -> Iterable[list[Row]]:
    """The table's rows in primary key order, ``batch_size`` at a time; a server-side
    cursor where the driver has one (pysqlite reads lazily anyway)."""
    query = select(table).order_by(*table.primary_key.columns)
    result = conn.execution_options(yield_per=batch_size).execute(query)
    for partition in result.partitions(batch_size):
        yield [tuple(row) for row in partition]


def _insert(conn: Connection, table: Table, rows: Sequence[Row]) -> None:
    if conn.dialect.name == "postgresql":
        _copy_in(conn, table, rows)
        return
    names = [c.name for c in table.columns]
    conn.execute(table.insert(), [dict(zip(names, row, strict=True)) for row in rows])


def _bind_processors(table: Table, dialect: Dialect) -> list[Callable[[Any], Any] | None]:
    return [c.type.dialect_impl(dialect).bind_processor(dialect) for c in table.columns]


def _copy_in(conn: Connection, table: Table, rows: Sequence[Row]) -> None:
    """``COPY … FROM STDIN``: several times faster than INSERTs for millions of codes.
    Values go through the columns' own bind processing (UTC datetimes, JSON text), as
    an INSERT would; a NULL stays NULL rather than becoming JSON ``null``."""
    processors = _bind_processors(table, conn.dialect)
    quote = conn.dialect.identifier_preparer.quote
    columns = ", ".join(quote(c.name) for c in table.columns)
    raw = conn.connection.driver_connection
    assert raw is not None
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY {quote(table.name)} ({columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(
                [
                    value if value is None or process is None else process(value)
                    for value, process in zip(row, processors, strict=True)
                ]
            )


def _reset_sequences(conn: Connection, tables: Iterable[Table]) -> None:
    """Move each serial sequence past the largest copied id (``is_called=false``: the
    next value handed out is exactly ``max + 1``, or 1 for an empty table)."""
    for table in tables:
        for column in table.primary_key.columns:
            sequence = conn.scalar(
                text("SELECT pg_get_serial_sequence(:table, :column)"),
                {"table": table.name, "column": column.name},
            )
            if sequence is None:
                continue
            top = conn.scalar(select(func.max(column)))
            conn.execute(
                text("SELECT setval(CAST(:sequence AS regclass), :value, false)"),
                {"sequence": sequence, "value": int(top or 0) + 1},
            )


def _verify(conn: Connection, table: Table, report: TableReport, sample: list[Row]) -> None:
    report.target_rows = int(conn.scalar(select(func.count()).select_from(table)) or 0)
    if report.copied_rows != report.source_rows:
        report.problems.append(
            f"source has {report.source_rows:,} rows, {report.copied_rows:,} were read"
        )
    if report.target_rows != report.source_rows:
        report.problems.append(
            f"source has {report.source_rows:,} rows, target {report.target_rows:,}"
        )
    key_columns = list(table.primary_key.columns)
    positions = [list(table.columns).index(c) for c in key_columns]
    expected: dict[Key, Row] = {}
    for row in sample:
        expected[tuple(row[i] for i in positions)] = row
    keys = list(expected)
    found: dict[Key, Row] = {}
    for start in range(0, len(keys), 500):
        part = keys[start : start + 500]
        rows = conn.execute(select(table).where(tuple_(*key_columns).in_(part)))
        for row in rows:
            values = tuple(row)
            found[tuple(values[i] for i in positions)] = values
    report.sampled = len(keys)
    names = [c.name for c in table.columns]
    for key, want in expected.items():
        got = found.get(key)
        if got is None:
            report.problems.append(f"row {_show(key)} is missing from the target")
            continue
        differ = [n for n, a, b in zip(names, want, got, strict=True) if a != b]
        if differ:
            report.problems.append(f"row {_show(key)} differs in {', '.join(differ)}")


def _show(key: Key) -> str:
    return ", ".join(str(k) for k in key)
