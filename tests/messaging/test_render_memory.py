"""A template's memory is budgeted: the worst templates found (a 12 KB template that built
700 MB of strings and took a server from 417 MB to 1.1 GB in one render, among others)
fail for their recipient with ``template-limit``, and the server process grows by less
than 50 MB however many of them it is asked to render."""

from __future__ import annotations

import httpx

from promocodes.db import Database
from tests.live import live_server

BIG_LIST = "{% set l = [" + ", ".join(["'a' * 1000000"] * 800) + "] %}{{ l | length }}"
WORST = [
    BIG_LIST,  # ~12 KB of template
    "{{ ('ab ' * 333000).split() | length }}",  # a list of 333,000 small strings
    "{% for i in range(10000) %}{% set x = 'a' * 999999 %}{% endfor %}done",
    "{{ ((range(10000) | list) * 100) | length }}",
    "{% set d = {} %}{% for i in range(10000) %}{% set d = {'k': 'v' * 99999} %}{% endfor %}",
    "{{ (['x' * 999999] * 10) | join('y' * 999999) }}",
    "{% set s = 'a' * 999999 %}{{ [s, s, s, s, s, s, s, s, s, s, s, s] | join | length }}",
    "{{ ('a' * 999999) | list | length }}",
]


def test_the_worst_templates_fail_alone_and_the_server_stays_small(db: Database) -> None:
    assert len(BIG_LIST) > 12_000
    with (
        live_server(db) as server,
        httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as client,
    ):
        warm = client.post("/api/v1/templates/preview", json={"body_text": "{{ 1 + 1 }}"})
        assert warm.status_code == 200
        baseline = server.peak_rss_mb()
        answers = [
            (template, client.post("/api/v1/templates/preview", json={"body_text": template}))
            for template in WORST * 3
        ]
        peak = server.peak_rss_mb()
    assert peak - baseline < 50, f"the server grew by {peak - baseline:.0f} MB"
    for template, answer in answers:
        assert answer.status_code == 422, (template[:60], answer.text)
        assert answer.json()["type"] == "template-limit", template[:60]
