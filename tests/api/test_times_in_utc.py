"""Times sent with an offset are read as UTC: answers show them as stored, and a time
whose UTC falls outside the years 1-9999 is a 422 naming it, not a 500 on the way to
the database."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient

EDGES = ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00")


def _refused(answer: httpx.Response, field: str) -> None:
    assert answer.status_code == 422, answer.text
    errors = answer.json()["errors"]
    assert any(e["field"] == field and "years 1 to 9999" in e["message"] for e in errors), errors


def test_an_audit_window_past_the_calendar_is_refused(api: TestClient) -> None:
    for edge in EDGES:
        _refused(api.get("/api/v1/audit", params={"since": edge}), "query.since")
        _refused(api.get("/api/v1/audit", params={"until": edge}), "query.until")
    assert (
        api.get("/api/v1/audit", params={"since": "2025-01-01T02:00:00+02:00"}).status_code == 200
    )


def test_a_segment_filter_time_past_the_calendar_is_refused(api: TestClient) -> None:
    for edge in EDGES:
        tree = {"type": "issued_count", "op": "gte", "value": 1, "issued_after": edge}
        answer = api.post("/api/v1/segments/preview", json={"filter": tree})
        assert answer.status_code == 422, answer.text
        assert "years 1 to 9999" in answer.text


def test_a_group_time_sent_with_an_offset_is_answered_in_utc(api: TestClient) -> None:
    created = api.post("/api/v1/groups", json={"name": "Zones"}).json()
    patched = api.patch(
        f"/api/v1/groups/{created['id']}", json={"valid_until": "2030-01-01T00:00:00+02:00"}
    )
    assert patched.status_code == 200, patched.text
    got = api.get(f"/api/v1/groups/{created['id']}").json()
    assert patched.json()["valid_until"] == got["valid_until"] == "2029-12-31T22:00:00Z"
    for edge in EDGES:
        _refused(
            api.post("/api/v1/groups", json={"name": "Edge", "valid_from": edge}), "valid_from"
        )
        _refused(
            api.patch(f"/api/v1/groups/{created['id']}", json={"valid_until": edge}), "valid_until"
        )
