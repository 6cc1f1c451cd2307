"""Structured logs: request ids in and out, JSON lines, the access line, worker records."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from promocodes import logs
from promocodes.apikeys import service as apikeys
from promocodes.app import create_app
from promocodes.config import Settings
from promocodes.db import Database
from promocodes.worker import run_until
from tests.api.conftest import client_for
from tests.factories import SENDING, group_with_codes
from tests.live import free_port
from tests.messaging.test_mailings import EVERYONE, mailing, people, segment


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Our JSON handler, configured as `serve` does, writing into a buffer."""
    root = logging.getLogger()
    level = root.level
    logs.configure(Settings(log_format="json", log_level="info"))
    ours = [h for h in root.handlers if isinstance(h.formatter, logs.JsonFormatter)]
    assert len(ours) == 1
    buffer = io.StringIO()
    assert isinstance(ours[0], logging.StreamHandler)
    ours[0].setStream(buffer)
    try:
        yield buffer
    finally:
        root.removeHandler(ours[0])
        root.setLevel(level)


def _parsed(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_request_id_is_echoed_or_generated(db: Database) -> None:
    client = TestClient(create_app(Settings(database_url=db.url), db))
    given = client.get("/healthz", headers={"X-Request-ID": "req-42.a:b_c"})
    assert given.headers["X-Request-ID"] == "req-42.a:b_c"
    made = client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-ID"])
    assert client.get("/healthz").headers["X-Request-ID"] != made.headers["X-Request-ID"]
    # Unsafe or overlong ids are not echoed into logs and headers: a new one replaces them.
    for bad in ("has space", "x" * 65, 'quote"d', "a{b}"):
        replaced = client.get("/healthz", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert replaced != bad and re.fullmatch(r"[0-9a-f]{32}", replaced)
    # Errors carry it too (a 404 problem from the router, a 413 from the body limit).
    assert client.get("/nope", headers={"X-Request-ID": "r404"}).headers["X-Request-ID"] == "r404"
    small = TestClient(create_app(Settings(database_url=db.url, max_body_bytes=10), db))
    too_big = small.post("/api/v1/groups", content=b"x" * 100, headers={"X-Request-ID": "r413"})
    assert too_big.status_code == 413 and too_big.headers["X-Request-ID"] == "r413"


def test_json_access_line_carries_request_id_and_api_key(
    db: Database, json_lines: io.StringIO
) -> None:
    with client_for(db) as api:
        r = api.post("/api/v1/groups", json={"name": "Logged"}, headers={"X-Request-ID": "rid-1"})
        assert r.status_code == 201
    lines = _parsed(json_lines)
    access = [e for e in lines if e["logger"] == "promocodes.access"]
    assert len(access) == 1
    line = access[0]
    assert line["request_id"] == "rid-1"
    assert (line["method"], line["path"], line["status"]) == ("POST", "/api/v1/groups", 201)
    assert line["level"] == "info" and isinstance(line["duration_ms"], float)
    assert str(line["message"]).startswith("POST /api/v1/groups 201 ")
    assert isinstance(line["api_key_id"], int)
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$", str(line["time"]))


def test_records_logged_inside_a_sync_route_carry_the_request_id(
    db: Database, json_lines: io.StringIO
) -> None:
    app = create_app(Settings(database_url=db.url), db)

    @app.get("/log-something")
    def log_something() -> dict[str, str]:  # runs in the thread pool, like our routes
        logging.getLogger("promocodes.test").warning("inside", extra={"thing": 7})
        return {}

    TestClient(app).get("/log-something", headers={"X-Request-ID": "in-thread"})
    inside = [e for e in _parsed(json_lines) if e["logger"] == "promocodes.test"]
    assert inside == [
        {
            "time": inside[0]["time"],
            "level": "warning",
            "logger": "promocodes.test",
            "message": "inside",
            "request_id": "in-thread",
            "thing": 7,
        }
    ]


def test_a_line_break_in_the_path_cannot_forge_a_log_line(
    db: Database, json_lines: io.StringIO
) -> None:
    client = TestClient(create_app(Settings(database_url=db.url), db))
    forged = "2026-01-01 00:00:00,000 INFO    promocodes.audit admin deleted everything"
    client.get("/x%0A" + forged.replace(" ", "%20"))
    access = [r for r in _parsed(json_lines) if r.get("logger") == "promocodes.access"]
    assert len(access) == 1
    assert "\n" not in str(access[0]["path"]) and "%0A" in str(access[0]["path"])
    assert "\n" not in str(access[0]["message"])


def test_text_format_has_request_id_and_fields() -> None:
    record = logging.makeLogRecord(
        {"name": "promocodes.x", "levelname": "INFO", "msg": "hello %s", "args": ("you",)}
    )
    record.request_id = "abc"
    record.chunk_id = 5
    line = logs.TextFormatter().format(record)
    assert line.endswith("INFO    promocodes.x hello you request_id=abc chunk_id=5")
    access = logging.makeLogRecord(
        {"name": "promocodes.access", "levelname": "INFO", "msg": "GET / 200 1.0ms"}
    )
    for key, value in {"method": "GET", "path": "/", "status": 200, "api_key_id": 3}.items():
        setattr(access, key, value)
    assert logs.TextFormatter().format(access).endswith("GET / 200 1.0ms api_key_id=3")


def test_a_20_mb_detail_makes_a_bounded_line_in_both_formats() -> None:
    """A record carrying a 20 MB detail (in its message, an extra field and its
    exception) is cut to MAX_LINE, each cut marked; the JSON line stays JSON."""
    huge = "x" * 20_000_000
    try:
        raise ValueError(huge)
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.makeLogRecord(
        {"name": "promocodes.x", "levelname": "ERROR", "msg": "failed: %s", "args": (huge,)}
    )
    record.request_id = "abc"
    record.detail = huge
    record.chunk_id = 5
    record.exc_info = exc_info
    text = logs.TextFormatter().format(record)
    first, *traceback = text.split("\n")
    assert len(first) <= logs.MAX_LINE
    assert "failed: xxx" in first and "…[truncated 19,99" in first
    assert "request_id=abc" in first and " chunk_id=5" in first and " detail=xxx" in first
    assert all(len(line) <= logs.MAX_LINE for line in traceback)
    assert len(text) < logs.MAX_LINE + logs.MAX_TRACEBACK + 200
    assert traceback[-1].startswith("ValueError: xxx") and "…[truncated " in traceback[-1]
    line = logs.JsonFormatter().format(record)
    assert "\n" not in line and len(line) < logs.MAX_LINE + logs.MAX_TRACEBACK + 200
    entry = json.loads(line)
    assert len(line) - len(json.dumps(entry["exception"])) <= logs.MAX_LINE
    assert entry["message"].startswith("failed: xxx") and "…[truncated " in entry["message"]
    assert entry["detail"].endswith(" chars]") and entry["chunk_id"] == 5
    assert entry["request_id"] == "abc" and entry["level"] == "error"
    # Short records are untouched.
    record = logging.makeLogRecord({"name": "promocodes.x", "levelname": "INFO", "msg": "ok"})
    record.detail = {"a": 1}
    assert json.loads(logs.JsonFormatter().format(record))["detail"] == {"a": 1}


def test_worker_records_carry_chunk_and_mailing_ids(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    people(db, 3)
    group_with_codes(db, "W", ["W1", "W2", "W3"])
    mid = mailing(db, segment(db, "all", EVERYONE), "{{ client.promocode('W') }}")
    from promocodes.messaging import mailings

    with db.write() as s:
        mailings.send(s, mid, settings=SENDING)
    with caplog.at_level(logging.INFO, logger="promocodes.worker"):
        run_until(db, Settings(database_url=db.url))
    done = [r for r in caplog.records if r.getMessage().startswith("chunk ")]
    assert done, caplog.text
    assert {getattr(r, "mailing_id", None) for r in done} == {mid}
    assert all(isinstance(getattr(r, "chunk_id", None), int) for r in done)
    assert sum(getattr(r, "rendered", 0) for r in done) == 3


def test_a_real_server_logs_json_lines_with_request_ids(
    sqlite_db: Database, tmp_path: Path
) -> None:
    with sqlite_db.write() as s:
        _, token = apikeys.create(s, "logs")
    port = free_port()
    env = {
        **os.environ,
        "PROMOCODES_DATABASE_URL": sqlite_db.url,
        "PROMOCODES_LOG_FORMAT": "json",
        "PROMOCODES_LOG_LEVEL": "info",
    }
    err = tmp_path / "stderr"
    with err.open("wb") as sink:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "promocodes"), "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"{url}/healthz", timeout=2)
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, err.read_text()
                    assert time.monotonic() < deadline, "server did not start within 30 s"
                    time.sleep(0.1)
            headers = {"Authorization": f"Bearer {token}", "X-Request-ID": "live-1"}
            r = httpx.get(f"{url}/api/v1/groups", headers=headers)
            assert r.status_code == 200 and r.headers["x-request-id"] == "live-1"
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    entries = [json.loads(line) for line in err.read_text().splitlines() if line.startswith("{")]
    access = [e for e in entries if e.get("request_id") == "live-1"]
    assert len(access) == 1 and access[0]["logger"] == "promocodes.access", entries
    assert access[0]["status"] == 200 and isinstance(access[0]["api_key_id"], int)
    # uvicorn's own access line is off; its other records go through our JSON handler.
    assert not [e for e in entries if e["logger"] == "uvicorn.access"]
    assert any(e["logger"].startswith("uvicorn") for e in entries), entries
