"""Erasing a customer: personal data and message bodies go, the history stays under a
pseudonym (counts, segments, "who got code X"), audited without personal data; repeat,
unknown and erased ids; the API, the CLI and the web action."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from promocodes import erasure
from promocodes.audit.schemas import Filters
from promocodes.audit.service import entries
from promocodes.cli import app
from promocodes.codes import lookup
from promocodes.customers import service
from promocodes.customers.schemas import CustomerIn
from promocodes.db import Database
from promocodes.messaging.models import Message
from promocodes.models import utcnow
from tests.api.conftest import client_for
from tests.factories import counts, group_with_codes, issue, make_customer
from tests.web.conftest import app_client, csrf_of, log_in, make_user

PERSONAL = ("ann@example.com", "Ann", "Lee", "+4790000000", "Oslo")


def _ann(db: Database) -> tuple[int, str]:
    gid = group_with_codes(db, "G", ["CODE-1", "CODE-2"])
    with db.write() as s:
        customer = make_customer(
            s,
            "c-ann",
            email="ann@example.com",
            first_name="Ann",
            last_name="Lee",
            phone="+4790000000",
            attributes={"city": "Oslo"},
        )
        s.add(
            Message(
                key="m-ann-1",
                customer_id=customer.id,
                channel="outbox",
                recipient="ann@example.com",
                subject="Hello Ann",
                body_text="Dear Ann Lee, your code is CODE-1",
                body_html="<p>Dear Ann</p>",
                status="sent",
                created_at=utcnow(),
            )
        )
    code = issue(db, "c-ann", gid, "k1")
    assert code is not None
    return gid, code


def _no_personal_data(text: str) -> None:
    for value in PERSONAL:
        assert value not in text, value


def test_erasure_keeps_the_history_under_a_pseudonym(db: Database) -> None:
    gid, code = _ann(db)
    before = counts(db, gid)
    with db.write() as s:
        done = erasure.erase(s, "c-ann")
    assert re.fullmatch(r"erased-[0-9a-f]{16}", done.customer_id)
    assert done.messages_redacted == 1 and not done.already
    with db.read() as s:
        with pytest.raises(service.CustomerNotFound):
            service.get(s, "c-ann")
        out = service.to_out(service.get(s, done.customer_id))
        message = s.scalar(select(Message).where(Message.key == "m-ann-1"))
    assert (out.email, out.phone, out.first_name, out.last_name) == (None, None, None, None)
    assert out.attributes == {}
    assert message is not None and message.status == "sent"
    assert (message.recipient, message.subject, message.body_text, message.body_html) == (
        None,
        None,
        None,
        None,
    )
    assert counts(db, gid) == before
    with db.write() as s:
        holders = [i.customer_id for i in lookup.lookup(s, code).issuances]
        (entry,) = entries(s, Filters(action="customer.erased"))
    assert holders == [done.customer_id]
    assert entry.target_id == done.customer_id
    _no_personal_data(f"{entry.target_id} {entry.target_name} {entry.details}")
    _no_personal_data("c-ann")  # the original id is not in the entry either
    assert "c-ann" not in str(entry.details) and entry.target_name in (None, "")


def test_erasing_again_changes_nothing_and_unknown_is_not_found(db: Database) -> None:
    _ann(db)
    with db.write() as s:
        done = erasure.erase(s, "c-ann")
    with db.write() as s:
        again = erasure.erase(s, done.customer_id)
    assert again.already and again.customer_id == done.customer_id
    for missing in ("c-ann", "nobody"):
        with db.write() as s, pytest.raises(service.CustomerNotFound):
            erasure.erase(s, missing)
    with db.read() as s:
        assert len(entries(s, Filters(action="customer.erased"))) == 1
    # The pseudonymous record takes no personal data again; the original id is free.
    with db.write() as s, pytest.raises(service.CustomerErased):
        service.upsert(s, CustomerIn(customer_id=done.customer_id, email="ann@example.com"))
    with db.write() as s:
        _, created = service.upsert(s, CustomerIn(customer_id="c-ann"))
    assert created


@pytest.fixture
def api(db: Database) -> Iterator[TestClient]:
    with client_for(db) as client:
        yield client


def test_api_erases_with_204_then_404(db: Database, api: TestClient) -> None:
    _ann(db)
    assert api.delete("/api/v1/customers/c-ann").status_code == 204
    gone = api.delete("/api/v1/customers/c-ann")
    assert gone.status_code == 404 and gone.json()["type"] == "customer-not-found"
    assert api.delete("/api/v1/customers/nobody").status_code == 404
    (erased,) = [
        c
        for c in api.get("/api/v1/customers").json()["items"]
        if c["customer_id"].startswith("erased-")
    ]
    assert api.delete(f"/api/v1/customers/{erased['customer_id']}").status_code == 204
    refused = api.put(f"/api/v1/customers/{erased['customer_id']}", json={"first_name": "Ann"})
    assert refused.status_code == 409 and refused.json()["type"] == "customer-erased"
    history = api.get(f"/api/v1/customers/{erased['customer_id']}/promo-codes").json()
    assert len(history["items"]) == 1


def test_cli_erases(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    _ann(db)
    monkeypatch.setenv("PROMOCODES_DATABASE_URL", db.url)
    runner = CliRunner()
    done = runner.invoke(app, ["customers", "erase", "c-ann", "--yes"])
    assert done.exit_code == 0, done.output
    said = " ".join(done.output.split())  # the console wraps long lines
    assert "erased-" in said and "1 messages redacted" in said
    missing = runner.invoke(app, ["customers", "erase", "c-ann", "--yes"])
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_web_erases_after_a_confirmation(db: Database) -> None:
    _ann(db)
    make_user(db)
    with app_client(db) as client:
        log_in(client)
        profile = client.get("/customers/c-ann")
        assert 'href="/customer-erasure/c-ann"' in profile.text
        page = client.get("/customer-erasure/c-ann")
        assert page.status_code == 200 and "cannot be undone" in page.text
        token = csrf_of(page.text)
        assert client.post("/customer-erasure/c-ann", data={}).status_code == 403
        done = client.post(
            "/customer-erasure/c-ann", data={"csrf_token": token}, follow_redirects=False
        )
        assert done.status_code == 303 and "/customers/erased-" in done.headers["location"]
        erased = client.get(done.headers["location"])
        assert "Erased" in erased.text
        _no_personal_data(erased.text.replace("Erased", ""))
        assert client.get("/customer-erasure/c-ann").status_code == 404
