"""The mailings and campaigns lists run a fixed number of statements, whatever the number
of rows: each row's figures come from one batched read, never a query per row."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from promocodes.db import Database
from promocodes.messaging import campaigns, mailings
from promocodes.messaging.schemas import CampaignIn, MailingCreate
from tests.api.conftest import client_for
from tests.factories import group_with_codes
from tests.messaging.test_mailings import EVERYONE, people, segment, send_and_work
from tests.web.conftest import app_client, log_in, make_user


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """Every statement the engine runs inside the block."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def add_mailings(db: Database, n: int, *, sent: bool) -> None:
    """``n`` mailings; with ``sent``, the first is sent, so lists show real progress."""
    sid = segment(db, f"everyone {n}", EVERYONE)
    with db.write() as s:
        ids = [
            mailings.create(
                s,
                MailingCreate(
                    name=f"Mailing {i}",
                    segment_id=sid,
                    subject="Hi",
                    body_text="{{ client.promocode('G') }}",
                ),
            ).id
            for i in range(n)
        ]
    if sent:
        send_and_work(db, ids[0])


def add_campaigns(db: Database, n: int) -> None:
    with db.write() as s:
        for i in range(n):
            campaigns.create(
                s,
                CampaignIn(name=f"Campaign {i}", event=f"e{i}", subject="Hi", body_text="x"),
            )


def counted(db: Database, request: Callable[[], Any]) -> int:
    request()  # warm: the first request of a client may load what later ones reuse
    with statements(db) as seen:
        response = request()
    assert response.status_code == 200, response.text
    return len(seen)


@pytest.mark.parametrize("kind", ["mailings", "campaigns"])
def test_list_pages_run_the_same_statements_for_1_and_50_rows(db: Database, kind: str) -> None:
    people(db, 3)
    group_with_codes(db, "G", [f"G{i}" for i in range(10)])
    make_user(db)
    figures: dict[int, tuple[int, int]] = {}
    total = 0
    for rows in (1, 50):
        more = rows - total
        if kind == "mailings":
            add_mailings(db, more, sent=total == 0)
        else:
            add_campaigns(db, more)
        total = rows
        with client_for(db) as api, app_client(db) as web:
            assert log_in(web).status_code == 303
            listed = api.get(f"/api/v1/{kind}").json()
            assert len(listed) == rows
            figures[rows] = (
                counted(db, partial(api.get, f"/api/v1/{kind}")),
                counted(db, partial(web.get, f"/{kind}")),
            )
    assert figures[1] == figures[50], figures


def test_a_sent_mailing_in_the_list_shows_its_progress(db: Database) -> None:
    people(db, 3)
    group_with_codes(db, "G", [f"G{i}" for i in range(10)])
    add_mailings(db, 2, sent=True)
    client: TestClient
    with client_for(db) as client:
        listed = {m["name"]: m for m in client.get("/api/v1/mailings").json()}
    assert (listed["Mailing 0"]["rendered"], listed["Mailing 0"]["sent"]) == (3, 3)
    assert (listed["Mailing 1"]["rendered"], listed["Mailing 1"]["status"]) == (0, "draft")
