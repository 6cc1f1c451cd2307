"""What events (and the customer writes beside them) refuse or leave alone, on both
backends: numbers JSON cannot store (NaN, Infinity) in customer attributes, wherever
attributes come in; a late retry re-applying an old customer object; an erased customer
getting new messages or codes; a 404 that hides a typo in the event name; a 422 without
its ``errors`` list."""

from __future__ import annotations

import json
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from promocodes.codes.models import Issuance
from promocodes.config import Settings
from promocodes.customers.models import Customer
from promocodes.db import Database
from promocodes.messaging.models import Message
from promocodes.text import MAX_JSON_DEPTH, TOO_DEEP
from promocodes.worker import run_until
from tests.api.test_groups_api import _problem

FINITE = "numbers must be finite (NaN and Infinity are not numbers JSON can store)"
GUEST = {
    "name": "Guest order",
    "event": "guest-order",
    "subject": "Thanks",
    "body_text": "{{ client.promocode('G') }}",
}


def _campaign(api: TestClient, **extra: Any) -> None:
    api.post("/api/v1/groups", json={"name": "G", "codes": [f"G{i:03d}" for i in range(20)]})
    made = api.post("/api/v1/campaigns", json={**GUEST, **extra})
    assert made.status_code == 201, made.text


def _raw(api: TestClient, method: str, url: str, text: str, kind: str) -> httpx.Response:
    """A body as written: Python's JSON parser takes NaN and Infinity, so a client may
    send them (httpx's own encoder would not let a test say exactly what is sent)."""
    response: httpx.Response = api.request(
        method, url, content=text.encode(), headers={"Content-Type": kind}
    )
    return response


def _count(db: Database, model: type) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_non_finite_numbers_never_reach_the_attributes(api: TestClient, db: Database) -> None:
    _campaign(api, creates_customers=True)
    for text, field in (
        (
            '{"customer_id": "h-7", "event": "guest-order", '
            '"customer": {"attributes": {"n": NaN, "i": Infinity}}}',
            "customer.attributes.n",
        ),
        (
            '{"customer_id": "h-7", "event": "guest-order", '
            '"customer": {"attributes": {"l": [1, {"x": -Infinity}]}}}',
            "customer.attributes.l[1].x",
        ),
    ):
        problem = _problem(
            _raw(api, "POST", "/api/v1/events", text, "application/json"), 422, "validation-error"
        )
        assert problem["errors"][0] == {"field": field, "message": FINITE}, problem
        assert problem["detail"].startswith(f"{field}: {FINITE}")
    put = _raw(
        api, "PUT", "/api/v1/customers/p-7", '{"attributes": {"n": NaN}}', "application/json"
    )
    assert _problem(put, 422, "validation-error")["errors"][0]["field"] == "attributes.n"
    assert _count(db, Customer) == 0
    # An import reports the line and keeps the others (JSON lines, a JSON array, CSV).
    lines = (
        '{"customer_id": "a", "attributes": {"n": 1.5}}\n'
        '{"customer_id": "b", "attributes": {"n": NaN}}\n'
    )
    report = _raw(api, "POST", "/api/v1/customers/import", lines, "application/x-ndjson").json()
    assert (report["created"], report["invalid"]) == (
        1,
        [{"line": 2, "message": f"attributes.n: {FINITE}"}],
    )
    array = '[{"customer_id": "c", "attributes": {"deep": {"i": Infinity}}}, {"customer_id": "d"}]'
    report = _raw(api, "POST", "/api/v1/customers/import", array, "application/json").json()
    assert report["created"] == 1 and report["invalid"][0]["line"] == 1
    assert report["invalid"][0]["message"] == f"attributes.deep.i: {FINITE}"
    # A CSV cell is text: "NaN" there is a word, stored as one.
    csv = "customer_id,n\ne,NaN\n"
    assert _raw(api, "POST", "/api/v1/customers/import", csv, "text/csv").json()["created"] == 1
    assert api.get("/api/v1/customers/e").json()["attributes"] == {"n": "NaN"}
    # Every stored value is JSON the database reads: a segment on an attribute works.
    where = {"type": "attribute", "name": "n", "op": "eq", "value": "NaN"}
    preview = api.post("/api/v1/segments/preview", json={"filter": where})
    assert preview.status_code == 200, preview.text
    assert preview.json()["count"] == 1


def test_a_late_retry_leaves_the_customer_as_newer_events_set_them(
    api: TestClient, db: Database
) -> None:
    _campaign(api, creates_customers=True)

    def order(event_id: str, email: str) -> dict[str, Any]:
        body = {"customer_id": "g-1", "event": "guest-order", "event_id": event_id}
        answer = api.post("/api/v1/events", json={**body, "customer": {"email": email}})
        assert answer.status_code == 200, answer.text
        got: dict[str, Any] = answer.json()
        return got

    first = order("o-1", "g1@shop.io")
    assert order("o-2", "newest@shop.io")["customer_change"] == "updated"
    retry = order("o-1", "g1@shop.io")
    assert retry["messages"] == first["messages"] and retry["customer_change"] is None
    assert api.get("/api/v1/customers/g-1").json()["email"] == "newest@shop.io"
    assert _count(db, Message) == 2 and _count(db, Issuance) == 2


def _erased(api: TestClient, db: Database, customer_id: str) -> str:
    api.put(f"/api/v1/customers/{customer_id}", json={"email": f"{customer_id}@shop.io"})
    assert api.delete(f"/api/v1/customers/{customer_id}").status_code == 204
    with db.read() as s:
        found = s.scalar(
            select(Customer.external_id).where(Customer.erased_at.isnot(None)).limit(1)
        )
    assert found is not None
    return found


def test_an_erased_customer_gets_no_message_and_no_code(api: TestClient, db: Database) -> None:
    _campaign(api)
    pseudonym = _erased(api, db, "gone")
    event = {"customer_id": pseudonym, "event": "guest-order", "event_id": "e-1"}
    problem = _problem(api.post("/api/v1/events", json=event), 409, "customer-erased")
    assert pseudonym in problem["detail"]
    gid = api.get("/api/v1/groups").json()["items"][0]["id"]
    issue = api.post(f"/api/v1/groups/{gid}/issue", json={"customer_id": pseudonym})
    _problem(issue, 409, "customer-erased")
    assert _count(db, Message) == 0 and _count(db, Issuance) == 0
    # A mailing to a segment that selects them skips them, saying why.
    api.put("/api/v1/customers/kept", json={"email": "kept@shop.io"})
    everyone = {"type": "and", "filters": []}
    seg = api.post("/api/v1/segments", json={"name": "All", "filter": everyone}).json()["id"]
    made = api.post(
        "/api/v1/mailings",
        json={"name": "M", "segment_id": seg, "subject": "Hi", "body_text": GUEST["body_text"]},
    )
    mid = made.json()["id"]
    assert api.post(f"/api/v1/mailings/{mid}/send", json={}).status_code == 202
    run_until(db, Settings(database_url=db.url), timeout=60)
    done = api.get(f"/api/v1/mailings/{mid}").json()
    assert (done["total"], done["sent"], done["skipped"]) == (2, 1, 1), done
    assert done["skipped_reasons"] == {"customer-erased": 1}
    assert _count(db, Issuance) == 1


def test_an_unknown_customer_404_says_why_nobody_was_added(api: TestClient) -> None:
    typo = {"customer_id": "z-4", "event": "Guest-Order", "customer": {"email": "z@shop.io"}}
    detail = _problem(api.post("/api/v1/events", json=typo), 404, "customer-not-found")["detail"]
    assert detail == (
        "customer 'z-4' does not exist (no active campaign on event 'Guest-Order' listens to it)"
    )
    _campaign(api)
    known = api.post("/api/v1/events", json={**typo, "event": "guest-order"})
    assert _problem(known, 404, "customer-not-found")["detail"].endswith(
        "(no active campaign on event 'guest-order' adds customers)"
    )


def test_a_blank_customer_id_is_a_422_with_its_errors(api: TestClient) -> None:
    _campaign(api, creates_customers=True)
    blank = api.post("/api/v1/events", json={"customer_id": "   ", "event": "guest-order"})
    problem = _problem(blank, 422, "validation-error")
    assert problem["errors"] == [
        {"field": "customer_id", "message": "Value error, customer_id must not be empty"}
    ], problem


def test_a_service_s_422_lists_fields_as_the_others_do(api: TestClient) -> None:
    gone = {"type": "issued_from_group", "group_id": 999}
    problem = _problem(
        api.post("/api/v1/segments/preview", json={"filter": gone}), 422, "validation-error"
    )
    assert problem["errors"] == [
        {"field": "group_id", "message": "group 999 does not exist or is archived"}
    ], problem
    # A refusal that names no field is the body's.
    xml = _raw(api, "POST", "/api/v1/customers/import", "<customers/>", "application/xml")
    [error] = _problem(xml, 422, "validation-error")["errors"]
    assert (
        error == {"field": "body", "message": error["message"]} and "text/csv" in error["message"]
    )


def test_text_limits_are_said_in_characters(api: TestClient) -> None:
    # event_id's limit reached Pydantic as a limit on "items" ("at most 200 items after
    # validation"), as its text is checked by a validator of its own.
    for event_id, said in (("e" * 500, "at most 200 characters, not 500"), ("", "at least 1")):
        body = {"customer_id": "c-1", "event": "signup", "event_id": event_id}
        problem = _problem(api.post("/api/v1/events", json=body), 422, "validation-error")
        [error] = problem["errors"]
        assert error["field"] == "event_id" and said in error["message"], error
        assert "items" not in problem["detail"]


def test_deeply_nested_attributes_are_refused_naming_the_attribute(
    api: TestClient, db: Database
) -> None:
    """Lists nested 256 deep were saved, then every read of the customer (its page, the
    list, a segment preview) was a 500: pydantic cannot write them back. Refused past
    ``MAX_JSON_DEPTH`` wherever attributes come in, naming the attribute."""
    _campaign(api, creates_customers=True)

    def nested(levels: int) -> Any:
        value: Any = 1
        for _ in range(levels):
            value = [value]
        return value

    deep = {"attributes": {"ok": 1, "a": nested(256)}}
    put = _problem(api.put("/api/v1/customers/deep256", json=deep), 422, "validation-error")
    assert put["errors"][0] == {"field": "attributes.a", "message": TOO_DEEP}, put
    event = {"customer_id": "e-1", "event": "guest-order", "customer": deep}
    posted = _problem(api.post("/api/v1/events", json=event), 422, "validation-error")
    assert posted["errors"][0]["field"] == "customer.attributes.a"
    lines = "\n".join(
        json.dumps({"customer_id": cid, "attributes": {"x": {"a": nested(levels)}}})
        for cid, levels in (("i-1", 256), ("i-2", MAX_JSON_DEPTH - 1), ("i-3", MAX_JSON_DEPTH))
    )
    report = _raw(api, "POST", "/api/v1/customers/import", lines, "application/x-ndjson").json()
    assert report["created"] == 1, report
    assert report["invalid"] == [
        {"line": 1, "message": f"attributes.x: {TOO_DEEP}"},
        {"line": 3, "message": f"attributes.x: {TOO_DEEP}"},
    ]
    # Nothing of the refused ones was stored: every read answers.
    assert _count(db, Customer) == 1
    assert api.get("/api/v1/customers").status_code == 200
    at_limit = {"attributes": {"a": nested(MAX_JSON_DEPTH)}}
    assert api.put("/api/v1/customers/deep32", json=at_limit).status_code == 200
    assert api.get("/api/v1/customers/deep32").json()["attributes"] == at_limit["attributes"]
