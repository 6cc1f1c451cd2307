"""Bodies over their limit are 413 problems however they arrive (declared or chunked, JSON
or a file), JSON code uploads are parsed as they are read, and no upload leaves a file
in the upload folder, whichever way it ends."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from promocodes.db import Database
from tests.api.conftest import client_for


def _problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == slug and body["status"] == status and body["detail"]
    assert isinstance(body, dict)
    return body


def _chunked(total: int, piece: bytes = b'"AAAAAAAAAA", ') -> Iterator[bytes]:
    """A JSON-ish body sent without Content-Length (the limit is found while it streams)."""
    yield b'{"codes": ['
    for _ in range(total // len(piece)):
        yield piece
    yield b'"END"]}'


def test_chunked_json_over_its_limit_is_413_not_400(db: Database, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    with client_for(
        db, max_body_bytes=1000, max_upload_bytes=5000, upload_temp_dir=str(spool)
    ) as api:
        # A JSON call (FastAPI parses the body) and a JSON code upload (spooled).
        too_big = api.post(
            "/api/v1/groups", content=_chunked(2000), headers={"Content-Type": "application/json"}
        )
        _problem(too_big, 413, "payload-too-large")
        gid = api.post("/api/v1/groups", json={"name": "G"}).json()["id"]
        url = f"/api/v1/groups/{gid}/codes"
        for kind in ("application/json", "text/plain", "text/csv"):
            sent = api.post(url, content=_chunked(10_000), headers={"Content-Type": kind})
            _problem(sent, 413, "payload-too-large")
        declared = api.post(url, json={"codes": ["A" * 100] * 100})
        _problem(declared, 413, "payload-too-large")
        imported = api.post(
            "/api/v1/customers/import",
            content=_chunked(10_000),
            headers={"Content-Type": "application/x-ndjson"},
        )
        _problem(imported, 413, "payload-too-large")
        assert api.get(f"/api/v1/groups/{gid}").json()["total"] == 0
    assert list(spool.iterdir()) == []


def test_json_uploads_stream_and_say_what_is_wrong(db: Database, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    with client_for(db, upload_background_bytes=20_000, upload_temp_dir=str(spool)) as api:
        gid = api.post("/api/v1/groups", json={"name": "J"}).json()["id"]
        url = f"/api/v1/groups/{gid}/codes"
        report = api.post(url, json={"codes": ["J1", " J2 ", "bad code", "J1"]}).json()
        assert (report["added"], report["duplicates_in_upload"], report["invalid_count"]) == (
            2,
            1,
            1,
        )
        assert report["invalid"][0]["line"] == 3
        for body, detail in (
            (b"[]", 'body: expected an object {"codes": [...]}'),
            (b"{}", "codes: Field required"),
            (b'{"codes": ["A", 7]}', "codes.1: Input should be a valid string"),
            (b'{"codes": ["A"], "more": 1}', "body.more: Extra inputs are not permitted"),
            (b'{"codes": ["A"', "body: invalid JSON (parse error: premature EOF)"),
        ):
            sent = api.post(url, content=body, headers={"Content-Type": "application/json"})
            assert _problem(sent, 422, "validation-error")["detail"] == detail
        # A JSON body larger than upload_background_bytes runs in the background.
        codes = [f"BG{i:08d}" for i in range(3000)]
        accepted = api.post(url, json={"codes": codes})
        assert accepted.status_code == 202, accepted.text
        state = _wait(api, accepted.headers["location"])
        assert state["status"] == "done" and state["report"]["added"] == 3000
        # A broken one fails in the background, and its file goes too.
        broken = api.post(
            url,
            content=b'{"codes": [' + b'"X1234567890", ' * 2000 + b"7]}",
            headers={"Content-Type": "application/json"},
        )
        state = _wait(api, broken.headers["location"])
        assert state["status"] == "failed" and "codes.2000" in state["error"]
        assert api.get(f"/api/v1/groups/{gid}").json()["total"] == 3002
    assert list(spool.iterdir()) == []


def _wait(api: httpx.Client, location: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while (state := api.get(location).json())["status"] == "running":
        assert time.monotonic() < deadline, "upload did not finish in 30 s"
        time.sleep(0.05)
    assert isinstance(state, dict)
    return state
