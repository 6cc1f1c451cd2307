"""Analytics benchmark: a mailing's redemption figures over N recipients.

Set-up (not timed): a fresh migrated database; two groups, a segment and a mailing made
by the project's services; then, set-based (``INSERT … SELECT`` from
``generate_series`` on PostgreSQL, a recursive CTE on SQLite — never the API), N
customers, 2N codes and 2N issuances: the first N from the mailing into group 1 (issued
over an hour, 2 % voided, 1 % given again as a repeat), the other N from the API into
group 2 (noise the indexes must skip); 20 % of every N redeemed, up to 30 days after
issue; then ``ANALYZE`` (and ``VACUUM`` on PostgreSQL, as autovacuum would have done).

Measured in the same run, for the mailing and for group 1 (both N codes sent):
``project_s`` — ``analytics.service.of_mailing`` / ``of_group`` inside
``Database.read()`` (sent, redeemed, rate, median time to redeem, redemptions by day),
and ``floor_s`` — hand-written queries for the same figures on the raw driver (psycopg /
sqlite3) against the same database: one statement for the totals and the median where
the database has a median (PostgreSQL's ``percentile_cont``), one for the days; on
SQLite the totals, the days and the middle rows, the joins in the same order as the
project's. Each is
the median of 5 runs after a warm-up; the figures must agree. ``ratio`` =
project_s / floor_s. Targets: ratio ≤ 1.5, and the mailing's figures under 1 s at
N = 1,000,000.

Run: ``.venv/bin/python bench/analytics.py --n 1000000 --db postgresql``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from _common import BenchDatabase, bench_database, median_ms, parse_args, say, server_version
from promocodes import migrate
from promocodes.analytics import service
from promocodes.codes import service as groups
from promocodes.codes.schemas import GroupCreate
from promocodes.db import Database
from promocodes.messaging import mailings
from promocodes.messaging.schemas import MailingCreate
from promocodes.segments import service as segments
from promocodes.segments.schemas import SegmentCreate

BASE = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)  # when the mailing went out

# Row g of 1..2n: the first n are the mailing's (group 1), the rest the API's (group 2).
_GROUP = "CASE WHEN g <= {n} THEN 1 ELSE 2 END"
_SOURCE = "CASE WHEN g <= {n} THEN 'mailing' ELSE 'api' END"
_REF = "CASE WHEN g <= {n} THEN '{mailing}' ELSE 'api-key:1' END"
_ISSUED_S = "(g % 3600)"  # issued within the hour after BASE
_REDEEMED_S = "(g % 3600 + (g * 7919) % 2592000)"  # up to 30 days later
_VOIDED = "g % 50 = 7"  # never a redeemed one (g % 5 = 0)


def _pg_statements(n: int, mailing: int) -> list[str]:
    base = f"'{BASE.isoformat()}'::timestamptz"
    every = "FROM generate_series(1::bigint, {m}) AS g"
    fmt = {"n": n, "mailing": mailing}
    at = base + " + interval '1 second' * {s}"
    return [
        "INSERT INTO customers (id, external_id, email, attributes, created_at, updated_at) "
        f"SELECT g, 'c' || g, 'user' || g || '@example.com', '{{}}'::jsonb, {base}, {base} "
        + every.format(m=n),
        "INSERT INTO codes (id, code, group_id, status, created_at, issued_at) SELECT g, "
        f"'BC' || g, {_GROUP.format(**fmt)}, CASE WHEN g % 5 = 0 THEN 'redeemed' ELSE "
        f"'issued' END, {base}, {at.format(s=_ISSUED_S)} " + every.format(m=2 * n),
        "INSERT INTO issuances (id, key, group_id, kind, customer_id, code_id, source, "
        f"source_ref, issued_at, voided_at) SELECT g, 'k' || g, {_GROUP.format(**fmt)}, "
        f"'initial', 1 + (g - 1) % {n}, g, {_SOURCE.format(**fmt)}, {_REF.format(**fmt)}, "
        f"{at.format(s=_ISSUED_S)}, CASE WHEN {_VOIDED} THEN {base} END " + every.format(m=2 * n),
        "INSERT INTO issuances (id, key, group_id, kind, customer_id, code_id, source, "
        f"source_ref, issued_at) SELECT {2 * n} + g, 'k' || g, 1, 'repeat', 1 + (g - 1) % {n}, "
        f"g, 'mailing', '{mailing}', {base} + interval '2 hours' "
        + every.format(m=n)
        + " WHERE g % 100 = 1",
        "INSERT INTO redemptions (code_id, redeemed_at) SELECT g, "
        f"{at.format(s=_REDEEMED_S)} " + every.format(m=2 * n) + " WHERE g % 5 = 0",
    ]


def _sqlite_statements(n: int, mailing: int) -> list[str]:
    base = f"'{BASE.strftime('%Y-%m-%d %H:%M:%S')}'"
    every = "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {m}) "
    fmt = {"n": n, "mailing": mailing}
    at = "strftime('%Y-%m-%d %H:%M:%S', " + base + ", '+' || {s} || ' seconds') || '.000000'"
    stamp = f"{base} || '.000000'"
    return [
        every.format(m=n) + "INSERT INTO customers (id, external_id, email, attributes, "
        f"created_at, updated_at) SELECT g, 'c' || g, 'user' || g || '@example.com', '{{}}', "
        f"{stamp}, {stamp} FROM s",
        every.format(m=2 * n) + "INSERT INTO codes (id, code, group_id, status, created_at, "
        f"issued_at) SELECT g, 'BC' || g, {_GROUP.format(**fmt)}, CASE WHEN g % 5 = 0 THEN "
        f"'redeemed' ELSE 'issued' END, {stamp}, {at.format(s=_ISSUED_S)} FROM s",
        every.format(m=2 * n) + "INSERT INTO issuances (id, key, group_id, kind, customer_id, "
        f"code_id, source, source_ref, issued_at, voided_at) SELECT g, 'k' || g, "
        f"{_GROUP.format(**fmt)}, 'initial', 1 + (g - 1) % {n}, g, {_SOURCE.format(**fmt)}, "
        f"{_REF.format(**fmt)}, {at.format(s=_ISSUED_S)}, CASE WHEN {_VOIDED} THEN {stamp} "
        "END FROM s",
        every.format(m=n) + "INSERT INTO issuances (id, key, group_id, kind, customer_id, "
        f"code_id, source, source_ref, issued_at) SELECT {2 * n} + g, 'k' || g, 1, 'repeat', "
        f"1 + (g - 1) % {n}, g, 'mailing', '{mailing}', {at.format(s='7200')} FROM s "
        "WHERE g % 100 = 1",
        every.format(m=2 * n) + "INSERT INTO redemptions (code_id, redeemed_at) SELECT g, "
        f"{at.format(s=_REDEEMED_S)} FROM s WHERE g % 5 = 0",
    ]


def prepare(bdb: BenchDatabase, n: int) -> int:
    """The data; returns the mailing's id."""
    db = Database(bdb.url)
    try:
        migrate.upgrade(db.engine)
        with db.write() as session:
            for name in ("bench mailing group", "bench api group"):
                groups.create_group(session, GroupCreate(name=name))
            tree = {"type": "field", "field": "email", "op": "ends_with", "value": "@example.com"}
            seg = segments.create(
                session, SegmentCreate.model_validate({"name": "All", "filter": tree})
            )
            mailing = mailings.create(
                session,
                MailingCreate(name="Bench", segment_id=seg.id, subject="Hi", body_text="Hello"),
            ).id
        pg = bdb.backend == "postgresql"
        with db.write() as session:
            for statement in _pg_statements(n, mailing) if pg else _sqlite_statements(n, mailing):
                started = time.perf_counter()
                session.execute(text(statement))
                table = statement.split("INSERT INTO ")[1].split()[0]
                say(f"  {table:>11}: {time.perf_counter() - started:6.1f} s")
    finally:
        db.dispose()
    if pg:
        with psycopg.connect(bdb.floor_target, autocommit=True) as pg_conn:
            pg_conn.execute("VACUUM ANALYZE")
    else:
        lite = sqlite3.connect(_sqlite_path(bdb), isolation_level=None)
        lite.execute("ANALYZE")
        lite.close()
    return mailing


def _sqlite_path(bdb: BenchDatabase) -> str:
    path = make_url(bdb.url).database
    assert path is not None
    return path


# --- the hand-written floor -------------------------------------------------------------

_SENT = "i.kind = 'initial' AND i.voided_at IS NULL"
_PG_TOTALS = (
    "SELECT count(*), count(r.code_id), percentile_cont(0.5) WITHIN GROUP (ORDER BY "
    "extract(epoch FROM r.redeemed_at - i.issued_at)) FROM issuances i LEFT JOIN redemptions "
    f"r ON r.code_id = i.code_id WHERE {{scope}} AND {_SENT}"
)
_PG_DAYS = (
    "SELECT (r.redeemed_at AT TIME ZONE 'UTC')::date, count(*) FROM issuances i JOIN "
    f"redemptions r ON r.code_id = i.code_id WHERE {{scope}} AND {_SENT} GROUP BY 1 ORDER BY 1"
)
_LITE_TOTALS = (
    "SELECT count(*), count(r.code_id) FROM issuances i LEFT JOIN redemptions r "
    f"ON r.code_id = i.code_id WHERE {{scope}} AND {_SENT}"
)
# SQLite's CROSS JOIN keeps the sent codes as the outer loop (its planner would rather
# scan every redemption here): the floor knows that trick too.
_LITE_DAYS = (
    "SELECT substr(r.redeemed_at, 1, 10), count(*) FROM issuances i CROSS JOIN redemptions r "
    f"WHERE r.code_id = i.code_id AND {{scope}} AND {_SENT} GROUP BY 1 ORDER BY 1"
)
_LITE_MEDIAN = (
    "SELECT avg(s) FROM (SELECT (julianday(r.redeemed_at) - julianday(i.issued_at)) * 86400.0 "
    "AS s FROM issuances i CROSS JOIN redemptions r WHERE r.code_id = i.code_id "
    f"AND {{scope}} AND {_SENT} ORDER BY s LIMIT ? OFFSET ?)"
)

Figures = tuple[int, int, int | None, list[tuple[date, int]]]


def floor_figures(raw: Any, pg: bool, scope: str) -> Figures:
    if pg:
        sent, redeemed, median = raw.execute(_PG_TOTALS.format(scope=scope)).fetchone()
        days = raw.execute(_PG_DAYS.format(scope=scope)).fetchall()
    else:
        sent, redeemed = raw.execute(_LITE_TOTALS.format(scope=scope)).fetchone()
        days = raw.execute(_LITE_DAYS.format(scope=scope)).fetchall()
        middle = (2 - redeemed % 2, (redeemed - 1) // 2)
        median = raw.execute(_LITE_MEDIAN.format(scope=scope), middle).fetchone()[0]
        days = [(date.fromisoformat(d), c) for d, c in days]
    return sent, redeemed, None if median is None else round(float(median)), list(days)


# --- measurements -----------------------------------------------------------------------


def measure(bdb: BenchDatabase, mailing: int) -> list[dict[str, Any]]:
    db = Database(bdb.url)
    pg = bdb.backend == "postgresql"
    raw: Any = (
        psycopg.connect(bdb.floor_target, autocommit=True)
        if pg
        else sqlite3.connect(_sqlite_path(bdb), isolation_level=None)
    )
    cases = (
        (
            "mailing",
            service.of_mailing,
            mailing,
            f"i.source = 'mailing' AND i.source_ref = '{mailing}'",
        ),
        ("group", service.of_group, 1, "i.group_id = 1"),
    )
    results = []
    try:
        for name, figures_of, id_, scope in cases:
            got: dict[str, Figures] = {}

            def project(figures_of: Any = figures_of, id_: int = id_, got: Any = got) -> None:
                with db.read() as session:
                    a = figures_of(session, id_)
                got["project"] = (a.sent, a.redeemed, a.median_seconds, a.by_day)

            def floor(scope: str = scope, got: Any = got) -> None:
                got["floor"] = floor_figures(raw, pg, scope)

            project_s = median_ms(project, repetitions=5) / 1000
            floor_s = median_ms(floor, repetitions=5) / 1000
            if got["project"] != got["floor"]:
                raise SystemExit(f"{name}: the project's figures differ from the floor's")
            sent, redeemed, median, days = got["project"]
            ratio = project_s / floor_s
            say(
                f"  {name:8} sent {sent:>9,} redeemed {redeemed:>8,} median {median:>8,} s "
                f"{len(days)} days  project {project_s:6.3f} s  floor {floor_s:6.3f} s  "
                f"×{ratio:.2f}"
            )
            results.append(
                {
                    "name": name,
                    "sent": sent,
                    "redeemed": redeemed,
                    "project_s": round(project_s, 4),
                    "floor_s": round(floor_s, 4),
                    "ratio": round(ratio, 3),
                }
            )
    finally:
        raw.close()
        db.dispose()
    return results


def main() -> None:
    args = parse_args(__doc__.splitlines()[0] if __doc__ else "analytics", default_n=100_000)
    with bench_database(args.db) as bdb:
        version = server_version(bdb)
        load = os.getloadavg()[0]
        say(f"analytics benchmark: n={args.n:,} on {version}; load {load:.2f}")
        started = time.perf_counter()
        mailing = prepare(bdb, args.n)
        say(f"  data generated in {time.perf_counter() - started:.1f} s")
        results = measure(bdb, mailing)
    result = {
        "bench": "analytics",
        "db": args.db,
        "n": args.n,
        "scopes": results,
        "max_ratio": max(r["ratio"] for r in results),
        "max_project_s": max(r["project_s"] for r in results),
        "server": version,
        "loadavg_1m_start": round(load, 2),
        "loadavg_1m_end": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
