"""Mass mailing throughput: a mailing with one ``promocode`` macro to the outbox, end to end.

Project: ``mailings.send`` (freeze recipients, cut chunks) and workers (1 on SQLite, 2
processes on PostgreSQL) until the mailing is sent: every message rendered in the sandbox,
one code per recipient, issuances, counters and outbox rows committed per chunk.
Floor, same run, on an identical fresh database: set-based SQL that assigns the same
number of codes and writes the same issuance and message rows (bodies built in SQL), plus
bare Jinja rendering of the same template, summed.
Also code assignment alone: the project's per-chunk bulk reservation against a raw
"advance a cursor and mark each code" loop with the same chunk size.
Targets: end-to-end ratio ≤ 2.0; assignment ratio ≤ 2.0.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import jinja2
from sqlalchemy import text

from _common import (
    bench_database,
    emit,
    parse_args,
    peak_rss_mb,
    per_second,
    run_in_child,
    say,
    server_version,
)
from promocodes import migrate
from promocodes.codes import batch_repository as claims
from promocodes.codes.importer import read_text
from promocodes.codes.schemas import GroupCreate
from promocodes.codes.service import create_group
from promocodes.codes.uploads import upload_codes
from promocodes.config import Settings
from promocodes.db import Database
from promocodes.messaging import mailings
from promocodes.messaging.schemas import MailingCreate
from promocodes.models import utcnow
from promocodes.segments import service as segments
from promocodes.segments.schemas import SegmentCreate
from promocodes.worker import Worker

SUBJECT = "A gift for you, {{ client.first_name }}"
BODY = (
    "Dear {{ client.first_name }},\n\nthank you for shopping with us. Your personal code "
    "is {{ client.promocode('G') }} and it is valid until the end of the month.\n\n"
    "See you soon!"
)
CHUNK = 500


def _prepare(url: str, n: int) -> tuple[int, int]:
    """A group with n + 10 % codes, n customers (set-based), a segment of everyone."""
    db = Database(url)
    migrate.upgrade(db.engine)
    with db.write() as s:
        gid = create_group(s, GroupCreate(name="G")).id
        upload_codes(
            s, gid, read_text("\n".join(f"M{i:011d}" for i in range(n + n // 10))), source="cli"
        )
    with db.write() as s:
        if db.dialect == "postgresql":
            numbers = f"SELECT generate_series(1, {n}) AS i"
        else:
            numbers = (
                f"WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r "
                f"WHERE i < {n}) SELECT i FROM r"
            )
        s.execute(
            text(
                "INSERT INTO customers (external_id, email, first_name, attributes, created_at, "
                f"updated_at) SELECT 'c' || i, 'c' || i || '@example.com', 'Name' || i, '{{}}', "
                f":now, :now FROM ({numbers}) AS t"
            ),
            {"now": utcnow() if db.dialect == "postgresql" else utcnow().isoformat(" ")},
        )
        sid = segments.create(
            s,
            SegmentCreate.model_validate(
                {
                    "name": "All",
                    "filter": {
                        "type": "field",
                        "field": "email",
                        "op": "ends_with",
                        "value": "@example.com",
                    },
                }
            ),
        ).id
    db.dispose()
    return gid, sid


def _work(url: str) -> None:
    db = Database(url)
    worker = Worker(db, Settings(database_url=url))
    idle = 0
    while idle < 3:
        idle = 0 if worker.run_once() else idle + 1
    db.dispose()


def project(url: str, sid: int, workers: int) -> tuple[float, float]:
    db = Database(url)
    with db.write() as s:
        mid = mailings.create(
            s,
            MailingCreate(
                name="B", segment_id=sid, subject=SUBJECT, body_text=BODY, chunk_size=CHUNK
            ),
        ).id
    started = time.perf_counter()
    with db.write() as s:
        mailings.send(s, mid, settings=Settings(database_url=url))
    if workers == 1:
        _work(url)
    else:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_work, args=(url,)) for _ in range(workers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
    elapsed = time.perf_counter() - started
    with db.read() as s:
        out = mailings.to_out(s, mailings.get(s, mid))
    assert (out.status, out.rendered) == ("sent", out.total), out
    return elapsed, peak_rss_mb()


def floor_sql(url: str, gid: int, n: int) -> float:
    """Assign n codes and write the issuances and messages set-based, bodies in SQL."""
    db = Database(url)
    cat = "||"
    body = (
        f"'Dear ' {cat} cu.first_name {cat} ', thank you for shopping with us. Your "
        f"personal code is ' {cat} co.code {cat} ' and it is valid until the end of the "
        "month. See you soon!'"
    )
    started = time.perf_counter()
    with db.write() as s:
        # Pair the i-th available code with the i-th customer through their ids (both
        # were numbered consecutively by this setup): an index join, no sort.
        offset = s.execute(
            text("SELECT min(id) - 1 FROM codes WHERE group_id = :g"), {"g": gid}
        ).scalar_one()
        s.execute(
            text(
                "CREATE TEMP TABLE pairs AS SELECT co.id AS code_id, co.code, "
                "cu.id AS customer_id, cu.first_name, cu.email FROM codes co "
                "JOIN customers cu ON cu.id = co.id - :offset "
                "WHERE co.group_id = :g AND co.status = 'available'"
            ),
            {"g": gid, "offset": offset},
        )
        s.execute(
            text(
                "UPDATE codes SET status = 'issued', issued_at = CURRENT_TIMESTAMP "
                "WHERE id IN (SELECT code_id FROM pairs)"
            )
        )
        s.execute(
            text(
                "INSERT INTO issuances (key, group_id, kind, customer_id, code_id, source, "
                "issued_at) SELECT 'f' || customer_id, :g, 'initial', customer_id, code_id, "
                "'mailing', CURRENT_TIMESTAMP FROM pairs"
            ),
            {"g": gid},
        )
        s.execute(
            text(
                "INSERT INTO messages (key, customer_id, channel, recipient, subject, body_text, "
                "status, attempts, created_at, sent_at) SELECT 'f' || p.customer_id, "
                "p.customer_id, 'outbox', p.email, 'A gift for you, ' || p.first_name, "
                f"{body.replace('cu.', 'p.').replace('co.', 'p.')}, 'sent', 0, CURRENT_TIMESTAMP,"
                " CURRENT_TIMESTAMP FROM pairs p"
            )
        )
        s.execute(
            text(
                "UPDATE group_counters SET available = available - :n, "
                "issued = issued + :n WHERE group_id = :g AND slot = 0"
            ),
            {"n": n, "g": gid},
        )
    elapsed = time.perf_counter() - started
    db.dispose()
    return elapsed


def floor_render(n: int) -> float:
    env = jinja2.Environment(autoescape=False)
    subject, body = env.from_string(SUBJECT), env.from_string(BODY)

    class Client:
        def __init__(self, i: int) -> None:
            self.first_name = f"Name{i}"
            self.code = f"M{i:011d}"

        def promocode(self, _: str) -> str:
            return self.code

    started = time.perf_counter()
    for i in range(n):
        client = Client(i)
        subject.render(client=client)
        body.render(client=client)
    return time.perf_counter() - started


def assign_project(url: str, gid: int, n: int) -> float:
    db = Database(url)
    started = time.perf_counter()
    for _ in range(0, n, CHUNK):
        with db.write() as s:
            claims.reserve(s, gid, CHUNK, expiring=False, now=utcnow())
    return time.perf_counter() - started


def assign_floor(url: str, gid: int, n: int) -> float:
    """Raw driver: advance a cursor over the group's codes and mark each chunk issued."""
    db = Database(url)
    raw = db.engine.raw_connection()
    cur = raw.cursor()
    # ``group_id + 0``: walk the primary key from the cursor. With a plain ``group_id =``
    # both planners take the group's index instead and sort every code of the group by id
    # for each chunk, which is no floor at all.
    mark = (
        "UPDATE codes SET status = 'issued' WHERE id IN (SELECT id FROM codes WHERE "
        "id > {p} AND group_id + 0 = {p} ORDER BY id LIMIT {p}) RETURNING id"
    )
    mark = mark.format(p="%s" if db.dialect == "postgresql" else "?")
    last = 0
    started = time.perf_counter()
    for _ in range(0, n, CHUNK):
        if db.dialect == "sqlite":
            cur.execute("BEGIN IMMEDIATE")
        cur.execute(mark, (last, gid, CHUNK))
        last = max(row[0] for row in cur.fetchall())
        raw.commit()
    elapsed = time.perf_counter() - started
    raw.close()
    return elapsed


def main() -> None:
    args = parse_args(__doc__ or "", default_n=20_000)
    workers = 1 if args.db == "sqlite" else 2
    # One private database at a time (their names derive from this process's id).
    with bench_database(args.db) as a:
        say(f"mailing: {args.n:,} recipients on {server_version(a)}, {workers} worker(s)")
        _, sid = _prepare(a.url, args.n)
        seconds, rss = run_in_child(project, a.url, sid, workers)
        say(f"  project: {seconds:.2f} s ({per_second(args.n, seconds):,.0f} messages/s)")
    with bench_database(args.db) as b:
        gid_b, _ = _prepare(b.url, args.n)
        sql_s = run_in_child(floor_sql, b.url, gid_b, args.n)
    render_s = run_in_child(floor_render, args.n)
    floor_s = sql_s + render_s
    say(f"  floor: SQL {sql_s:.2f} s + bare Jinja {render_s:.2f} s = {floor_s:.2f} s")
    with bench_database(args.db) as c:
        gid_c, _ = _prepare(c.url, args.n)
        assign_s = run_in_child(assign_project, c.url, gid_c, args.n)
    with bench_database(args.db) as d:
        gid_d, _ = _prepare(d.url, args.n)
        assign_floor_s = run_in_child(assign_floor, d.url, gid_d, args.n)
    say(f"  assignment: project {assign_s:.2f} s, cursor floor {assign_floor_s:.2f} s")
    emit(
        "mailing",
        args.db,
        args.n,
        project_per_s=per_second(args.n, seconds),
        floor_per_s=per_second(args.n, floor_s),
        peak_rss_mb=rss,
        workers=workers,
        project_s=seconds,
        floor_sql_s=sql_s,
        floor_render_s=render_s,
        assign_s=assign_s,
        assign_floor_s=assign_floor_s,
        assign_ratio=assign_s / assign_floor_s,
    )


if __name__ == "__main__":
    main()
