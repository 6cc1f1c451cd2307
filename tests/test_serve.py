"""`promocodes serve` as a user starts it: a real process, real HTTP, fresh database."""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from promocodes.app import create_app, for_serving
from promocodes.config import Settings
from promocodes.db import Database


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).parent / "promocodes"
    return subprocess.Popen(
        [str(exe), "serve", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _healthz(proc: subprocess.Popen[bytes], port: int, *, within: float) -> httpx.Response:
    """The first /healthz answer of a server starting up (it must not exit meanwhile)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        except httpx.TransportError:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, f"server did not start within {within:g} s"
            time.sleep(0.2)


def test_serve_migrates_a_fresh_database_and_answers(tmp_path: Path) -> None:
    env = {**os.environ, "PROMOCODES_DATABASE_URL": f"sqlite:///{tmp_path}/var/p.db"}
    port = _free_port()
    proc = _serve(env, "--port", str(port))
    try:
        response = _healthz(proc, port, within=30)
        assert response.status_code == 200
        assert response.json()["status"] == "ok"
        assert (tmp_path / "var" / "p.db").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # A process manager's SIGTERM is a clean stop: the server and its worker thread
    # finish, and the process exits 0 (not killed by the signal it was sent).
    assert proc.returncode == 0, proc.stdout.read() if proc.stdout else ""


def test_healthz_through_the_app(db: Database) -> None:
    client = TestClient(create_app(Settings(database_url=db.url), db))
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == db.dialect


def test_readyz_says_when_migrations_are_pending(db: Database) -> None:
    from promocodes import migrate

    client = TestClient(create_app(Settings(database_url=db.url), db))
    assert client.get("/readyz").json() == {"ready": True}
    migrate.downgrade(db.engine, "0004_segments")
    try:
        response = client.get("/readyz")
        assert response.status_code == 503 and "pending" in response.json()["reason"]
    finally:
        migrate.upgrade(db.engine)


def test_readyz_answers_while_a_writer_holds_the_sqlite_lock(sqlite_db: Database) -> None:
    import sqlite3

    client = TestClient(create_app(Settings(database_url=sqlite_db.url), sqlite_db))
    writer = sqlite3.connect(sqlite_db.engine.url.database or "", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # as a long upload does
    try:
        started = time.monotonic()
        response = client.get("/readyz")
        assert response.json() == {"ready": True}
        assert time.monotonic() - started < 2  # a readiness probe must not queue for writers
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def test_serve_with_two_worker_processes_on_postgresql(pg_url: str) -> None:
    env = {**os.environ, "PROMOCODES_DATABASE_URL": pg_url, "PROMOCODES_LOG_LEVEL": "warning"}
    port = _free_port()
    proc = _serve(env, "--port", str(port), "--workers", "2")
    try:
        response = _healthz(proc, port, within=60)
        assert response.status_code == 200
        assert response.json()["database"] == "postgresql"
        for _ in range(10):
            assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).json() == {"ready": True}
        servers = [
            c
            for c in _children(proc.pid)
            if "multiprocessing" in Path(f"/proc/{c}/cmdline").read_bytes().decode(errors="ignore")
        ]
        assert len(servers) >= 2
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_a_serving_app_keeps_its_start_up_objects_out_of_full_collections(
    sqlite_db: Database,
) -> None:
    """A full collection walked every object the process built at start-up, stalling the
    requests in flight; ``for_serving`` freezes them, so a full pass costs a fraction."""
    app = create_app(Settings(database_url=sqlite_db.url), sqlite_db)

    def full_collection_cpu() -> float:
        started = time.thread_time()
        gc.collect()
        return time.thread_time() - started

    before = min(full_collection_cpu() for _ in range(3))
    try:
        assert for_serving(app) is app
        after = min(full_collection_cpu() for _ in range(3))
        assert gc.get_freeze_count() > 100_000
        assert after < before / 3, (before, after)
    finally:
        gc.unfreeze()
