"""POST /groups/{id}/generate: the report, the upload it makes, every bad field, and the
refill settings of a group."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient


def _group(api: TestClient, **body: Any) -> int:
    response = api.post("/api/v1/groups", json={"name": "Gen", **body})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def test_generate_answers_the_report_and_the_upload_keeps_the_pattern(api: TestClient) -> None:
    gid = _group(api)
    done = api.post(f"/api/v1/groups/{gid}/generate", json={"pattern": "G-****", "count": 40})
    assert done.status_code == 201, done.text
    body = done.json()
    assert body["added"] == body["requested"] == 40 and body["group_id"] == gid
    upload = api.get(f"/api/v1/uploads/{body['upload_id']}").json()
    assert upload["pattern"] == "G-****" and upload["report"]["added"] == 40
    assert api.get(f"/api/v1/groups/{gid}").json()["active"] == 40
    codes = api.get(f"/api/v1/groups/{gid}/codes?limit=100").json()["items"]
    assert len({c["code"] for c in codes}) == 40


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"pattern": "G-****"}, "count"),
        ({"count": 1}, "pattern"),
        ({"pattern": "", "count": 1}, "pattern"),
        ({"pattern": "#" * 65, "count": 1}, "pattern"),
        ({"pattern": "G-****", "count": 0}, "count"),
        ({"pattern": "G-****", "count": 10_000_001}, "count"),
        ({"pattern": "G-****", "count": "many"}, "count"),
        ({"pattern": "G-****", "count": 1, "extra": 1}, "extra"),
        ({"pattern": 12, "count": 1}, "pattern"),
        ({"pattern": "G ****", "count": 1}, "character 2"),
        ({"pattern": "SUMMER", "count": 1}, "no placeholder"),
        ({"pattern": "G-##", "count": 1}, "guessable"),
        ({"pattern": "G-****", "count": 9_236}, "guessable"),
    ],
)
def test_bad_bodies_are_refused_with_what_is_wrong(
    api: TestClient, body: dict[str, Any], says: str
) -> None:
    gid = _group(api)
    refused = api.post(f"/api/v1/groups/{gid}/generate", json=body)
    assert refused.status_code == 422, refused.text
    assert says in refused.text
    assert api.get(f"/api/v1/groups/{gid}").json()["total"] == 0


def test_unknown_group_is_404(api: TestClient) -> None:
    missing = api.post("/api/v1/groups/999/generate", json={"pattern": "G-****", "count": 1})
    assert missing.status_code == 404 and missing.json()["type"] == "group-not-found"


def test_refill_settings_are_set_together_and_cleared_together(api: TestClient) -> None:
    refill = {"refill_pattern": "R-****-****", "refill_below": 10, "refill_count": 100}
    gid = _group(api, **refill)
    assert {k: api.get(f"/api/v1/groups/{gid}").json()[k] for k in refill} == refill
    half = api.patch(f"/api/v1/groups/{gid}", json={"refill_below": 5})
    assert half.status_code == 422 and "together" in half.text
    guessable = api.patch(f"/api/v1/groups/{gid}", json={**refill, "refill_pattern": "R-##"})
    assert guessable.status_code == 422 and "guessable" in guessable.text
    off = {k: None for k in refill}
    assert api.patch(f"/api/v1/groups/{gid}", json=off).json()["refill_pattern"] is None
