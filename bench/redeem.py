"""Bulk redemption benchmark: a CSV of N redemptions (code, order id) of a flyer group.

Measured in one run, each timed part in its own spawned process, in the same migrated
database holding 2N codes (N for each side, in two groups):

- ``project_per_s`` — the CLI's path (``promocodes codes redeem``): ``RedemptionReader``
  over the file opened ``"rb"`` → ``bulk_redemption.redeem_file`` inside one
  ``Database.write()`` (batches of 20,000 lines: one SELECT, one conditional UPDATE, one
  INSERT of redemptions, the group's counters bumped once); ``peak_rss_mb`` is that
  process's peak RSS.
- ``floor_per_s`` — the raw floor, on the other N codes: the file read into a temporary
  table (``sqlite3`` ``executemany``, or psycopg ``COPY``), then one ``UPDATE codes …
  FROM`` it marking the codes redeemed, one ``INSERT … SELECT`` of the redemption rows and
  one UPDATE of a counter stripe, in one transaction. No per-line decision, no report.
- ``ratio`` = floor_per_s / project_per_s (≥ 1: the project is slower). Target ≤ 2.0.

Run: ``.venv/bin/python bench/redeem.py --n 100000 --db postgresql``.
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
    bench_database,
    checkpoint,
    code_for,
    emit,
    parse_args,
    peak_rss_mb,
    per_second,
    run_in_child,
    say,
    server_version,
    write_codes,
)
from promocodes import migrate
from promocodes.codes import bulk_redemption, service, uploads
from promocodes.codes.importer import CodeReader
from promocodes.codes.redemption_file import RedemptionReader
from promocodes.codes.schemas import GroupCreate
from promocodes.db import Database
from promocodes.models import sqlite_timestamp


@dataclass(frozen=True, slots=True)
class Timed:
    seconds: float
    rows: int
    rss_mb: float


def write_redemptions(path: Path, counters: range) -> None:
    """``code,order_id`` lines for the codes numbered ``counters`` (one order a code)."""
    with path.open("w", encoding="ascii", newline="\n") as out:
        out.write("code,order_id\n")
        for i in counters:
            out.write(f"{code_for(i)},order-{i}\n")


def prepare(url: str, codes: list[Path]) -> list[int]:
    """Migrate the fresh database; one flyer group per file of codes, uploaded."""
    db = Database(url)
    try:
        migrate.upgrade(db.engine)
        ids = []
        with db.write() as session:
            for number, path in enumerate(codes):
                group = GroupCreate(name=f"bench redeem {number}", redeem_unissued=True)
                group_id = service.create_group(session, group).id
                with path.open("rb") as stream:
                    uploads.upload_codes(session, group_id, CodeReader(stream), source="cli")
                ids.append(group_id)
    finally:
        db.dispose()
    return ids


def project(url: str, path: Path) -> Timed:
    """Child process: exactly what ``codes redeem FILE`` does, minus the bar."""
    db = Database(url)
    try:
        started = time.perf_counter()
        with path.open("rb") as stream, db.write() as session:
            report = bulk_redemption.redeem_file(session, RedemptionReader(stream))
        seconds = time.perf_counter() - started
    finally:
        db.dispose()
    return Timed(seconds, report.redeemed, peak_rss_mb())


def sqlite_floor(path: str, group_id: int, redemptions: Path) -> Timed:
    """Child process: temp table, UPDATE … FROM, INSERT … SELECT, one counter."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        now = sqlite_timestamp(datetime.now(UTC))
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("CREATE TEMP TABLE t (code TEXT PRIMARY KEY, order_id TEXT)")
        with redemptions.open(encoding="ascii") as lines:
            next(lines)
            conn.executemany(
                "INSERT INTO t VALUES (?, ?)", (line.rstrip("\n").split(",") for line in lines)
            )
        changed = conn.execute(
            "UPDATE codes SET status = 'redeemed', redeemed_at = ? FROM t "
            "WHERE codes.code = t.code AND codes.status = 'available'",
            (now,),
        ).rowcount
        conn.execute(
            "INSERT INTO redemptions (code_id, order_id, redeemed_at) "
            "SELECT c.id, t.order_id, ? FROM t JOIN codes c ON c.code = t.code",
            (now,),
        )
        conn.execute(
            "UPDATE group_counters SET redeemed = redeemed + ?, available = available - ? "
            "WHERE group_id = ? AND slot = 0",
            (changed, changed, group_id),
        )
        conn.execute("COMMIT")
        seconds = time.perf_counter() - started
    finally:
        conn.close()
    return Timed(seconds, changed, peak_rss_mb())


def postgres_floor(conninfo: str, group_id: int, redemptions: Path) -> Timed:
    """Child process: COPY into a temp table, UPDATE … FROM, INSERT … SELECT, a counter."""
    with psycopg.connect(conninfo) as conn:
        now = datetime.now(UTC)
        started = time.perf_counter()
        conn.execute('CREATE TEMP TABLE t (code text COLLATE "C", order_id text) ON COMMIT DROP')
        with (
            redemptions.open(encoding="ascii") as lines,
            conn.cursor() as cur,
            cur.copy("COPY t FROM STDIN (FORMAT csv, HEADER true)") as copy,
        ):
            for block in iter(lambda: lines.read(1 << 20), ""):
                copy.write(block)
        changed = conn.execute(
            "UPDATE codes c SET status = 'redeemed', redeemed_at = %s FROM t "
            "WHERE c.code = t.code AND c.status = 'available'",
            (now,),
        ).rowcount
        conn.execute(
            "INSERT INTO redemptions (code_id, order_id, redeemed_at) "
            "SELECT c.id, t.order_id, %s FROM t JOIN codes c ON c.code = t.code",
            (now,),
        )
        conn.execute(
            "UPDATE group_counters SET redeemed = redeemed + %s, available = available - %s "
            "WHERE group_id = %s AND slot = 0",
            (changed, changed, group_id),
        )
        conn.commit()
        seconds = time.perf_counter() - started
    return Timed(seconds, changed, peak_rss_mb())


def main() -> None:
    args = parse_args(__doc__.splitlines()[0] if __doc__ else "redeem benchmark", default_n=100_000)
    n = args.n
    with bench_database(args.db) as bdb:
        version = server_version(bdb)
        load = os.getloadavg()[0]
        say(f"redeem benchmark: n={n:,} on {version}; load {load:.2f}; scratch in {bdb.workdir}")
        files = [bdb.workdir / f"codes-{i}.txt" for i in (0, 1)]
        write_codes(files[0], [range(n)])
        write_codes(files[1], [range(n, 2 * n)])
        mine, theirs = bdb.workdir / "mine.csv", bdb.workdir / "floor.csv"
        write_redemptions(mine, range(n))
        write_redemptions(theirs, range(n, 2 * n))
        _, floor_group = prepare(bdb.url, files)
        # Both sides work on the same database (same tables, same indexes, 2N codes).
        target = bdb.url.removeprefix("sqlite:///") if bdb.backend == "sqlite" else None

        checkpoint(bdb)
        if target is not None:
            floor = run_in_child(sqlite_floor, target, floor_group, theirs)
        else:
            floor = run_in_child(postgres_floor, bdb.floor_target, floor_group, theirs)
        floor_per_s = per_second(n, floor.seconds)
        say(f"  floor:   {floor.seconds:8.2f} s  {floor_per_s:>10,.0f} lines/s")

        checkpoint(bdb)
        run = run_in_child(project, bdb.url, mine)
        if run.rows != n or floor.rows != n:
            raise SystemExit(f"redeemed {run.rows:,} (project), {floor.rows:,} (floor) of {n:,}")
        project_per_s = per_second(n, run.seconds)
        say(
            f"  project: {run.seconds:8.2f} s  {project_per_s:>10,.0f} lines/s  {run.rss_mb:.0f} MB"
        )

    emit(
        "redeem",
        args.db,
        n,
        project_per_s=project_per_s,
        floor_per_s=floor_per_s,
        peak_rss_mb=run.rss_mb,
        floor_rss_mb=floor.rss_mb,
        project_s=run.seconds,
        floor_s=floor.seconds,
        batch_size=bulk_redemption.DEFAULT_BATCH,
        server=version,
        loadavg_1m_start=round(load, 2),
    )


if __name__ == "__main__":
    main()
