"""The import route's name is not a customer id: a PUT, GET or DELETE sent to
``/customers/import`` by mistake changes nobody."""

from __future__ import annotations

from fastapi.testclient import TestClient

from promocodes.customers.models import Customer
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
