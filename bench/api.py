"""API benchmark: the issue endpoint under concurrent load over real HTTP on loopback.

Set-up (not timed): a fresh migrated database with one group of enough codes and the
customers, made through the services (see ``bench/issue.py``), and an API key from
``apikeys.service.create``. Then ``promocodes serve --port P`` is started as its own
process (the console script, ``PROMOCODES_DATABASE_URL`` pointing at that database,
``PROMOCODES_LOG_LEVEL=warning`` so no access log is written, and the per-key rate limit
off: every request comes with the one key).

Measured in one run:

- ``http_per_s`` — ``--clients`` concurrent clients (one ``httpx.AsyncClient`` each, with
  keep-alive, all in this process) sending ``POST /api/v1/groups/{id}/issue`` with a
  Bearer token, ``{"customer_id": …}`` of a distinct customer and a distinct
  ``Idempotency-Key``, until ``--n`` requests are done or ``--seconds`` have passed, after
  an untimed warm-up of two requests per client. ``p50_ms`` / ``p99_ms``: latency seen by
  the client. ``errors``: non-200 answers or transport errors — must be 0. Every answer
  must carry a code, and no code may come twice.
- ``inprocess_per_s`` — the comparison: the same issue in one spawned process, the
  service call in a loop (``with db.driver_write(): issuance.issue_initial(...)``, as
  the route), as many times (same bounds), after the server stopped.
- ``route_inprocess_per_s`` — what the route does besides HTTP, in-process: the API key
  check (a read transaction) and ``idempotency.idempotent`` around the same service call
  (a read, the issue's write and the record's write). It splits the gap between the two
  figures above into the route's database work and the HTTP stack.
- ``ratio`` = inprocess_per_s / http_per_s (``_common``'s floor-over-project convention);
  ``peak_rss_mb`` is the server process's peak RSS (VmHWM).

The load generator shares the machine (2 cores here) with the server: its own CPU is part
of what the figures pay for.

Run: ``.venv/bin/python bench/api.py --db postgresql --n 5000 --clients 16``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from argparse import ArgumentParser
from dataclasses import dataclass
from pathlib import Path

import httpx

from _common import (
    BenchArgs,
    bench_database,
    checkpoint,
    emit,
    parse_args,
    per_second,
    run_in_child,
    say,
    server_version,
)
from issue import customer_id, percentile, prepare
from promocodes.apikeys import service as apikeys
from promocodes.codes import issuance
from promocodes.codes.schemas import IssueIn, IssueOut
from promocodes.db import Database, Driver
from promocodes.idempotency import idempotent

DEFAULT_N = 500
DEFAULT_CLIENTS = 16
DEFAULT_SECONDS = 30.0
WARMUP_PER_CLIENT = 2
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class Options:
    clients: int
    seconds: float


def parse(description: str) -> tuple[BenchArgs, Options]:
    """``_common.parse_args`` (``--n`` = requests in all, ``--db``) plus ``--clients`` and
    ``--seconds``, which are taken off the command line first."""
    extra = ArgumentParser(add_help=False)
    extra.add_argument("--clients", type=int, default=DEFAULT_CLIENTS)
    extra.add_argument("--seconds", type=float, default=DEFAULT_SECONDS)
    ns, rest = extra.parse_known_args()
    sys.argv[1:] = rest
    args = parse_args(
        f"{description} Also: --clients C (default {DEFAULT_CLIENTS}), --seconds S "
        f"(time bound of each timed part, default {DEFAULT_SECONDS:g}).",
        DEFAULT_N,
    )
    if ns.clients < 1 or ns.seconds <= 0:
        raise SystemExit("--clients and --seconds must be positive")
    return args, Options(int(ns.clients), float(ns.seconds))


# --- the server -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    script = Path(sys.executable).with_name("promocodes")
    env = {
        **os.environ,
        "PROMOCODES_DATABASE_URL": url,
        "PROMOCODES_LOG_LEVEL": "warning",
        # One API key sends every request: the per-key limit would measure itself.
        "PROMOCODES_API_RATE_LIMIT_PER_MINUTE": "0",
    }
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(script), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    stop_server(server)
    raise SystemExit(f"the server did not answer within {START_TIMEOUT_S:g} s:\n{log.read_text()}")


def peak_rss_of(pid: int) -> float:
    """VmHWM (peak RSS) of a running process, in MiB; NaN where /proc is not there."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


# --- the load ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Load:
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: int
    error_samples: list[str]
    duplicate_codes: int


async def load(
    base_url: str, token: str, group_id: int, indices: range, clients: int, seconds: float
) -> Load:
    """``clients`` concurrent clients share the customer indices; each request takes the
    next one, until they are used up or the time is over."""
    path = f"/api/v1/groups/{group_id}/issue"
    pending = iter(indices)
    latencies: list[float] = []
    errors: list[str] = []
    codes: set[str] = set()
    answered = ok = 0
    deadline = time.monotonic() + seconds

    async def client() -> None:
        nonlocal answered, ok
        headers = {"Authorization": f"Bearer {token}"}
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(
            base_url=base_url, headers=headers, limits=limits, timeout=60
        ) as http:
            for i in pending:  # one iterator for all clients: every index is sent once
                if time.monotonic() >= deadline:
                    break
                started = time.perf_counter()
                try:
                    response = await http.post(
                        path,
                        json={"customer_id": customer_id(i)},
                        headers={"Idempotency-Key": f"http-{i}"},
                    )
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                latencies.append((time.perf_counter() - started) * 1000)
                answered += 1
                body = response.json() if response.status_code == 200 else None
                if body is None or not body.get("code") or body["customer_id"] != customer_id(i):
                    errors.append(f"{response.status_code}: {response.text[:300]}")
                    continue
                codes.add(body["code"])
                ok += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - started
    return Load(answered, wall, latencies, len(errors), errors[:3], ok - len(codes))


# --- the in-process comparison ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InProcess:
    service_ops: int
    service_s: float
    route_ops: int
    route_s: float


def inprocess(url: str, group_id: int, token: str, indices: range, seconds: float) -> InProcess:
    """Child process: the service call in a loop, then the route's work without HTTP."""
    db = Database(url)
    try:

        def issue_in(tx: Driver, i: int, key: str) -> IssueOut:
            got = issuance.issue_initial(
                tx, customer_id(i), group_id, key=key, source="api", source_ref="bench"
            )
            return IssueOut(
                code=got.code,
                kind=got.kind,
                group_id=got.group_id,
                customer_id=got.customer_id,
                issued_at=got.issued_at,
            )

        def issue(i: int, key: str) -> IssueOut:
            with db.driver_write() as tx:
                return issue_in(tx, i, key)

        path = f"/api/v1/groups/{group_id}/issue"

        def route(i: int) -> IssueOut:
            # The api_key dependency, then idempotent() around the issue, as the route.
            with db.read() as session:
                key = apikeys.authenticate(session, token)
            body = IssueIn(customer_id=customer_id(i))
            return idempotent(
                db, key.id, f"route-{i}", path, body, IssueOut, lambda s, k: issue_in(s, i, k)
            )

        issue(indices.start, "service-warmup")
        route(indices.start)
        results: list[tuple[int, float]] = []
        for kind in ("service", "route"):
            done, started = 0, time.perf_counter()
            deadline = time.monotonic() + seconds
            for i in indices:
                if time.monotonic() >= deadline:
                    break
                got = issue(i, f"service-{i}") if kind == "service" else route(i)
                if not got.code:
                    raise SystemExit(f"in-process issue for {customer_id(i)} gave no code")
                done += 1
            results.append((done, time.perf_counter() - started))
    finally:
        db.dispose()
    (service_ops, service_s), (route_ops, route_s) = results
    return InProcess(service_ops, service_s, route_ops, route_s)


# --- the run ----------------------------------------------------------------------------


def main() -> None:
    args, opts = parse(__doc__.splitlines()[0] if __doc__ else "api benchmark")
    n, clients = args.n, opts.clients
    warmup = WARMUP_PER_CLIENT * clients
    with bench_database(args.db) as bdb:
        version = server_version(bdb)
        load_start = os.getloadavg()[0]
        say(
            f"api benchmark: {n:,} requests from {clients} clients (≤ {opts.seconds:g} s) "
            f"on {version}; load {load_start:.2f}"
        )
        # HTTP warm-up + timed requests, then the two in-process loops (+ 1 warm-up
        # each) over the same customers under other keys.
        group_id = prepare(bdb.url, codes=3 * (warmup + n) + 10, customer_count=warmup + n)
        db = Database(bdb.url)
        try:
            with db.write() as session:
                _, token = apikeys.create(session, "bench")
        finally:
            db.dispose()

        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        server = start_server(bdb.url, port, bdb.workdir / "server.log")
        try:
            warm = asyncio.run(load(base_url, token, group_id, range(warmup), clients, 60))
            if warm.errors:
                raise SystemExit(f"warm-up requests failed: {warm.error_samples}")
            checkpoint(bdb)
            timed = range(warmup, warmup + n)
            http = asyncio.run(load(base_url, token, group_id, timed, clients, opts.seconds))
            server_rss = peak_rss_of(server.pid)
        finally:
            stop_server(server)
        http_per_s = per_second(http.requests, http.seconds)
        latencies = sorted(http.latencies_ms)
        p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
        say(
            f"  http:      {http.requests:,} requests in {http.seconds:.2f} s = "
            f"{http_per_s:,.0f}/s  p50 {p50:.1f} ms  p99 {p99:.1f} ms  errors {http.errors}"
        )
        for sample in http.error_samples:
            say(f"    error: {sample}")
        if http.duplicate_codes:
            raise SystemExit(f"{http.duplicate_codes} codes were issued twice over HTTP")

        checkpoint(bdb)
        local = run_in_child(inprocess, bdb.url, group_id, token, timed, opts.seconds)
        inprocess_per_s = per_second(local.service_ops, local.service_s)
        route_per_s = per_second(local.route_ops, local.route_s)
        say(
            f"  in-process: service call {inprocess_per_s:,.0f}/s, route's work without "
            f"HTTP {route_per_s:,.0f}/s; HTTP reaches {http_per_s / inprocess_per_s:.2f}× "
            "the service call"
        )

    emit(
        "api",
        args.db,
        n,
        project_per_s=http_per_s,
        floor_per_s=inprocess_per_s,
        peak_rss_mb=server_rss,
        clients=clients,
        requests=http.requests,
        http_per_s=round(http_per_s),
        p50_ms=round(p50, 2),
        p99_ms=round(p99, 2),
        errors=http.errors,
        inprocess_per_s=round(inprocess_per_s),
        route_inprocess_per_s=round(route_per_s),
        seconds_bound=opts.seconds,
        server=version,
        loadavg_1m_start=round(load_start, 2),
    )


if __name__ == "__main__":
    main()
