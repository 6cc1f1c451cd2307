"""``serve --workers N`` (``PROMOCODES_WORKERS``): N server processes on one port, on
either database, whose request metrics add up across the processes whichever of them
answers the scrape."""

from __future__ import annotations

import re

import httpx

from promocodes.db import Database
from tests.factories import group_with_codes
from tests.live import live_server


def _requests(text: str, route: str) -> float:
    labels = f'method="GET",route="{route}",status="200"'
    pattern = re.escape(f"promocodes_http_requests_total{{{labels}}}") + r" ([\d.e+]+)"
    return sum(float(n) for n in re.findall(pattern, text))


def test_two_processes_answer_and_their_metrics_add_up(db: Database) -> None:
    gid = group_with_codes(db, "G", ["W1"])
    with live_server(db, PROMOCODES_WORKERS="2") as live:
        for _ in range(40):
            answer = httpx.get(f"{live.url}/api/v1/groups/{gid}", headers=live.headers)
            assert answer.status_code == 200
        for _ in range(6):  # several scrapes: whichever process answers, the sum is whole
            scraped = httpx.get(f"{live.url}/metrics").text
            assert _requests(scraped, "/api/v1/groups/{group_id}") == 40
