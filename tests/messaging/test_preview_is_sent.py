"""What the marketer sees is what is sent: a real mailing to customers with and without
the data its template reads, and with and without earlier codes (one of them blocked
since), gives every customer the message their preview showed, placeholders aside."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from promocodes.codes import redemption
from promocodes.db import Database
from tests.api.conftest import client_for
from tests.docs.test_marketers_guide import ANN, NEWCOMER, code, table
from tests.factories import group_with_codes, issue, make_customer
from tests.messaging.test_mailings import bodies, mailing, segment, send_and_work

EVERYONE = {"type": "field", "field": "email", "op": "ends_with", "value": "@example.com"}
TEMPLATE = (
    "{{ client.first_name | default('friend') }}:\n"
    "before=[{{ client.last_promocode('G') }}]\n"
    "{% if client.attributes.vip %}vip {% endif %}new={{ client.promocode('G') }}\n"
    "{% for i in range(2) %}again=[{{ client.last_promocode('G') }}] {% endfor %}\n"
    "city=[{{ client.attributes.city }}] {{ client.attributes.orders | default(0) + 1 }}"
)


def _customers(db: Database) -> dict[str, str]:
    """Customers by situation; returns external id -> the code they hold before."""
    gid = group_with_codes(db, "G", [f"G{i:03d}" for i in range(50)])
    with db.write() as s:
        make_customer(s, "fresh", email="fresh@example.com", **ANN)
        make_customer(s, "bare", **NEWCOMER)
        make_customer(s, "held", email="held@example.com", first_name="Hal")
        make_customer(s, "blocked", email="blocked@example.com", attributes={"vip": True})
    held = issue(db, "held", gid, "before-held")
    leaked = issue(db, "blocked", gid, "before-blocked")
    assert held and leaked
    with db.write() as s:
        redemption.block(s, leaked)
    return {"fresh": "", "bare": "", "held": held, "blocked": ""}


def _previews(api: TestClient, mailing_id: int, ids: list[str]) -> dict[str, Any]:
    shown = {}
    for customer in ids:
        answer = api.post(f"/api/v1/mailings/{mailing_id}/preview", json={"customer_id": customer})
        assert answer.status_code == 200, answer.text
        shown[customer] = answer.json()
    return shown


def test_each_preview_is_the_sent_message_once_codes_are_filled_in(db: Database) -> None:
    before = _customers(db)
    everyone = segment(db, "Everyone", EVERYONE)
    mid = mailing(db, everyone, TEMPLATE, subject="Hi {{ client.first_name }}")
    with client_for(db) as api:
        shown = _previews(api, mid, list(before))
        checked = api.post(f"/api/v1/mailings/{mid}/check").json()
    assert checked["skipped"] == [] and checked["groups"][0]["drawing"] == 4
    send_and_work(db, mid)
    sent = bodies(db, mid)
    for customer, last in before.items():
        message = sent[customer]
        assert message.status == "sent", (customer, message.skip_reason, message.error)
        new = re.search(r"new=(\S+)", message.body_text or "")
        assert new, message.body_text
        expected = (shown[customer]["body_text"] or "").replace("PREVIEW-G-LAST", last)
        expected = re.sub(r"PREVIEW-G-[0-9A-F]{4}", new[1], expected)
        assert message.body_text == expected, customer
        assert message.subject == shown[customer]["subject"]
    assert "before=[]" in (sent["blocked"].body_text or "")  # a blocked code is never shown
    assert any("no code from 'G' yet" in n for n in shown["fresh"]["notes"])


def test_customers_lacking_the_guides_data_are_not_skipped(db: Database) -> None:
    rows = table("| Template | For Ann | For the new subscriber |")
    body = "\n".join(code(template).replace("\\|", "|") for template, _, _ in rows)
    with db.write() as s:
        make_customer(s, "ann", email="ann@example.com", **ANN)
        make_customer(s, "newcomer", **NEWCOMER)
    mid = mailing(db, segment(db, "Everyone", EVERYONE), body)
    send_and_work(db, mid)
    sent = bodies(db, mid)
    for customer, column in (("ann", 1), ("newcomer", 2)):
        message = sent[customer]
        assert message.status == "sent", (message.skip_reason, message.error)
        expected = [code(row[column]).replace("\\|", "|") for row in rows]
        assert (message.body_text or "").split("\n") == expected
