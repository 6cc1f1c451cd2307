"""HTTP: a time in a JSON body is an RFC 3339 string, as the schema's ``date-time`` says.

Pydantic alone read a number (``0``, ``1.5e9``) or a string of digits as seconds since
1970, so a group valid from 1970 or a mailing scheduled for 2017 was stored from a body
the schema refuses (found by the contract run at 100 examples).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.test_groups_api import _problem

NOT_TIMES: list[Any] = [0, 1_700_000_000, 1.5e9, "1700000000", True]


def _refused(response: Any, field: str) -> None:
    body = _problem(response, 422, "validation-error")
    assert [e["field"] for e in body["errors"]] == [field], body


@pytest.mark.parametrize("field", ["valid_from", "valid_until"])
def test_a_group_time_must_be_a_string(api: TestClient, field: str) -> None:
    gid = api.post("/api/v1/groups", json={"name": "Kept"}).json()["id"]
    for value in NOT_TIMES:
        _refused(api.post("/api/v1/groups", json={"name": "New", field: value}), field)
        _refused(api.patch(f"/api/v1/groups/{gid}", json={field: value}), field)
    assert [g["name"] for g in api.get("/api/v1/groups").json()["items"]] == ["Kept"]
    assert api.get(f"/api/v1/groups/{gid}").json()[field] is None
    good = api.patch(f"/api/v1/groups/{gid}", json={field: "2030-01-31T12:00:00Z"})
    assert good.status_code == 200 and good.json()[field] == "2030-01-31T12:00:00Z", good.text


def test_a_mailing_send_at_must_be_a_string(api: TestClient) -> None:
    seg = api.post(
        "/api/v1/segments",
        json={"name": "All", "filter": {"type": "field", "field": "email", "op": "exists"}},
    )
    assert seg.status_code == 201, seg.text
    draft = {"name": "M", "segment_id": seg.json()["id"], "body_text": "Hi"}
    mid = api.post("/api/v1/mailings", json=draft).json()["id"]
    for value in NOT_TIMES:
        _refused(api.post("/api/v1/mailings", json={**draft, "send_at": value}), "send_at")
        _refused(api.patch(f"/api/v1/mailings/{mid}", json={"send_at": value}), "send_at")
    assert api.get(f"/api/v1/mailings/{mid}").json()["send_at"] is None
    good = api.patch(f"/api/v1/mailings/{mid}", json={"send_at": "2030-01-31T12:00:00Z"})
    assert good.status_code == 200 and good.json()["send_at"] == "2030-01-31T12:00:00Z", good.text
