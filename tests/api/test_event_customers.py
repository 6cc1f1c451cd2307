"""Events that carry their customer, on both backends: off by default (404 for an unknown
customer, the object ignored for a known one), on per campaign (created, then updated,
by the rules of PUT /customers), retries and races that never make two customers, and
every field of the new body refused with a 422 naming it."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from promocodes.codes.models import Issuance
from promocodes.customers.models import Customer
from promocodes.db import Database
from promocodes.messaging.models import Message
from tests.api.test_groups_api import _problem
from tests.live import live_server

WELCOME = {
    "name": "Welcome",
    "event": "signup",
    "subject": "Hi {{ client.first_name }}",
    "body_text": "{{ client.attributes.tier }} {{ client.promocode('W') }}",
}
ANN = {
    "email": "Ann@Example.com",
    "first_name": "Ann",
    "last_name": "Lee",
    "phone": "+44 20 7946 0000",
    "attributes": {"tier": "gold"},
}


def _campaign(api: TestClient | httpx.Client, **extra: Any) -> dict[str, Any]:
    api.post("/api/v1/groups", json={"name": "W", "codes": [f"W{i:03d}" for i in range(50)]})
    made = api.post("/api/v1/campaigns", json={**WELCOME, **extra})
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


def _count(db: Database, model: type, **where: Any) -> int:
    with db.read() as s:
        stmt = select(func.count()).select_from(model).filter_by(**where)
        return s.scalar(stmt) or 0


def _event(api: TestClient, customer_id: str, **extra: Any) -> httpx.Response:
    body = {"customer_id": customer_id, "event": "signup", **extra}
    response: httpx.Response = api.post("/api/v1/events", json=body)
    return response


def test_off_by_default_unknown_is_404_and_the_object_is_ignored(
    api: TestClient, db: Database
) -> None:
    campaign = _campaign(api)
    assert campaign["creates_customers"] is False
    _problem(_event(api, "new-1", customer=ANN), 404, "customer-not-found")
    assert _count(db, Customer, external_id="new-1") == 0
    api.put("/api/v1/customers/bo", json={"first_name": "Bo", "attributes": {"tier": "red"}})
    out = _event(api, "bo", customer={"first_name": "Robert", "attributes": {"tier": "x"}})
    assert out.status_code == 200, out.text
    body = out.json()
    assert body["customer_change"] == "ignored"
    assert body["messages"][0]["subject"] == "Hi Bo"
    assert body["messages"][0]["body_text"].startswith("red W")
    kept = api.get("/api/v1/customers/bo").json()
    assert (kept["first_name"], kept["attributes"]) == ("Bo", {"tier": "red"})
    # Without an object, nothing is said about the customer.
    assert _event(api, "bo").json()["customer_change"] is None


def test_a_campaign_that_allows_it_creates_then_updates_the_customer(
    api: TestClient, db: Database
) -> None:
    campaign = _campaign(api, creates_customers=True)
    assert campaign["creates_customers"] is True
    first = _event(api, "new-1", event_id="e-1", customer=ANN)
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["customer_id"], body["customer_change"]) == ("new-1", "created")
    message = body["messages"][0]
    assert (message["subject"], message["recipient"]) == ("Hi Ann", "Ann@example.com")
    assert message["body_text"].startswith("gold W")
    stored = api.get("/api/v1/customers/new-1").json()
    assert {k: stored[k] for k in ("email", "first_name", "last_name", "phone")} == {
        "email": "Ann@example.com",
        "first_name": "Ann",
        "last_name": "Lee",
        "phone": "+44 20 7946 0000",
    }
    # A retry: the same message, the same (one) customer and code.
    again = _event(api, "new-1", event_id="e-1", customer=ANN).json()
    assert again["messages"] == body["messages"] and again["customer_change"] is None
    assert _count(db, Customer, external_id="new-1") == 1
    assert _count(db, Issuance) == 1
    # A later event updates the known customer: fields sent replace, attributes merge.
    later = _event(api, "new-1", customer={"last_name": "Park", "attributes": {"city": "Oslo"}})
    assert later.json()["customer_change"] == "updated"
    stored = api.get("/api/v1/customers/new-1").json()
    assert (stored["first_name"], stored["last_name"]) == ("Ann", "Park")
    assert stored["attributes"] == {"tier": "gold", "city": "Oslo"}
    # No object: an unknown customer is created bare, a known one is left alone.
    bare = _event(api, "new-2").json()
    assert bare["customer_change"] == "created" and bare["messages"][0]["recipient"] is None
    assert _event(api, "new-2").json()["customer_change"] is None
    assert _count(db, Message) == 4


def test_the_setting_follows_the_campaign(api: TestClient, db: Database) -> None:
    cid = _campaign(api, creates_customers=True)["id"]
    patched = api.patch(f"/api/v1/campaigns/{cid}", json={"creates_customers": None})
    assert patched.json()["creates_customers"] is True  # null leaves it as it is
    assert api.get("/api/v1/campaigns").json()[0]["creates_customers"] is True
    # A paused campaign sends nothing and creates nobody.
    api.patch(f"/api/v1/campaigns/{cid}", json={"active": False})
    _problem(_event(api, "p-1", customer=ANN), 404, "customer-not-found")
    api.patch(f"/api/v1/campaigns/{cid}", json={"active": True, "creates_customers": False})
    _problem(_event(api, "p-1", customer=ANN), 404, "customer-not-found")
    # Another campaign on the event that allows it is enough: both send to the new one.
    api.post("/api/v1/campaigns", json={**WELCOME, "name": "Also", "creates_customers": True})
    both = _event(api, "p-1", customer=ANN).json()
    assert both["customer_change"] == "created" and len(both["messages"]) == 2
    assert _count(db, Customer, external_id="p-1") == 1


def test_an_erased_customer_takes_no_data_from_an_event(api: TestClient, db: Database) -> None:
    _campaign(api, creates_customers=True)
    api.put("/api/v1/customers/gone", json={"email": "gone@x.io"})
    assert api.delete("/api/v1/customers/gone").status_code == 204
    with db.read() as s:
        pseudonym = s.scalar(select(Customer.external_id).where(Customer.erased_at.isnot(None)))
    assert pseudonym is not None
    _problem(_event(api, pseudonym, customer={"email": "back@x.io"}), 409, "customer-erased")
    assert _count(db, Message) == 0
    # The original id is unknown from then on: the person comes back as a new customer.
    back = _event(api, "gone", customer={"email": "back@x.io"}).json()
    assert back["customer_change"] == "created"
    assert api.get("/api/v1/customers/gone").json()["email"] == "back@x.io"
    assert _count(db, Customer) == 2


BAD_BODIES = [
    ({"customer": "ann"}, "customer", "valid dictionary"),
    ({"customer": {"email": "not-an-address"}}, "customer.email", "not an email address"),
    ({"customer": {"email": "a@b.io\nBcc: x@y.io"}}, "customer.email", "email"),
    ({"customer": {"email": "a" * 321}}, "customer.email", "at most 320"),
    ({"customer": {"phone": "1" * 41}}, "customer.phone", "at most 40"),
    ({"customer": {"phone": "1\n2"}}, "customer.phone", "one line"),
    ({"customer": {"first_name": "A\tB"}}, "customer.first_name", "one line"),
    ({"customer": {"first_name": "x" * 201}}, "customer.first_name", "at most 200"),
    ({"customer": {"last_name": "\x07"}}, "customer.last_name", "one line"),
    ({"customer": {"last_name": 5}}, "customer.last_name", "valid string"),
    ({"customer": {"attributes": [1]}}, "customer.attributes", "valid dictionary"),
    ({"customer": {"attributes": {"k": "a\x00b"}}}, "customer.attributes", ""),
    ({"customer": {"customer_id": "x"}}, "customer.customer_id", "Extra inputs"),
    ({"customer": {"nickname": "x"}}, "customer.nickname", "Extra inputs"),
]


@pytest.mark.parametrize(("extra", "field", "reason"), BAD_BODIES)
def test_every_field_of_the_customer_object_is_checked(
    api: TestClient, db: Database, extra: dict[str, Any], field: str, reason: str
) -> None:
    _campaign(api, creates_customers=True)
    problem = _problem(_event(api, "new-1", **extra), 422, "validation-error")
    assert problem["errors"][0]["field"] == field, problem
    assert reason in problem["detail"], problem
    assert _count(db, Customer) == 0


def test_a_bad_id_and_a_bad_setting_are_422s(api: TestClient, db: Database) -> None:
    cid = _campaign(api, creates_customers=True)["id"]
    # The path of PUT /customers trims the id; a blank one is refused, naming it.
    blank = _problem(_event(api, "   ", customer=ANN), 422, "validation-error")
    assert blank["detail"].startswith("customer_id:")
    assert _count(db, Customer) == 0
    for body in ({**WELCOME, "creates_customers": "sometimes"}, {"creates_customers": [1]}):
        if "name" in body:
            bad = api.post("/api/v1/campaigns", json=body)
        else:
            bad = api.patch(f"/api/v1/campaigns/{cid}", json=body)
        problem = _problem(bad, 422, "validation-error")
        assert problem["errors"][0]["field"] == "creates_customers", problem
        assert "valid boolean" in problem["detail"]


def test_attributes_outside_the_customer_object_are_refused_not_dropped(
    api: TestClient, db: Database
) -> None:
    # A top-level ``attributes`` was once taken and thrown away: the sender believed the
    # customer had them. Now it is a 422 naming it and saying where they go.
    _campaign(api, creates_customers=True)
    api.put("/api/v1/customers/bo", json={"attributes": {"tier": "red"}})
    problem = _problem(_event(api, "bo", attributes={"tier": "gold"}), 422, "validation-error")
    assert problem["errors"] == [
        {"field": "attributes", "message": problem["errors"][0]["message"]}
    ]
    assert problem["detail"].startswith("attributes: ")
    assert '{"customer": {"attributes"' in problem["detail"], problem
    assert _count(db, Message) == 0
    assert api.get("/api/v1/customers/bo").json()["attributes"] == {"tier": "red"}
    # Any other key the event does not know is refused too, by its name.
    other = _problem(_event(api, "bo", tier="gold"), 422, "validation-error")
    assert other["errors"][0]["field"] == "tier", other
    assert _count(db, Message) == 0
    # Where they belong, they are applied.
    done = _event(api, "bo", customer={"attributes": {"tier": "gold"}})
    assert done.status_code == 200, done.text
    assert api.get("/api/v1/customers/bo").json()["attributes"] == {"tier": "gold"}


def _race(
    server: Any, customer_id: str, event_ids: list[str], customer: dict[str, Any] | None = ANN
) -> list[httpx.Response]:
    """One event per id for ``customer_id``, sent at once (after a barrier) over HTTP."""
    barrier = threading.Barrier(len(event_ids))
    answers: list[httpx.Response] = []

    def send(event_id: str) -> None:
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as c:
            barrier.wait()
            body: dict[str, Any] = {
                "customer_id": customer_id,
                "event": "signup",
                "event_id": event_id,
            }
            if customer is not None:
                body["customer"] = customer
            answers.append(c.post("/api/v1/events", json=body))

    threads = [threading.Thread(target=send, args=(e,)) for e in event_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def test_concurrent_events_for_one_new_customer_create_one(db: Database) -> None:
    with live_server(db) as server:
        with httpx.Client(base_url=server.url, headers=server.headers) as c:
            _campaign(c, creates_customers=True)
        for round_ in range(3):
            # The same event retried at once: one customer, one message, one code.
            same = _race(server, f"same-{round_}", ["e", "e"])
            assert [r.status_code for r in same] == [200, 200], [r.text for r in same]
            # The later one applied its object ("updated") when both got past the retry
            # check at once, or, coming after the first was stored, is a retry: null.
            changes = [r.json()["customer_change"] for r in same]
            assert changes.count("created") == 1, changes
            assert set(changes) - {"created"} <= {"updated", None}, changes
            assert len({r.json()["messages"][0]["id"] for r in same}) == 1
            # Two different events: one customer, a message each.
            two = _race(server, f"two-{round_}", ["a", "b"])
            assert [r.status_code for r in two] == [200, 200], [r.text for r in two]
            assert len({r.json()["messages"][0]["id"] for r in two}) == 2
    with db.read() as s:
        customers = s.scalars(select(Customer.external_id).order_by(Customer.external_id))
        assert list(customers) == sorted(f"{k}-{n}" for k in ("same", "two") for n in range(3))
    assert _count(db, Message) == 3 * 3
    assert _count(db, Issuance) == 3 * 3


def test_one_event_retried_at_once_for_a_known_customer_makes_one_message(db: Database) -> None:
    """Without a customer object nothing locks the customer's row, and a template without
    codes issues nothing: both requests find no message and insert one of the same key.
    The later one must answer with the first one's message, not a server error."""
    with live_server(db) as server:
        with httpx.Client(base_url=server.url, headers=server.headers) as c:
            _campaign(c, body_text="Welcome")
            for n in range(6):
                c.put(f"/api/v1/customers/k{n}", json={})
        for n in range(6):
            same = _race(server, f"k{n}", ["e", "e"], customer=None)
            assert [r.status_code for r in same] == [200, 200], [r.text for r in same]
            assert len({r.json()["messages"][0]["id"] for r in same}) == 1
    assert _count(db, Message) == 6
