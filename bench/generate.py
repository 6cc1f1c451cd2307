"""Generation benchmark: N codes generated from a pattern into one group, against the
upload floor of the same count.

Measured in one run, each timed part in its own spawned process:

- ``project_per_s`` — the CLI's path (``promocodes codes generate``):
  ``generation.generate(..., "AUT-****-****", N)`` inside one ``Database.write()``, into
  a fresh migrated database (drawing the codes, the batches, the counters, the upload and
  its audit entry); ``peak_rss_mb`` is that process's peak RSS.
- ``floor_per_s`` — the upload floor of ``bench/upload.py`` on the same backend: N
  ready-made codes from a file into a table with the columns of ``codes`` in one
  transaction, by ``sqlite3`` ``executemany`` or psycopg ``COPY``.
- ``ratio`` = floor_per_s / project_per_s. Target ≤ 1.5.

Run: ``.venv/bin/python bench/generate.py --n 1000000 --db postgresql``.
"""

from __future__ import annotations

import os
import time

from _common import (
    bench_database,
    checkpoint,
    emit,
    parse_args,
    peak_rss_mb,
    per_second,
    run_in_child,
    say,
    server_version,
    write_codes,
)
from promocodes.codes import generation, repository
from promocodes.db import Database
from upload import drop_floor, postgres_floor, prepare_project, sqlite_floor

PATTERN = "AUT-****-****"  # 31**8 ≈ 852 billion codes: 10M is far below the 1 % limit


def project_generate(url: str, group_id: int, n: int) -> tuple[float, int, int, float]:
    """Child process: the measured generation; (seconds, added, collisions, peak RSS)."""
    db = Database(url)
    try:
        started = time.perf_counter()
        with db.write() as session:
            done = generation.generate(session, group_id, PATTERN, n, source="cli")
        seconds = time.perf_counter() - started
        with db.read() as session:
            total = repository.counts(session, [group_id])[group_id].total
    finally:
        db.dispose()
    if total != n or done.added != n:
        raise SystemExit(f"generated {done.added:,}, counters say {total:,}, expected {n:,}")
    return seconds, done.added, done.collisions, peak_rss_mb()


def main() -> None:
    args = parse_args(__doc__.splitlines()[0] if __doc__ else "generation benchmark")
    n = args.n
    with bench_database(args.db) as bdb:
        version = server_version(bdb)
        load = os.getloadavg()[0]
        say(f"generate benchmark: n={n:,} on {version}; load {load:.2f}; scratch in {bdb.workdir}")
        codes = bdb.workdir / "codes.txt"
        write_codes(codes, [range(n)])
        if bdb.backend == "sqlite":
            floor = run_in_child(sqlite_floor, bdb.floor_target, codes)
        else:
            checkpoint(bdb)
            floor = run_in_child(postgres_floor, bdb.floor_target, codes)
        floor_per_s = per_second(n, floor.seconds)
        say(f"  floor:   {floor.seconds:8.2f} s  {floor_per_s:>10,.0f} codes/s")
        drop_floor(bdb)
        group_id = prepare_project(bdb.url)
        checkpoint(bdb)
        seconds, added, collisions, rss = run_in_child(project_generate, bdb.url, group_id, n)
        project_per_s = per_second(n, seconds)
        say(
            f"  project: {seconds:8.2f} s  {project_per_s:>10,.0f} codes/s  {rss:.0f} MB "
            f"({collisions:,} drawn again)"
        )
    emit(
        "generate",
        args.db,
        n,
        project_per_s=project_per_s,
        floor_per_s=floor_per_s,
        peak_rss_mb=rss,
        floor_rss_mb=floor.rss_mb,
        project_s=seconds,
        floor_s=floor.seconds,
        added=added,
        collisions=collisions,
        pattern=PATTERN,
        server=version,
        loadavg_1m_start=round(load, 2),
    )


if __name__ == "__main__":
    main()
