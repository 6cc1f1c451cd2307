"""The import route's name is not a customer id: a PUT, GET or DELETE sent to
``/customers/import`` by mistake changes nobody."""

from __future__ import annotations

from fastapi.testclient import TestClient

from promocodes.customers.models import Customer
from promocodes.customers.schemas import NO_SLASH
from promocodes.db import Database


def test_other_methods_on_the_import_route_are_405_and_touch_no_customer(
    api: TestClient, db: Database
) -> None:
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        response = api.request(method, "/api/v1/customers/import", json={"email": "x@y.io"})
        assert response.status_code == 405, (method, response.text)
        assert response.headers["allow"] == "POST"
    with db.read() as s:
        assert s.query(Customer).count() == 0  # PUT created "import", DELETE erased it
    # Ids that merely start with the word are ids like any other.
    assert api.put("/api/v1/customers/imported-1", json={}).status_code == 200
    assert api.get("/api/v1/customers/imported-1").json()["customer_id"] == "imported-1"
    assert api.get("/api/v1/customers/import/promo-codes").status_code == 404


def test_a_customer_id_with_a_slash_is_refused_wherever_it_comes_in(
    api: TestClient, db: Database
) -> None:
    """``a/b`` was taken by imports, events and issues, then no route could reach the
    customer (``/customers/a%2Fb`` is a 404): not readable, not erasable."""
    api.post("/api/v1/groups", json={"name": "G", "codes": ["G001", "G002"]})
    group_id = api.get("/api/v1/groups").json()["items"][0]["id"]
    made = api.post(
        "/api/v1/campaigns",
        json={
            "name": "Guest order",
            "event": "guest-order",
            "subject": "Thanks",
            "body_text": "{{ client.promocode('G') }}",
            "creates_customers": True,
        },
    )
    assert made.status_code == 201, made.text
    for url, body in (
        ("/api/v1/events", {"customer_id": "a/b", "event": "guest-order", "customer": {}}),
        (f"/api/v1/groups/{group_id}/issue", {"customer_id": "a/b"}),
        ("/api/v1/codes/G001/redeem", {"customer_id": "a/b", "order_id": "o-1"}),
    ):
        answer = api.post(url, json=body)
        assert answer.status_code == 422, (url, answer.text)
        assert answer.json()["errors"] == [{"field": "customer_id", "message": NO_SLASH}]
    lines = '{"customer_id": "a/b"}\n{"customer_id": "ok"}\n'
    report = api.post(
        "/api/v1/customers/import",
        content=lines,
        headers={"Content-Type": "application/x-ndjson"},
    ).json()
    assert report["created"] == 1
    assert report["invalid"] == [{"line": 1, "message": f"customer_id: {NO_SLASH}"}]
    csv = "customer_id,email\nc/d,\ne,\n"
    report = api.post(
        "/api/v1/customers/import", content=csv, headers={"Content-Type": "text/csv"}
    ).json()
    assert (report["created"], report["invalid_count"]) == (1, 1), report
    redemptions = "code,order_id,customer_id\nG002,o-2,x/y\n"
    report = api.post(
        "/api/v1/codes/redemptions", content=redemptions, headers={"Content-Type": "text/csv"}
    ).json()
    assert report["rejected_lines"][0]["reason"] == f"bad line: customer id {NO_SLASH}", report
    with db.read() as s:
        assert sorted(c.external_id for c in s.query(Customer)) == ["e", "ok"]
    # The schema says it, so a client can know before sending.
    schema = api.get("/openapi.json").json()["components"]["schemas"]
    assert schema["IssueIn"]["properties"]["customer_id"]["pattern"] == r"^[^/\x00]*$"
