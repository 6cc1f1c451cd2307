"""Large uploads over real HTTP: streamed to disk, processed in the background, with the
server's memory bounded and the report exact."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from promocodes.db import Database
from tests.factories import assert_counters_exact
from tests.live import live_server


def _wait_done(client: httpx.Client, location: str) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    while (state := client.get(location).json())["status"] == "running":
        assert time.monotonic() < deadline, "upload did not finish in 5 minutes"
        time.sleep(0.2)
    assert state["status"] == "done", state
    assert isinstance(state, dict)
    return state


def _upload(client: httpx.Client, gid: int, **request: Any) -> dict[str, Any]:
    accepted = client.post(f"/api/v1/groups/{gid}/codes", **request)
    assert accepted.status_code == 202, accepted.text
    return _wait_done(client, accepted.headers["location"])


@pytest.mark.slow
def test_5mb_text_and_1m_line_multipart_with_bounded_memory(db: Database) -> None:
    with (
        live_server(db) as server,
        httpx.Client(base_url=server.url, headers=server.headers, timeout=120) as client,
    ):
        gid = client.post("/api/v1/groups", json={"name": "Big"}).json()["id"]
        baseline = server.peak_rss_mb()

        # ~5 MB of text/plain, sent as a stream of chunks; a few bad lines in it.
        lines = 420_000

        def body() -> Iterator[bytes]:
            for start in range(0, lines, 10_000):
                yield "".join(
                    f"T{i:010d}\n" if i % 100_000 else "not a code\n"
                    for i in range(start, start + 10_000)
                ).encode()

        state = _upload(client, gid, content=body(), headers={"Content-Type": "text/plain"})
        report = state["report"]
        assert (report["received"], report["invalid_count"]) == (lines, 5)
        assert report["added"] == lines - 5
        assert [i["line"] for i in report["invalid"]] == [1, 100_001, 200_001, 300_001, 400_001]

        # 1,000,000 lines as a multipart file; 10 % of them already uploaded above.
        payload = "".join(
            f"T{i:010d}\n" if i < 100_000 else f"M{i:010d}\n" for i in range(1_000_000)
        ).encode()
        state = _upload(client, gid, files={"file": ("codes.txt", payload, "text/plain")})
        report = state["report"]
        assert report["received"] == 1_000_000
        assert report["already_in_group"] == 100_000 - 1  # line 0 was "not a code" above
        assert report["added"] == 900_001
        group = client.get(f"/api/v1/groups/{gid}").json()
        assert group["total"] == lines - 5 + 900_001
        peak = server.peak_rss_mb()
    assert_counters_exact(db, gid)
    # The server never holds an upload in memory: 18 MB of uploads grow it far less.
    assert peak - baseline < 120, f"server memory grew {peak - baseline:.0f} MB"
