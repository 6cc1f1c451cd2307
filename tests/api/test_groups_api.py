"""HTTP: groups, uploads and codes endpoints, success and each documented error."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
from fastapi.testclient import TestClient

from promocodes.db import Database
from tests.api.conftest import client_for
from tests.factories import assert_counters_exact, group_with_codes


def _problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == slug and body["status"] == status and body["detail"]
    assert isinstance(body, dict)
    return body


def test_auth_is_required(api: TestClient) -> None:
    bare = TestClient(api.app)
    _problem(bare.get("/api/v1/groups"), 401, "unauthorized")
    _problem(
        bare.get("/api/v1/groups", headers={"Authorization": "Bearer pc_x_y"}), 401, "unauthorized"
    )
    _problem(
        bare.get("/api/v1/groups", headers={"Authorization": "Basic abc"}), 401, "unauthorized"
    )


def test_group_crud(api: TestClient) -> None:
    created = api.post(
        "/api/v1/groups",
        json={"name": "Summer 10%", "codes": ["S1", "S2", "bad!"], "low_stock_threshold": 5},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["total"], body["active"], body["upload"]["added"]) == (2, 2, 2)
    assert body["upload"]["invalid"][0]["line"] == 3
    gid = body["id"]
    got = api.get(f"/api/v1/groups/{gid}").json()
    assert set(got) >= {
        "id",
        "name",
        "description",
        "total",
        "active",
        "issued",
        "redeemed",
        "blocked",
        "valid_from",
        "valid_until",
        "low_stock_threshold",
        "created_at",
        "updated_at",
    }
    patched = api.patch(f"/api/v1/groups/{gid}", json={"description": "Beach"}).json()
    assert patched["description"] == "Beach" and patched["name"] == "Summer 10%"
    _problem(api.post("/api/v1/groups", json={"name": " summer 10% "}), 409, "group-name-taken")
    _problem(api.post("/api/v1/groups", json={"name": ""}), 422, "validation-error")
    # Found by the schema fuzzer: beyond the 32-bit column it was a 500 on PostgreSQL.
    for threshold in (2**31, -1):
        for method, url in (("POST", "/api/v1/groups"), ("PATCH", f"/api/v1/groups/{gid}")):
            body = {"name": "Big", "low_stock_threshold": threshold}
            problem = _problem(api.request(method, url, json=body), 422, "validation-error")
            assert "low_stock_threshold" in str(problem)
    assert api.get(f"/api/v1/groups/{gid}").json()["low_stock_threshold"] == 5
    _problem(api.get("/api/v1/groups/999"), 404, "group-not-found")
    assert api.delete(f"/api/v1/groups/{gid}").status_code == 204
    _problem(api.get(f"/api/v1/groups/{gid}"), 404, "group-not-found")


def test_list_groups_paginates(api: TestClient) -> None:
    for i in range(5):
        api.post("/api/v1/groups", json={"name": f"G{i}"})
    first = api.get("/api/v1/groups", params={"limit": 2}).json()
    names = [g["name"] for g in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = api.get("/api/v1/groups", params={"limit": 2, "cursor": cursor}).json()
        names += [g["name"] for g in page["items"]]
        cursor = page["next_cursor"]
    assert names == [f"G{i}" for i in range(5)]
    # A cursor outside its declared pattern is refused; any cursor of the pattern is a
    # position (past the last id: an empty page).
    _problem(api.get("/api/v1/groups", params={"cursor": "nope!"}), 422, "validation-error")
    assert api.get("/api/v1/groups", params={"cursor": "zzz"}).json()["items"] == []
    # A method the path does not answer: 405 naming every method it does.
    refused = api.delete("/api/v1/groups")
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, POST"


def test_upload_in_every_format_and_dry_run(api: TestClient, db: Database) -> None:
    gid = api.post("/api/v1/groups", json={"name": "G"}).json()["id"]
    url = f"/api/v1/groups/{gid}/codes"
    dry = api.post(
        url, params={"dry_run": "true"}, content="D1\nD2\n", headers={"Content-Type": "text/plain"}
    )
    assert dry.status_code == 200 and dry.json()["added"] == 2
    assert api.get(f"/api/v1/groups/{gid}").json()["total"] == 0
    report = api.post(url, json={"codes": ["J1", "J2", "J1"]}).json()
    assert (report["added"], report["duplicates_in_upload"]) == (2, 1)
    text = api.post(url, content="T1\r\nJ1\r\n", headers={"Content-Type": "text/plain"}).json()
    assert (text["added"], text["already_in_group"]) == (1, 1)
    csv = api.post(
        url, content="code,valid_until\nC1,2030-01-01\n", headers={"Content-Type": "text/csv"}
    ).json()
    assert csv["added"] == 1
    multi = api.post(url, files={"file": ("codes.txt", b"M1\nM2\n=x\n", "text/plain")}).json()
    assert (multi["added"], multi["invalid_count"]) == (2, 1)
    assert set(multi) >= {
        "received",
        "added",
        "duplicates_in_upload",
        "already_in_group",
        "in_other_groups",
        "invalid_count",
        "invalid",
    }
    _problem(
        api.post(url, content=b"x", headers={"Content-Type": "image/png"}),
        415,
        "unsupported-media-type",
    )
    _problem(api.post(url, json={"nope": 1}), 422, "validation-error")
    _problem(api.post("/api/v1/groups/999/codes", json={"codes": ["Z"]}), 404, "group-not-found")
    assert_counters_exact(db, gid)


def test_large_upload_runs_in_background_and_reports(db: Database) -> None:
    with client_for(db, upload_background_bytes=1000) as api:
        gid = api.post("/api/v1/groups", json={"name": "Big"}).json()["id"]
        body = "".join(f"BIG{i:06d}\n" for i in range(5000)) + "bad code\n"
        accepted = api.post(
            f"/api/v1/groups/{gid}/codes", content=body, headers={"Content-Type": "text/plain"}
        )
        assert accepted.status_code == 202, accepted.text
        location = accepted.headers["location"]
        deadline = time.monotonic() + 30
        while (state := api.get(location).json())["status"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert state["status"] == "done", state
        assert state["report"]["added"] == 5000 and state["report"]["invalid_count"] == 1
        assert state["report"]["invalid"][0]["line"] == 5001
        assert api.get(f"/api/v1/groups/{gid}").json()["total"] == 5000
        withdrawn = api.post(f"{location}/withdraw").json()
        assert withdrawn["withdrawn"] == 5000
        assert api.get(f"/api/v1/groups/{gid}").json()["total"] == 0
        _problem(api.get("/api/v1/uploads/999"), 404, "upload-not-found")


def test_body_limits(db: Database) -> None:
    with client_for(db, max_body_bytes=1000, max_upload_bytes=5000) as api:
        _problem(api.post("/api/v1/groups", json={"name": "x" * 2000}), 413, "payload-too-large")
        gid = api.post("/api/v1/groups", json={"name": "G"}).json()["id"]

        def chunks() -> Iterator[bytes]:
            for _ in range(10):
                yield b"A" * 999 + b"\n"

        _problem(
            api.post(
                f"/api/v1/groups/{gid}/codes",
                content=chunks(),
                headers={"Content-Type": "text/plain"},
            ),
            413,
            "payload-too-large",
        )
        assert api.get(f"/api/v1/groups/{gid}").json()["total"] == 0


def test_codes_listing_and_formula_safe_csv_export(api: TestClient) -> None:
    gid = api.post("/api/v1/groups", json={"name": "G", "codes": ["-A1", "B2", "C3"]}).json()["id"]
    api.put("/api/v1/customers/ann", json={"email": "ann@x.io"})
    issued = api.post(f"/api/v1/groups/{gid}/issue", json={"customer_id": "ann"}).json()
    page = api.get(f"/api/v1/groups/{gid}/codes", params={"limit": 2}).json()
    assert [c["code"] for c in page["items"]] == ["-A1", "B2"] and page["next_cursor"]
    rest = api.get(
        f"/api/v1/groups/{gid}/codes", params={"limit": 2, "cursor": page["next_cursor"]}
    ).json()
    assert [c["code"] for c in rest["items"]] == ["C3"] and rest["next_cursor"] is None
    issued_rows = api.get(f"/api/v1/groups/{gid}/codes", params={"status": "issued"}).json()
    assert [(c["code"], c["customer_id"]) for c in issued_rows["items"]] == [
        (issued["code"], "ann")
    ]
    export = api.get(f"/api/v1/groups/{gid}/codes", headers={"Accept": "text/csv"})
    assert export.headers["content-type"].startswith("text/csv")
    lines = export.text.strip().splitlines()
    assert lines[0].startswith("code,status,customer_id")
    assert lines[1].startswith("'-A1,issued,ann")
    _problem(
        api.get(f"/api/v1/groups/{gid}/codes", params={"status": "lost"}), 422, "validation-error"
    )


def test_an_id_in_a_path_is_digits_alone(api: TestClient, db: Database) -> None:
    """``int()`` reads ``1_0`` as 10 and ``+2`` as 2: another spelling of an id must not
    name another (or any) row. Digits alone are read; anything else is a 422 naming it."""
    ten = [group_with_codes(db, f"G{i}", [f"G{i}-1"]) for i in range(10)][-1]
    assert api.get(f"/api/v1/groups/{ten}").json()["id"] == ten
    for spelling in ("1_0", "+2", "2.0", "%202", "2%20", "%EF%BC%92"):
        got = api.get(f"/api/v1/groups/{spelling}")
        body = _problem(got, 422, "validation-error")
        assert body["errors"][0]["field"] == "path.group_id", body
        assert "digits alone" in body["errors"][0]["message"]
    assert api.get("/api/v1/groups/0010").json()["id"] == ten  # still digits: the number


def test_a_group_keeps_its_name(api: TestClient, db: Database) -> None:
    gid = group_with_codes(db, "Keeps", ["K1"])
    body = _problem(
        api.patch(f"/api/v1/groups/{gid}", json={"name": None}), 422, "validation-error"
    )
    (error,) = body["errors"]
    assert error["field"] == "name" and "a group keeps its name" in error["message"]
    assert api.get(f"/api/v1/groups/{gid}").json()["name"] == "Keeps"


def test_a_json_body_sent_as_something_else_says_to_send_json(api: TestClient) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"content-type": content_type} if content_type else {}
        got = api.post("/api/v1/groups", content=b'{"name": "Typed"}', headers=headers)
        (error,) = _problem(got, 422, "validation-error")["errors"]
        assert error["field"] == "body"
        assert "Content-Type: application/json" in error["message"], error
        assert (content_type or "no content type") in error["message"]
    assert api.post("/api/v1/groups", json={"name": "Typed"}).status_code == 201


def test_an_empty_patch_changes_nothing_not_even_updated_at(api: TestClient, db: Database) -> None:
    gid = group_with_codes(db, "Still", ["S1"])
    before = api.get(f"/api/v1/groups/{gid}").json()
    time.sleep(0.01)
    patched = api.patch(f"/api/v1/groups/{gid}", json={})
    assert patched.status_code == 200 and patched.json() == before
    assert api.get(f"/api/v1/groups/{gid}").json() == before
