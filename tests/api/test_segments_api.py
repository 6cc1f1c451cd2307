"""HTTP: saved segments, preview, customers page — and malformed filters are 422s."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

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
