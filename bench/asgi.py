"""The server's CPU per request, without a socket: the app driven by raw ASGI calls.

``bench/api.py`` measures requests per second with ``wrk``, which on a 2-core machine
shared with other work moves with the machine. This one counts what the figures there
are made of: the process CPU time (every thread: the thread pool too) per request of
``create_app`` called directly, next to the yardstick's (``bench/yardstick.py``), for
the same requests as ``bench/api.py``: an unknown ``/api/v1`` path, ``GET /healthz``,
``GET /api/v1/groups/{id}`` and ``POST …/issue`` with an ``Idempotency-Key``. No HTTP
parsing, no event-loop I/O: the app's own work and its thread hops.

``--profile NAME`` runs one figure under cProfile and prints its top functions (by
cumulative time) instead. Run: ``.venv/bin/python bench/asgi.py --db sqlite --n 3000``.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import os
import pstats
import time
from argparse import ArgumentParser
from collections.abc import Awaitable, Callable
from typing import Any

from _common import bench_database, say
from issue import prepare
from promocodes.apikeys import service as apikeys
from promocodes.app import create_app
from promocodes.config import Settings
from promocodes.db import Database
from yardstick import app as yardstick

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
Request = tuple[str, str, list[tuple[bytes, bytes]], bytes]


async def call(
    app: App, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> int:
    """One request through ``app`` as uvicorn would make it; returns the status."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never leaves
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def measure(
    app: App, requests: Callable[[int], Request], n: int, expect: int, clients: int
) -> tuple[float, float]:
    """CPU µs per request over ``n`` requests, ``clients`` of them in flight at a time
    (as ``wrk``'s connections keep them): the process's, and the event loop thread's
    alone (the rest is the thread pool's: the routes' own work)."""
    for i in range(min(50, n)):  # warm caches (the key cache, the pools, imports)
        await call(app, *requests(-1 - i))

    async def client(first: int) -> None:
        for i in range(first, n, clients):
            status = await call(app, *requests(i))
            if status != expect:
                raise SystemExit(f"{requests(i)[:2]} answered {status}, expected {expect}")

    started, loop_started = time.process_time(), time.thread_time()
    await asyncio.gather(*(client(c) for c in range(clients)))
    loop = time.thread_time() - loop_started
    return (time.process_time() - started) / n * 1e6, loop / n * 1e6


def main() -> None:
    parser = ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--n", type=int, default=3000, help="requests per figure")
    parser.add_argument("--profile", help="one figure's name: profile it instead")
    parser.add_argument("--only", help="one figure's name: measure it alone")
    parser.add_argument("--clients", type=int, default=16, help="requests in flight")
    args = parser.parse_args()
    with bench_database(args.db) as bdb:
        group_id = prepare(bdb.url, codes=2 * args.n + 200, customer_count=2 * args.n + 200)
        db = Database(bdb.url)
        with db.write() as s:
            _, token = apikeys.create(s, "bench")
        settings = Settings(database_url=bdb.url, api_rate_limit_per_minute=0)
        app = create_app(settings, db)
        auth = [(b"authorization", f"Bearer {token}".encode())]
        issue_headers = [*auth, (b"content-type", b"application/json")]

        def issue(i: int) -> Request:
            body = json.dumps({"customer_id": f"bench-{i % (2 * args.n + 200):08d}"}).encode()
            headers = [*issue_headers, (b"idempotency-key", f"k-{i}".encode())]
            return ("POST", f"/api/v1/groups/{group_id}/issue", headers, body)

        figures: dict[str, tuple[App, Callable[[int], Request], int]] = {
            "yardstick_404": (yardstick, lambda i: ("GET", "/nope", [], b""), 404),
            "yardstick_sync": (yardstick, lambda i: ("GET", "/sync", [], b""), 200),
            "api_404": (app, lambda i: ("GET", "/api/v1/nope", auth, b""), 404),
            "healthz": (app, lambda i: ("GET", "/healthz", [], b""), 200),
            "group": (app, lambda i: ("GET", f"/api/v1/groups/{group_id}", auth, b""), 200),
            "issue": (app, issue, 200),
        }
        try:
            if args.profile:
                target, requests, expect = figures[args.profile]
                profiler = cProfile.Profile()
                profiler.enable()
                asyncio.run(measure(target, requests, args.n, expect, args.clients))
                profiler.disable()
                pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(
                    45
                )
                return
            cpu: dict[str, float] = {}
            loop: dict[str, float] = {}
            for name, (target, requests, expect) in figures.items():
                if args.only in (None, name):
                    spent = asyncio.run(measure(target, requests, args.n, expect, args.clients))
                    cpu[name], loop[name] = round(spent[0], 1), round(spent[1], 1)
        finally:
            db.dispose()
    say(f"CPU µs per request, {args.n:,} requests each, in-process ASGI")
    print(json.dumps({"db": args.db, "n": args.n, "cpu_us": cpu, "loop_thread_us": loop}))


if __name__ == "__main__":
    main()
