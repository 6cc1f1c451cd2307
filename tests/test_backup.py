"""`promocodes db backup`: a consistent copy of a SQLite database that is being written."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from sqlalchemy import text

from promocodes.db import Database
from tests.factories import group_with_codes, upload

EXE = Path(sys.executable).parent / "promocodes"


def _run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROMOCODES_DATABASE_URL": url}
    return subprocess.run([str(EXE), "db", *args], env=env, capture_output=True, text=True)


def _counts(conn: sqlite3.Connection) -> tuple[int, int, int]:
    codes = conn.execute("SELECT count(*) FROM codes").fetchone()[0]
    total = conn.execute("SELECT sum(total) FROM group_counters").fetchone()[0]
    groups = conn.execute("SELECT count(*) FROM code_groups").fetchone()[0]
    return int(codes), int(total or 0), int(groups)


def test_backup_while_a_writer_is_active(sqlite_db: Database, tmp_path: Path) -> None:
    gid = group_with_codes(sqlite_db, "Base", [f"B{i:06d}" for i in range(20_000)])
    stop = threading.Event()
    batches = 0

    def writer() -> None:
        nonlocal batches
        while not stop.is_set():
            with sqlite_db.write() as s:
                upload(s, gid, [f"W{batches:04d}-{i:04d}" for i in range(500)])
            batches += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while batches < 2:  # the writer is really going
            stop.wait(0.05)
        done = _run(sqlite_db.url, "backup", str(tmp_path / "copy.db"))
        during = batches
    finally:
        stop.set()
        thread.join()
    assert done.returncode == 0, done.stderr
    assert "Backed up" in done.stdout
    assert during > 2 or batches > 2
    copy = sqlite3.connect(tmp_path / "copy.db")
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    codes, counted, groups = _counts(copy)
    # A snapshot of one commit: whole upload batches only, and the counters agree with it.
    assert codes == counted and groups == 1
    assert (codes - 20_000) % 500 == 0 and codes >= 20_000 + 2 * 500
    copy.close()
    with sqlite_db.read() as s:
        now = int(s.execute(text("SELECT count(*) FROM codes")).scalar_one())
    assert codes <= now
    assert not list(tmp_path.glob("*.partial*"))


def test_backup_of_an_idle_database_equals_it(sqlite_db: Database, tmp_path: Path) -> None:
    group_with_codes(sqlite_db, "A", ["A1", "A2", "A3"])
    assert _run(sqlite_db.url, "backup", str(tmp_path / "b.db")).returncode == 0
    path = sqlite_db.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as live, sqlite3.connect(tmp_path / "b.db") as copy:
        assert _counts(live) == _counts(copy) == (3, 3, 1)
        tables = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        assert live.execute(tables).fetchall() == copy.execute(tables).fetchall()
    again = _run(sqlite_db.url, "backup", str(tmp_path / "b.db"))
    assert again.returncode == 1 and "already exists" in again.stderr


def test_backup_on_postgresql_points_to_pg_dump(pg_url: str, tmp_path: Path) -> None:
    done = _run(pg_url, "backup", str(tmp_path / "x.db"))
    assert done.returncode == 1 and "pg_dump" in done.stderr
    assert not (tmp_path / "x.db").exists()
