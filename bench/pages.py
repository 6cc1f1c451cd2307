"""Server time of the groups list page (the Promo codes main page) as the data grows.

The page shows every group's counts from the counter stripes, so its time must stay flat
whether there are 10 or 1,000 groups (it shows one page of 50) and whether a group holds
ten codes or a million (never a count over the codes). Measured in-process through the
real app and a logged-in session (median of 30 requests), beside a raw-SQL floor in the
same run: the same page of groups with their summed counters, read with the raw driver.
``--n`` is the size of the big group (default 1,000,000).
Target: the page's time at 1,000 groups + the big group within 1.5× of its time at 10.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fastapi.testclient import TestClient

from _common import bench_database, emit, parse_args, peak_rss_mb, say, server_version
from promocodes import migrate
from promocodes.app import create_app
from promocodes.codes.importer import read_text
from promocodes.codes.schemas import GroupCreate
from promocodes.codes.service import create_group
from promocodes.codes.uploads import upload_codes
from promocodes.config import Settings
from promocodes.db import Database
from promocodes.users import service as users

FLOOR = (
    "SELECT g.id, g.name, sum(c.total), sum(c.available), sum(c.issued), sum(c.redeemed), "
    "sum(c.blocked) FROM code_groups g JOIN group_counters c ON c.group_id = g.id "
    "WHERE g.archived_at IS NULL AND g.id IN (SELECT id FROM code_groups "
    "WHERE archived_at IS NULL ORDER BY id LIMIT 50) GROUP BY g.id, g.name ORDER BY g.id"
)


def _median_ms(fn: object, repetitions: int = 30) -> float:
    assert callable(fn)
    fn()
    times = []
    for _ in range(repetitions):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _groups(db: Database, start: int, stop: int) -> None:
    with db.write() as s:
        for i in range(start, stop):
            gid = create_group(s, GroupCreate(name=f"Group {i:04d}")).id
            upload_codes(
                s, gid, read_text("\n".join(f"G{i:04d}X{j}" for j in range(10))), source="cli"
            )


def _measure(db: Database, client: TestClient) -> tuple[float, float]:
    def page() -> None:
        response = client.get("/groups")
        assert response.status_code == 200, response.status_code

    raw = db.engine.raw_connection()

    def floor() -> None:
        cur = raw.cursor()
        cur.execute(FLOOR)
        cur.fetchall()
        cur.close()

    try:
        return _median_ms(page), _median_ms(floor)
    finally:
        raw.close()


def main() -> None:
    args = parse_args(__doc__ or "", default_n=1_000_000)
    with bench_database(args.db) as bdb:
        db = Database(bdb.url)
        migrate.upgrade(db.engine)
        with db.write() as s:
            user = users.create_user(s, "bench@example.com", "a long enough password", role="admin")
            token = users.start_session(s, user)
        client = TestClient(create_app(Settings(database_url=bdb.url), db))
        client.cookies.set("pc_session", token)
        say(f"pages: groups list on {server_version(bdb)}")
        _groups(db, 0, 10)
        small_ms, small_floor = _measure(db, client)
        say(f"  10 groups: page {small_ms:.1f} ms, floor {small_floor:.2f} ms")
        _groups(db, 10, 1000)
        many_ms, many_floor = _measure(db, client)
        say(f"  1,000 groups: page {many_ms:.1f} ms, floor {many_floor:.2f} ms")
        with db.write() as s:
            gid = create_group(s, GroupCreate(name="Big")).id
            codes = "\n".join(f"BIG{j:09d}" for j in range(args.n))
            upload_codes(s, gid, read_text(codes), source="cli")
        big_ms, big_floor = _measure(db, client)
        say(f"  + a group of {args.n:,} codes: page {big_ms:.1f} ms, floor {big_floor:.2f} ms")
    growth = big_ms / small_ms
    say(
        f"  target flat (≤ 1.5× from 10 groups to 1,000 + the big group): "
        f"{'met' if growth <= 1.5 else 'MISSED'} ({growth:.2f}×)"
    )
    emit(
        "pages",
        args.db,
        args.n,
        project_per_s=1000 / big_ms,
        floor_per_s=1000 / big_floor,
        peak_rss_mb=peak_rss_mb(),
        page_ms_10=small_ms,
        page_ms_1000=many_ms,
        page_ms_big=big_ms,
        floor_ms_10=small_floor,
        floor_ms_1000=many_floor,
        floor_ms_big=big_floor,
        growth=growth,
    )


if __name__ == "__main__":
    main()
