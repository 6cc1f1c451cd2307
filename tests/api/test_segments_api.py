"""HTTP: saved segments, preview, customers page — and malformed filters are 422s."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from promocodes.config import Settings
from promocodes.db import Database
from promocodes.worker import run_until
from tests.api.test_groups_api import _problem


def _world(api: TestClient) -> int:
    gid = api.post("/api/v1/groups", json={"name": "G", "codes": ["A", "B", "C"]}).json()["id"]
    for i in range(4):
        api.put(
            f"/api/v1/customers/c{i}",
            json={"email": f"c{i}@shop.io", "attributes": {"city": "Oslo" if i % 2 else "Rome"}},
        )
    for who in ("c0", "c1"):
        api.post(f"/api/v1/groups/{gid}/issue", json={"customer_id": who})
    return int(gid)


def test_segment_crud_preview_and_members(api: TestClient) -> None:
    gid = _world(api)
    got_code = {"type": "issued_from_group", "group_id": gid}
    preview = api.post("/api/v1/segments/preview", json={"filter": got_code}).json()
    assert preview["count"] == 2
    assert [c["customer_id"] for c in preview["sample"]] == ["c0", "c1"]
    none_yet = {
        "type": "and",
        "filters": [
            {"type": "issued_count", "op": "eq", "value": 0},
            {"type": "attribute", "name": "city", "op": "eq", "value": "Oslo"},
        ],
    }
    made = api.post("/api/v1/segments", json={"name": "Oslo, no code", "filter": none_yet})
    assert made.status_code == 201, made.text
    sid = made.json()["id"]
    page = api.get(f"/api/v1/segments/{sid}/customers").json()
    assert [c["customer_id"] for c in page["items"]] == ["c3"]
    renamed = api.patch(f"/api/v1/segments/{sid}", json={"name": "Oslo"}).json()
    assert renamed["name"] == "Oslo"
    assert [s["name"] for s in api.get("/api/v1/segments").json()] == ["Oslo"]
    assert api.delete(f"/api/v1/segments/{sid}").status_code == 204
    _problem(api.get(f"/api/v1/segments/{sid}"), 404, "segment-not-found")


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "field", "field": "email", "op": "contains"},
        {"type": "field", "field": "created_at", "op": "eq"},
        {"type": "issued_from_group", "group_id": 2**63},
        {"type": "issued_from_group", "group_id": 999},
        {"type": "nope"},
    ],
)
def test_malformed_or_dangling_filters_are_422(api: TestClient, bad: dict[str, object]) -> None:
    _problem(api.post("/api/v1/segments/preview", json={"filter": bad}), 422, "validation-error")


def test_deleting_a_segment_a_mailing_used(api: TestClient, db: Database) -> None:
    """Used to fail on the foreign key (an internal error); now refused while a mailing
    still needs the segment, and archived once the mailing was sent."""
    api.put("/api/v1/customers/c1", json={"email": "c1@x.io"})
    sid = api.post(
        "/api/v1/segments", json={"name": "All", "filter": {"type": "and", "filters": []}}
    ).json()["id"]
    mid = api.post(
        "/api/v1/mailings",
        json={"name": "Hello", "segment_id": sid, "subject": "s", "body_text": "Hi"},
    ).json()["id"]
    busy = _problem(api.delete(f"/api/v1/segments/{sid}"), 409, "segment-in-use")
    assert f"'Hello' (id {mid})" in busy["detail"]
    assert api.post(f"/api/v1/mailings/{mid}/send", json={}).status_code == 202
    run_until(db, Settings(database_url=db.url), timeout=60)
    assert api.delete(f"/api/v1/segments/{sid}").status_code == 204
    _problem(api.get(f"/api/v1/segments/{sid}"), 404, "segment-not-found")
    assert api.get("/api/v1/segments").json() == []
    assert api.get(f"/api/v1/mailings/{mid}").json()["segment_id"] == sid
    again = api.post(
        "/api/v1/segments", json={"name": "All", "filter": {"type": "and", "filters": []}}
    )
    assert again.status_code == 201 and again.json()["id"] != sid
