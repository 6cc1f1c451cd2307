"""Upload benchmark: N random unique 12-character codes from a text file into one group.

Measured in one run, each timed part in its own spawned process:

- ``project_per_s`` — the CLI's path (``promocodes codes upload``): ``CodeReader`` over
  the file opened ``"rb"`` → ``uploads.upload_codes(..., source="cli")`` inside one
  ``Database.write()``, into a fresh migrated database; ``peak_rss_mb`` is that
  process's peak RSS.
- ``floor_per_s`` — the raw floor on the same backend: a table ``floor_codes`` with the
  columns and types of ``codes`` (unique ``code``, no other index, no foreign key) filled
  in one transaction by ``sqlite3`` ``executemany`` (WAL, synchronous=FULL, like the
  product) or by psycopg ``COPY … FROM STDIN``; ``floor_rss_mb`` is its peak RSS.
- ``ratio`` = floor_per_s / project_per_s (≥ 1: the project is slower). Target ≤ 1.5.
- ``reupload_overlap_ratio`` — time to upload N codes of which the first 10 % are
  already in the group, over the time of a duplicate-free upload of N codes into the same
  database just before it. Target ≤ 1.5 (SQLite), ≤ 2 (PostgreSQL).
- ``counts_read_ms`` — the slower of two medians (20 runs each, one read transaction
  each): ``service.list_groups`` and ``repository.counts`` for the group, after the
  uploads (``list_groups_ms``, ``counts_ms``). Target < 5 ms at N = 10M.
- Peak RSS of the project's upload: target < 300 MB at N = 10M.

Run: ``.venv/bin/python bench/upload.py --n 1000000 --db postgresql`` (``make bench``
runs every benchmark with its small default N on both backends).
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from _common import (
    BenchDatabase,
    bench_database,
    checkpoint,
    emit,
    median_ms,
    parse_args,
    peak_rss_mb,
    per_second,
    run_in_child,
    say,
    server_version,
    write_codes,
)
from promocodes import migrate
from promocodes.codes import repository, service, uploads
from promocodes.codes.importer import CodeReader
from promocodes.codes.schemas import GroupCreate, UploadReport
from promocodes.db import Database

GROUP_NAME = "bench upload"


@dataclass(frozen=True, slots=True)
class Timed:
    seconds: float
    rss_mb: float


@dataclass(frozen=True, slots=True)
class UploadRun:
    seconds: float
    received: int
    added: int
    already_in_group: int


@dataclass(frozen=True, slots=True)
class ReuploadRun:
    fresh: UploadRun
    overlap: UploadRun
    list_groups_ms: float
    counts_ms: float
    total: int
    rss_mb: float


# --- the project's path -----------------------------------------------------------------


def _upload_file(db: Database, group_ref: str, path: Path) -> UploadRun:
    """Exactly what ``codes_upload`` in ``promocodes/codes/cli.py`` does, minus the bar."""
    started = time.perf_counter()
    with path.open("rb") as stream:
        reader = CodeReader(stream, filename=str(path))
        with db.write() as session:
            target = service.resolve_group(session, group_ref)
            report: UploadReport = uploads.upload_codes(
                session, target.id, reader, source="cli", filename=str(path)
            )
    seconds = time.perf_counter() - started
    return UploadRun(seconds, report.received, report.added, report.already_in_group)


def project_upload(url: str, group_id: int, path: Path) -> tuple[UploadRun, float]:
    """Child process: the measured upload; returns it with this process's peak RSS."""
    db = Database(url)
    try:
        run = _upload_file(db, str(group_id), path)
    finally:
        db.dispose()
    return run, peak_rss_mb()


def project_reupload(url: str, group_id: int, fresh: Path, overlap: Path) -> ReuploadRun:
    """Child process: a duplicate-free upload, then one whose first 10 % already exist,
    then the counts reads."""
    db = Database(url)
    try:
        fresh_run = _upload_file(db, str(group_id), fresh)
        overlap_run = _upload_file(db, str(group_id), overlap)

        def list_groups() -> None:
            with db.read() as session:
                service.list_groups(session)

        def counts() -> None:
            with db.read() as session:
                repository.counts(session, [group_id])

        list_ms = median_ms(list_groups)
        counts_ms = median_ms(counts)
        with db.read() as session:
            total = repository.counts(session, [group_id])[group_id].total
    finally:
        db.dispose()
    return ReuploadRun(fresh_run, overlap_run, list_ms, counts_ms, total, peak_rss_mb())


def prepare_project(url: str) -> int:
    """Migrate the fresh database and create the group; returns its id."""
    db = Database(url)
    try:
        migrate.upgrade(db.engine)
        with db.write() as session:
            group_id = service.create_group(session, GroupCreate(name=GROUP_NAME)).id
    finally:
        db.dispose()
    return group_id


# --- the floor --------------------------------------------------------------------------

# The columns and types of ``codes`` (see the migration), the unique code and the status
# check; no other index and no foreign key.
SQLITE_FLOOR_TABLE = """
CREATE TABLE floor_codes (
    id INTEGER NOT NULL PRIMARY KEY,
    code VARCHAR(64) NOT NULL UNIQUE,
    group_id INTEGER NOT NULL,
    upload_id INTEGER,
    status VARCHAR(16) NOT NULL
        CHECK (status IN ('available', 'issued', 'redeemed', 'blocked')),
    valid_until DATETIME,
    created_at DATETIME NOT NULL,
    issued_at DATETIME,
    redeemed_at DATETIME,
    blocked_at DATETIME
)"""

POSTGRES_FLOOR_TABLE = """
CREATE TABLE floor_codes (
    id BIGSERIAL PRIMARY KEY,
    code VARCHAR(64) COLLATE "C" NOT NULL UNIQUE,
    group_id INTEGER NOT NULL,
    upload_id INTEGER,
    status VARCHAR(16) NOT NULL
        CHECK (status IN ('available', 'issued', 'redeemed', 'blocked')),
    valid_until TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    issued_at TIMESTAMPTZ,
    redeemed_at TIMESTAMPTZ,
    blocked_at TIMESTAMPTZ
)"""

FLOOR_COLUMNS = "floor_codes (code, group_id, upload_id, status, created_at)"


def sqlite_floor(path: str, codes: Path) -> Timed:
    """Child process: one ``executemany`` over the file, in one transaction."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(SQLITE_FLOOR_TABLE)
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        started = time.perf_counter()
        with codes.open(encoding="ascii") as lines:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                f"INSERT INTO {FLOOR_COLUMNS} VALUES (?, ?, ?, ?, ?)",
                ((line.rstrip("\n"), 1, 1, "available", now) for line in lines),
            )
            conn.execute("COMMIT")
        seconds = time.perf_counter() - started
    finally:
        conn.close()
    return Timed(seconds, peak_rss_mb())


def postgres_floor(conninfo: str, codes: Path) -> Timed:
    """Child process: ``COPY … FROM STDIN`` of the file's rows, in one transaction."""
    with psycopg.connect(conninfo) as conn:
        conn.execute(POSTGRES_FLOOR_TABLE)
        conn.commit()
        now = datetime.now(UTC)
        started = time.perf_counter()
        with (
            codes.open(encoding="ascii") as lines,
            conn.cursor() as cur,
            cur.copy(f"COPY {FLOOR_COLUMNS} FROM STDIN") as copy,
        ):
            for line in lines:
                copy.write_row((line.rstrip("\n"), 1, 1, "available", now))
        conn.commit()
        seconds = time.perf_counter() - started
    return Timed(seconds, peak_rss_mb())


def drop_floor(bdb: BenchDatabase) -> None:
    """Free the floor's pages before the project runs (its table is no longer needed)."""
    if bdb.backend == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(bdb.floor_target + suffix).unlink(missing_ok=True)
        return
    with psycopg.connect(bdb.floor_target, autocommit=True) as conn:
        conn.execute("DROP TABLE floor_codes")


# --- the run ----------------------------------------------------------------------------


def main() -> None:
    args = parse_args(__doc__.splitlines()[0] if __doc__ else "upload benchmark")
    n, tenth = args.n, args.n // 10
    with bench_database(args.db) as bdb:
        version = server_version(bdb)
        load = os.getloadavg()[0]
        say(f"upload benchmark: n={n:,} on {version}; load {load:.2f}; scratch in {bdb.workdir}")
        # Counters 0..n-1 make the main file, n..2n-1 the duplicate-free second file; the
        # overlapping file starts with the first 10 % of the main file's codes and goes on
        # with codes nobody has seen. Every file is in random-looking (unsorted) order.
        main_file, fresh_file, overlap_file = (
            bdb.workdir / f"{name}.txt" for name in ("codes", "fresh", "overlap")
        )
        started = time.perf_counter()
        write_codes(main_file, [range(n)])
        write_codes(fresh_file, [range(n, 2 * n)])
        write_codes(overlap_file, [range(tenth), range(2 * n, 3 * n - tenth)])
        say(f"  generated 3 files of {n:,} codes in {time.perf_counter() - started:.1f} s")

        if bdb.backend == "sqlite":
            floor = run_in_child(sqlite_floor, bdb.floor_target, main_file)
        else:
            checkpoint(bdb)
            floor = run_in_child(postgres_floor, bdb.floor_target, main_file)
        floor_per_s = per_second(n, floor.seconds)
        say(f"  floor:   {floor.seconds:8.2f} s  {floor_per_s:>10,.0f} codes/s")
        drop_floor(bdb)

        group_id = prepare_project(bdb.url)
        checkpoint(bdb)
        run, rss = run_in_child(project_upload, bdb.url, group_id, main_file)
        if run.added != n:
            raise SystemExit(f"project upload added {run.added:,} codes, expected {n:,}")
        project_per_s = per_second(n, run.seconds)
        say(f"  project: {run.seconds:8.2f} s  {project_per_s:>10,.0f} codes/s  {rss:.0f} MB")

        # Overlap ratio: both uploads go into the same database, duplicate-free first
        # (index n → 2n rows), overlapping second (2n → 2.9n rows). The overlapping one
        # thus works against a larger index than its reference: the ratio is, if
        # anything, pessimistic for the project, never flattering.
        checkpoint(bdb)
        again = run_in_child(project_reupload, bdb.url, group_id, fresh_file, overlap_file)
        if again.fresh.added != n or again.overlap.already_in_group != tenth:
            raise SystemExit(f"unexpected re-upload reports: {again}")
        if again.total != 3 * n - tenth:
            raise SystemExit(f"group counters say {again.total:,}, expected {3 * n - tenth:,}")
        overlap_ratio = again.overlap.seconds / again.fresh.seconds
        say(
            f"  re-upload: duplicate-free {again.fresh.seconds:.2f} s, 10 % already present "
            f"{again.overlap.seconds:.2f} s (×{overlap_ratio:.2f})"
        )
        say(f"  counts: list_groups {again.list_groups_ms:.2f} ms, counts {again.counts_ms:.2f} ms")

    emit(
        "upload",
        args.db,
        n,
        project_per_s=project_per_s,
        floor_per_s=floor_per_s,
        peak_rss_mb=rss,
        floor_rss_mb=floor.rss_mb,
        project_s=run.seconds,
        floor_s=floor.seconds,
        reupload_fresh_s=again.fresh.seconds,
        reupload_overlap_s=again.overlap.seconds,
        reupload_overlap_ratio=overlap_ratio,
        reupload_rss_mb=again.rss_mb,
        list_groups_ms=again.list_groups_ms,
        counts_ms=again.counts_ms,
        counts_read_ms=max(again.list_groups_ms, again.counts_ms),
        batch_size=uploads.DEFAULT_BATCH,
        server=version,
        loadavg_1m_start=round(load, 2),
    )


if __name__ == "__main__":
    main()
