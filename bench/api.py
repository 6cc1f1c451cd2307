"""API benchmark: the HTTP path against a bare FastAPI app, with ``wrk`` driving the load.

``wrk`` is Debian's package of the C load generator (``apt-get install wrk``): its CPU per
request is a fraction of a Python client's, so on a 2-core machine shared by client and
server the figures measure the server. Each measurement is ``wrk -t2 -c16 -d{S}s
--latency`` on loopback, one after the other in one run, each after one uncounted
second of the same request (the issue excepted: after the group's):

- the yardstick (``bench/yardstick.py``: no middleware, one sync route, the same uvicorn
  as ``promocodes serve``): an unknown path (its 404) and ``GET /sync``;
- ``promocodes serve`` (the default: one process with its in-process worker), set up with
  one group of codes, customers and one API key, the per-key rate limit off:
  ``GET /api/v1/nope`` (404 through every middleware), ``GET /healthz``,
  ``GET /api/v1/groups/{id}`` (key check + one read), and ``POST …/issue`` with a
  distinct customer and a distinct ``Idempotency-Key`` per request (a Lua script);
- the same issue in-process (``codes.api.issue_work``, the work the route hands to its
  transaction, with its Idempotency-Key record), one ``driver_write()`` transaction
  after the other in a loop, as a script would: the service's own speed, for the HTTP
  cost of an issue. (Over HTTP, issues in flight together share a transaction and its
  commit: ``groupcommit.py``.)

Printed: one JSON line with every figure (requests/s, p99 ms, errors) and the ratios the
targets take (docs/performance.md). Errors are socket errors, and non-2xx answers where
2xx is expected. Run: ``.venv/bin/python bench/api.py --db sqlite --seconds 8``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from argparse import ArgumentParser
from pathlib import Path

import httpx

from _common import bench_database, say, server_version
from issue import customer_id, prepare
from promocodes.apikeys import service as apikeys
from promocodes.codes.api import issue_work
from promocodes.codes.schemas import IssueIn
from promocodes.db import Database

HERE = Path(__file__).parent
CONNECTIONS = 16
# Customers and codes kept for the in-process issue loop (it stops when they run out).
IN_PROCESS = 20_000

ISSUE_LUA = """
local counter = 0
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function request()
  counter = counter + 1
  local i = tid * %(span)d + counter
  local body = string.format('{"customer_id": "bench-%%08d"}', i)
  return wrk.format("POST", "%(path)s", {
    ["Authorization"] = "Bearer %(token)s",
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = string.format("k-%%d-%%d", tid, counter),
  }, body)
end
"""

GET_LUA = """
wrk.headers["Authorization"] = "Bearer %(token)s"
"""


def wrk(
    url: str, seconds: float, script: str | None = None, *, warm: bool = True
) -> dict[str, float]:
    """One wrk run: requests/s, p99 (ms), socket errors and non-2xx/3xx answers. With
    ``warm``, a run of one second first, not counted: the figures are of a server that
    has served the request before (its pool's connections opened, its code paths run),
    as a server in use has; a server's first second would otherwise set the p99."""
    if warm:
        wrk(url, 1.0, script, warm=False)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk (Debian's package)")
    cmd = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--latency", url]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        if script:
            lua.write(script)
    try:
        if script:
            cmd[1:1] = ["-s", lua.name]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(lua.name)
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise SystemExit(f"wrk printed no rate:\n{out}")
    rate = float(found[1])
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "per_s": round(rate, 1),
        "p99_ms": round(float(p99[1]) * scale[p99[2]], 2) if p99 else float("nan"),
        "socket_errors": sum(int(x) for x in socket.groups()) if socket else 0,
        "non_2xx": int(non2xx[1]) if non2xx else 0,
    }


def serve(cmd: list[str], port: int, env: dict[str, str], probe: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(
                f"{cmd[0]} exited: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        try:
            httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{cmd} did not answer in 60 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def in_process(url: str, key_id: int, group_id: int, first: int, seconds: float) -> float:
    """Issues per second of the call the route makes once it has checked the key and
    parsed the body (``codes.api.issue_work``: the issue and its Idempotency-Key record,
    in one transaction), in a loop in this process: the same issue, without HTTP."""
    db = Database(url)
    path = f"/api/v1/groups/{group_id}/issue"
    try:
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds and done < IN_PROCESS:
            body = IssueIn(customer_id=customer_id(first + done))
            with db.driver_write() as tx:
                issue_work(key_id, group_id, body, path, f"ip-{done}")(tx)
            done += 1
        return done / (time.perf_counter() - started)
    finally:
        db.dispose()


def main() -> None:
    parser = ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--workers", type=int, default=1, help="promocodes serve --workers")
    args = parser.parse_args()
    span = 400_000  # customers per wrk thread: more than one run can issue
    with bench_database(args.db) as bdb:
        say(f"api benchmark (wrk, {CONNECTIONS} connections, {args.seconds:g} s each) on "
            f"{server_version(bdb)}")  # fmt: skip
        need = 2 * 20_000
        span = need // 2
        # The wrk issue takes up to ``need``; the in-process loop the rest.
        group_id = prepare(bdb.url, codes=need + IN_PROCESS, customer_count=need + IN_PROCESS)
        db = Database(bdb.url)
        with db.write() as s:
            key, token = apikeys.create(s, "bench")
            key_id = key.id
        db.dispose()
        runs: dict[str, dict[str, float]] = {}

        port = free_port()
        yard = serve(
            [sys.executable, "-m", "uvicorn", "yardstick:app", "--app-dir", str(HERE),
             "--port", str(port), "--no-access-log", "--log-level", "warning"],
            port, dict(os.environ), "/sync",
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            runs["yardstick_404"] = wrk(f"{base}/nope", args.seconds)
            runs["yardstick_sync"] = wrk(f"{base}/sync", args.seconds)
        finally:
            stop(yard)

        port = free_port()
        env = {**os.environ, "PROMOCODES_DATABASE_URL": bdb.url, "PROMOCODES_LOG_LEVEL": "warning",
               "PROMOCODES_API_RATE_LIMIT_PER_MINUTE": "0"}  # fmt: skip
        exe = str(Path(sys.executable).with_name("promocodes"))
        server = serve(
            [exe, "serve", "--port", str(port), "--workers", str(args.workers)],
            port, env, "/healthz",
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            get = GET_LUA % {"token": token}
            runs["api_404"] = wrk(f"{base}/api/v1/nope", args.seconds, get)
            runs["healthz"] = wrk(f"{base}/healthz", args.seconds)
            runs["group"] = wrk(f"{base}/api/v1/groups/{group_id}", args.seconds, get)
            path = f"/api/v1/groups/{group_id}/issue"
            issue = ISSUE_LUA % {"path": path, "token": token, "span": span}
            # Not warmed with itself (the same customers and keys would then be replays):
            # the group's figure just before has used the same pool and server.
            runs["issue"] = wrk(f"{base}{path}", args.seconds, issue, warm=False)
        finally:
            stop(server)
        in_proc = in_process(bdb.url, key_id, group_id, 2 * span, min(args.seconds, 5.0))
    y404, ysync = runs["yardstick_404"]["per_s"], runs["yardstick_sync"]["per_s"]
    ratios = {
        "api_404_of_yardstick_404": runs["api_404"]["per_s"] / y404,
        "healthz_of_yardstick_sync": runs["healthz"]["per_s"] / ysync,
        "group_of_yardstick_sync": runs["group"]["per_s"] / ysync,
        "issue_of_yardstick_sync": runs["issue"]["per_s"] / ysync,
        "issue_of_in_process": runs["issue"]["per_s"] / in_proc,
    }
    f = {
        "db": args.db,
        "workers": args.workers,
        **runs,
        "issue_in_process_per_s": round(in_proc, 1),
        "ratios": {k: round(v, 3) for k, v in ratios.items()},
    }
    print(json.dumps(f))


if __name__ == "__main__":
    main()
