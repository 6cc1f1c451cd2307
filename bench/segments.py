"""Segments benchmark: count six segments over N customers and 3N issuances.

Set-up (not timed): a fresh migrated database; 20 groups made by the project's service;
then, set-based (``INSERT … SELECT`` from ``generate_series`` on PostgreSQL, a recursive
CTE on SQLite — never the API), N customers with emails and JSON attributes, and 3N
codes and issuances spread pseudo-randomly over the customers (≈ Poisson(3) each, so
some have none), the 20 groups, a year of issue times, 10 % repeats, 2 % voided and 20 %
of the codes redeemed; then ``ANALYZE`` (and ``VACUUM`` on PostgreSQL, as autovacuum
would have done by then).

Measured in the same run, for each segment: ``project_s`` — ``service.count`` on the
parsed filter tree inside ``Database.read()`` (compile + one query), and ``floor_s`` — a
hand-written query for the same question on the raw driver (psycopg / sqlite3) against
the same database: what someone who knows the schema would type, using whatever shortcut
the question allows (e.g. counting distinct customer ids straight from ``issuances``).
Each is the median of 3 runs after a warm-up; the counts must agree. Five segments are
typical; the last two are the largest filters the limits allow (``segments/limits.py``):
``largest_legal_lists``, an ``or`` of three ``in`` lists holding 2,960 values (a city,
an email, an age), exactly ``MAX_COST``; ``largest_legal_history``, an ``or`` of
``MAX_HISTORY`` conditions on issued codes of the costliest kinds. ``ratio`` =
project_s / floor_s. Targets: ratio ≤ 1.5 and every project count ≤ 2 s on PostgreSQL at
N = 1,000,000.

Run: ``.venv/bin/python bench/segments.py --n 1000000 --db postgresql``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from _common import BenchDatabase, bench_database, median_ms, parse_args, say, server_version
from promocodes import migrate
from promocodes.codes import service as groups
from promocodes.codes.schemas import GroupCreate
from promocodes.db import Database
from promocodes.models import sqlite_timestamp
from promocodes.segments import service
from promocodes.segments.limits import MAX_COST, MAX_HISTORY
from promocodes.segments.tree import parse_filter

GROUPS = 20
BASE = datetime(2026, 11, 1, tzinfo=UTC)  # "now" of the generated history
RECENT = BASE - timedelta(days=30)

# (name, filter tree, floor on PostgreSQL, floor on SQLite). Floors take :recent.
SEGMENTS: list[tuple[str, dict[str, Any], str, str]] = []


def _segment(name: str, tree: dict[str, Any], pg: str, lite: str | None = None) -> None:
    SEGMENTS.append((name, tree, pg, lite or pg))


_LIVE = "voided_at IS NULL"
_segment(
    "at_least_2_from_group",
    {"type": "issued_count", "op": "gte", "value": 2, "group_id": 3},
    "SELECT count(*) FROM (SELECT customer_id FROM issuances WHERE group_id = 3 AND "
    f"{_LIVE} GROUP BY customer_id HAVING count(*) >= 2) t",
)
_recent_2 = (
    f"SELECT customer_id FROM issuances WHERE {_LIVE} AND issued_at >= {{t}} "
    "GROUP BY customer_id HAVING count(*) >= 2"
)
_segment(
    "fewer_than_2_last_30_days",
    {"type": "issued_count", "op": "lt", "value": 2, "issued_after": RECENT.isoformat()},
    # Everyone minus those with two or more: customers without issuances need no join.
    f"SELECT (SELECT count(*) FROM customers) - (SELECT count(*) FROM ({_recent_2}) t)",
)
_segment(
    "unredeemed_from_group",
    {"type": "issued_from_group", "group_id": 5, "redeemed": False},
    "SELECT count(DISTINCT i.customer_id) FROM issuances i JOIN codes c ON c.id = i.code_id "
    f"WHERE i.group_id = 5 AND i.{_LIVE} AND c.status <> 'redeemed'",
)
_segment(
    "not_from_group_and_email_domain",
    {
        "type": "and",
        "filters": [
            {"type": "not", "filter": {"type": "issued_from_group", "group_id": 7}},
            {"type": "field", "field": "email", "op": "ends_with", "value": "@example.com"},
        ],
    },
    "SELECT count(*) FROM customers c WHERE c.email LIKE '%@example.com' AND NOT EXISTS "
    f"(SELECT 1 FROM issuances i WHERE i.customer_id = c.id AND i.group_id = 7 AND i.{_LIVE})",
    "SELECT count(*) FROM customers WHERE email LIKE '%@example.com' AND id NOT IN "
    f"(SELECT customer_id FROM issuances WHERE group_id = 7 AND {_LIVE})",
)
_loyal = (
    f"SELECT customer_id FROM issuances WHERE kind = 'initial' AND {_LIVE} "
    "GROUP BY customer_id HAVING count(*) BETWEEN 4 AND 6"
)
_segment(
    "berlin_and_tier_or_loyal",
    {
        "type": "and",
        "filters": [
            {"type": "attribute", "name": "city", "op": "eq", "value": "Berlin"},
            {
                "type": "or",
                "filters": [
                    {"type": "attribute", "name": "tier", "op": "in", "value": ["gold", "silver"]},
                    {"type": "issued_count", "op": "between", "value": [4, 6], "kind": "initial"},
                ],
            },
        ],
    },
    "SELECT count(*) FROM customers WHERE attributes->>'city' = 'Berlin' AND "
    f"(attributes->>'tier' IN ('gold', 'silver') OR id IN ({_loyal}))",
    "SELECT count(*) FROM customers WHERE json_extract(attributes, '$.city') = 'Berlin' AND "
    f"(json_extract(attributes, '$.tier') IN ('gold', 'silver') OR id IN ({_loyal}))",
)

# The largest legal filter: 4 conditions and 2,960 listed values = MAX_COST. Each list
# holds a few values customers have and many they do not.
_CITIES = ["Berlin", *(f"City {i}" for i in range(999))]
_EMAILS = [
    f"user{g}@{('example.com', 'mail.de', 'corp.io', 'shop.fr')[g % 4]}" for g in range(1, 2_000, 2)
]
_AGES = [30, *range(100, 1_059)]
_LISTS = {
    "type": "or",
    "filters": [
        {"type": "attribute", "name": "city", "op": "in", "value": _CITIES},
        {"type": "field", "field": "email", "op": "in", "value": _EMAILS},
        {"type": "attribute", "name": "age", "op": "in", "value": _AGES},
    ],
}
assert 10 * 4 + len(_CITIES) + len(_EMAILS) + len(_AGES) == MAX_COST


def _quoted(values: list[Any]) -> str:
    return ", ".join(f"'{v}'" for v in values)


_segment(
    "largest_legal_lists",
    _LISTS,
    f"SELECT count(*) FROM customers WHERE attributes->>'city' IN ({_quoted(_CITIES)}) "
    f"OR email IN ({_quoted(_EMAILS)}) OR attributes->>'age' IN ({_quoted(_AGES)})",
    f"SELECT count(*) FROM customers WHERE json_extract(attributes, '$.city') IN "
    f"({_quoted(_CITIES)}) OR email IN ({_quoted(_EMAILS)}) OR "
    f"json_extract(attributes, '$.age') IN ({', '.join(map(str, _AGES))})",
)

# The largest legal filter on the issuance history: ``MAX_HISTORY`` conditions, the
# costliest kinds (a join with the codes, a count over every group, a count in a window),
# under an ``or`` so that none can be skipped.
_HISTORY = [
    {"type": "issued_from_group", "group_id": 5, "redeemed": False},
    {"type": "issued_count", "op": "between", "value": [4, 6], "kind": "initial"},
    {"type": "issued_count", "op": "gte", "value": 2, "issued_after": RECENT.isoformat()},
]
assert len(_HISTORY) == MAX_HISTORY
_redeemable_5 = (
    "SELECT i.customer_id FROM issuances i JOIN codes c ON c.id = i.code_id "
    f"WHERE i.group_id = 5 AND i.{_LIVE} AND c.status <> 'redeemed'"
)
_segment(
    "largest_legal_history",
    {"type": "or", "filters": _HISTORY},
    # What someone who knows the schema would type: one union of the three sets.
    f"SELECT count(*) FROM ({_redeemable_5} UNION {_loyal} UNION {_recent_2}) u",
)

# --- data -------------------------------------------------------------------------------

# One row per g in 1..n. A customer's attributes leave ``city`` out for one in six.
_CITY = "CASE (g * 7) % 6 WHEN 0 THEN 'Berlin' WHEN 1 THEN 'Paris' WHEN 2 THEN 'Rome' \
WHEN 3 THEN 'Madrid' WHEN 4 THEN 'Oslo' END"
_TIER = "CASE (g * 13) % 4 WHEN 0 THEN 'gold' WHEN 1 THEN 'silver' WHEN 2 THEN 'bronze' \
ELSE 'none' END"
_EMAIL = "CASE WHEN g % 10 = 0 THEN NULL ELSE 'user' || g || '@' || CASE g % 4 \
WHEN 0 THEN 'example.com' WHEN 1 THEN 'mail.de' WHEN 2 THEN 'corp.io' ELSE 'shop.fr' END END"
# Issuance g: a pseudo-random customer (a quadratic hash: linear ones spread the rows too
# evenly, every customer getting 3), so per-customer counts are about Poisson(3); group
# 1 + g % 20; an issue time in the year before BASE.
_CUSTOMER = "1 + ((g * g) % 2147483629 * 48271 + g * 16807) % 2147483647 % {n}"
_GROUP = f"1 + g % {GROUPS}"
_AGO_S = "(g * 7919) % 31536000"


def _pg_statements(n: int) -> list[str]:
    base = f"'{BASE.isoformat()}'::timestamptz"
    series = "FROM generate_series(1::bigint, {m}) AS g"
    return [
        "INSERT INTO customers (id, external_id, email, first_name, attributes, created_at, "
        f"updated_at) SELECT g, 'c' || g, {_EMAIL}, 'F' || (g % 1000), jsonb_strip_nulls("
        f"jsonb_build_object('city', {_CITY}, 'tier', {_TIER}, 'age', 18 + g % 60)), "
        f"{base} - interval '1 day' * (g % 730), {base} " + series.format(m=n),
        "INSERT INTO codes (id, code, group_id, status, created_at, issued_at) SELECT g, "
        f"'BC' || g, {_GROUP}, CASE WHEN g % 5 = 0 THEN 'redeemed' ELSE 'issued' END, "
        f"{base}, {base} " + series.format(m=3 * n),
        "INSERT INTO issuances (id, key, group_id, kind, customer_id, code_id, source, "
        f"issued_at, voided_at) SELECT g, 'k' || g, {_GROUP}, CASE WHEN g % 10 = 3 THEN "
        f"'repeat' ELSE 'initial' END, {_CUSTOMER.format(n=n)}, g, 'api', "
        f"{base} - interval '1 second' * ({_AGO_S}), CASE WHEN g % 50 = 7 THEN {base} END "
        + series.format(m=3 * n),
    ]


def _sqlite_statements(n: int) -> list[str]:
    base = f"'{BASE.strftime('%Y-%m-%d %H:%M:%S')}'"
    series = "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {m}) "
    attrs = (
        f"CASE WHEN {_CITY} IS NULL THEN json_object('tier', {_TIER}, 'age', 18 + g % 60) "
        f"ELSE json_object('city', {_CITY}, 'tier', {_TIER}, 'age', 18 + g % 60) END"
    )
    stamp = "strftime('%Y-%m-%d %H:%M:%S', {base}, {delta}) || '.000000'"
    return [
        series.format(m=n) + "INSERT INTO customers (id, external_id, email, first_name, "
        f"attributes, created_at, updated_at) SELECT g, 'c' || g, {_EMAIL}, "
        f"'F' || (g % 1000), {attrs}, "
        + stamp.format(base=base, delta="'-' || (g % 730) || ' days'")
        + ", "
        + stamp.format(base=base, delta="'+0 seconds'")
        + " FROM s",
        series.format(m=3 * n) + "INSERT INTO codes (id, code, group_id, status, created_at, "
        f"issued_at) SELECT g, 'BC' || g, {_GROUP}, CASE WHEN g % 5 = 0 THEN 'redeemed' "
        f"ELSE 'issued' END, {base} || '.000000', {base} || '.000000' FROM s",
        series.format(m=3 * n) + "INSERT INTO issuances (id, key, group_id, kind, customer_id, "
        f"code_id, source, issued_at, voided_at) SELECT g, 'k' || g, {_GROUP}, CASE WHEN "
        f"g % 10 = 3 THEN 'repeat' ELSE 'initial' END, {_CUSTOMER.format(n=n)}, g, 'api', "
        + stamp.format(base=base, delta=f"'-' || ({_AGO_S}) || ' seconds'")
        + f", CASE WHEN g % 50 = 7 THEN {base} || '.000000' END FROM s",
    ]


def prepare(bdb: BenchDatabase, n: int) -> None:
    db = Database(bdb.url)
    try:
        migrate.upgrade(db.engine)
        with db.write() as session:
            for i in range(1, GROUPS + 1):
                groups.create_group(session, GroupCreate(name=f"bench group {i}"))
        pg = bdb.backend == "postgresql"
        with db.write() as session:
            for statement in _pg_statements(n) if pg else _sqlite_statements(n):
                started = time.perf_counter()
                session.execute(text(statement))
                table = statement.split("INSERT INTO ")[1].split()[0]
                say(f"  {table:>10}: {time.perf_counter() - started:6.1f} s")
    finally:
        db.dispose()
    if pg:
        with psycopg.connect(bdb.floor_target, autocommit=True) as pg_conn:
            pg_conn.execute("VACUUM ANALYZE")
    else:
        lite = sqlite3.connect(_sqlite_path(bdb), isolation_level=None)
        lite.execute("ANALYZE")
        lite.close()


def _sqlite_path(bdb: BenchDatabase) -> str:
    path = make_url(bdb.url).database
    assert path is not None
    return path


# --- measurements -----------------------------------------------------------------------


def measure(bdb: BenchDatabase) -> list[dict[str, Any]]:
    db = Database(bdb.url)
    pg = bdb.backend == "postgresql"
    raw: Any = (
        psycopg.connect(bdb.floor_target, autocommit=True)
        if pg
        else sqlite3.connect(_sqlite_path(bdb), isolation_level=None)
    )
    results = []
    recent = f"'{RECENT.isoformat()}'" if pg else f"'{sqlite_timestamp(RECENT)}'"
    try:
        for name, raw_tree, pg_sql, lite_sql in SEGMENTS:
            tree = parse_filter(raw_tree)
            floor_sql = (pg_sql if pg else lite_sql).replace("{t}", recent)
            counted: dict[str, int] = {}

            def project(tree: Any = tree, counted: dict[str, int] = counted) -> None:
                with db.read() as session:
                    counted["project"] = service.count(session, tree)

            def floor(sql: str = floor_sql, counted: dict[str, int] = counted) -> None:
                counted["floor"] = raw.execute(sql).fetchone()[0]

            project_s = _median_s(project)
            floor_s = _median_s(floor)
            if counted["project"] != counted["floor"]:
                raise SystemExit(f"{name}: project counted {counted}, the floor differs")
            ratio = project_s / floor_s
            say(
                f"  {name:32} {counted['project']:>9,}  project {project_s:7.3f} s  "
                f"floor {floor_s:7.3f} s  ×{ratio:.2f}"
            )
            results.append(
                {
                    "name": name,
                    "count": counted["project"],
                    "project_s": round(project_s, 4),
                    "floor_s": round(floor_s, 4),
                    "ratio": round(ratio, 3),
                }
            )
    finally:
        raw.close()
        db.dispose()
    return results


def _median_s(fn: Callable[[], object]) -> float:
    return median_ms(fn, repetitions=3, warmup=1) / 1000


def main() -> None:
    args = parse_args(__doc__.splitlines()[0] if __doc__ else "segments", default_n=20_000)
    with bench_database(args.db) as bdb:
        version = server_version(bdb)
        load = os.getloadavg()[0]
        say(f"segments benchmark: n={args.n:,} on {version}; load {load:.2f}")
        started = time.perf_counter()
        prepare(bdb, args.n)
        say(f"  data generated in {time.perf_counter() - started:.1f} s")
        results = measure(bdb)
    result = {
        "bench": "segments",
        "db": args.db,
        "n": args.n,
        "segments": results,
        "max_ratio": max(r["ratio"] for r in results),
        "max_project_s": max(r["project_s"] for r in results),
        "server": version,
        "loadavg_1m_start": round(load, 2),
        "loadavg_1m_end": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
