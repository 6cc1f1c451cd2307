"""Each sensitive action over the REST API records exactly one entry naming the API key;
a failed action records none; the log is readable over the API and nothing else."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from promocodes.audit.models import AuditEntry
from promocodes.db import Database
from tests.api.conftest import client_for
from tests.audit.common import entries, only


@pytest.fixture
def api(db: Database) -> Iterator[TestClient]:
    with client_for(db) as client:
        yield client


def _key_id(db: Database) -> str:
    [created] = entries(db, "apikey.created")  # the fixture's key, made by the system
    assert created.actor_kind == "system"
    assert created.target_id is not None
    return created.target_id


def _by_key(db: Database, entry: AuditEntry) -> None:
    assert (entry.actor_kind, entry.actor_id, entry.actor_name) == ("api_key", _key_id(db), "tests")


def _group(api: TestClient, codes: list[str], name: str = "G") -> int:
    body = {"name": name, "codes": codes} if codes else {"name": name}
    response = api.post("/api/v1/groups", json=body)
    assert response.status_code == 201, response.text
    gid: int = response.json()["id"]
    return gid


def test_upload_block_withdraw_lookup_export_delete(api: TestClient, db: Database) -> None:
    gid = _group(api, ["A1", "A2"])
    created = only(db, "upload.created")
    _by_key(db, created)
    assert created.target_type == "upload"
    assert created.details["group_id"] == gid and created.details["added"] == 2

    report = api.post(f"/api/v1/groups/{gid}/codes", json={"codes": ["B1", "B2", "B2", "A1"]})
    assert report.status_code == 200, report.text
    second = entries(db, "upload.created")[1]
    _by_key(db, second)
    assert second.target_id == str(report.json()["upload_id"])
    assert (second.details["added"], second.details["already_in_group"]) == (2, 1)

    block = api.post("/api/v1/codes/A1/block", headers={"X-Request-ID": "trace-42"})
    assert block.status_code == 200
    blocked = only(db, "code.blocked")
    _by_key(db, blocked)
    assert blocked.request_id == "trace-42"
    assert (blocked.target_type, blocked.target_name) == ("code", "A1")
    assert blocked.details == {"group_id": gid, "previous_status": "available"}

    assert api.get("/api/v1/codes/A2").status_code == 200
    looked = only(db, "code.looked_up")
    _by_key(db, looked)
    assert looked.target_name == "A2"
    # The log shows the group by name (it showed a link labelled "open").
    assert looked.details == {"group_id": gid, "group_name": "G"}

    upload_id = report.json()["upload_id"]
    assert api.post(f"/api/v1/uploads/{upload_id}/withdraw").status_code == 200
    withdrawn = only(db, "upload.withdrawn")
    _by_key(db, withdrawn)
    assert (withdrawn.target_id, withdrawn.details["removed"]) == (str(upload_id), 2)

    csv = api.get(f"/api/v1/groups/{gid}/codes", headers={"Accept": "text/csv"})
    assert csv.status_code == 200 and "A2" in csv.text
    exported = only(db, "export.codes")
    _by_key(db, exported)
    assert (exported.target_type, exported.target_id, exported.target_name) == (
        "group",
        str(gid),
        "G",
    )
    # Paging through codes as JSON is not an export.
    assert api.get(f"/api/v1/groups/{gid}/codes").status_code == 200
    assert len(entries(db, "export.codes")) == 1

    assert api.delete(f"/api/v1/groups/{gid}").status_code == 204
    deleted = only(db, "group.deleted")
    _by_key(db, deleted)
    assert (deleted.target_id, deleted.target_name) == (str(gid), "G")
    assert [e.action for e in entries(db)] == [
        "apikey.created",
        "upload.created",
        "upload.created",
        "code.blocked",
        "code.looked_up",
        "upload.withdrawn",
        "export.codes",
        "group.deleted",
    ]


def test_archiving_a_group_with_history_is_recorded_as_archived(
    api: TestClient, db: Database
) -> None:
    gid = _group(api, ["H1"])
    assert api.put("/api/v1/customers/c1", json={}).status_code in (200, 201)
    issued = api.post(f"/api/v1/groups/{gid}/issue", json={"customer_id": "c1"})
    assert issued.status_code == 200, issued.text
    assert api.delete(f"/api/v1/groups/{gid}").status_code == 204
    archived = only(db, "group.archived")
    _by_key(db, archived)
    assert archived.details["issued"] == 1
    assert entries(db, "group.deleted") == []


def test_failed_actions_record_nothing(api: TestClient, db: Database) -> None:
    gid = _group(api, [])
    before = len(entries(db))
    assert api.post("/api/v1/codes/NOPE/block").status_code == 404
    assert api.get("/api/v1/codes/NOPE").status_code == 404
    assert api.post("/api/v1/uploads/999/withdraw").status_code == 404
    assert api.delete("/api/v1/groups/999").status_code == 404
    assert api.post("/api/v1/groups/999/codes", json={"codes": ["X1"]}).status_code == 404
    accept_csv = {"Accept": "text/csv"}
    assert api.get("/api/v1/groups/999/codes", headers=accept_csv).status_code == 404
    dry = api.post(f"/api/v1/groups/{gid}/codes?dry_run=true", json={"codes": ["D1"]})
    assert dry.status_code == 200 and dry.json()["added"] == 1
    # Without a valid key nothing runs, so nothing is recorded either.
    anonymous = api.post("/api/v1/codes/X/block", headers={"Authorization": "Bearer pc_x_y"})
    assert anonymous.status_code == 401
    assert len(entries(db)) == before


def test_retried_block_and_withdraw_record_once(api: TestClient, db: Database) -> None:
    gid = _group(api, ["R1", "R2"])
    upload_id = only(db, "upload.created").target_id
    for _ in range(3):
        assert api.post("/api/v1/codes/R1/block").status_code == 200
        assert api.post(f"/api/v1/uploads/{upload_id}/withdraw").status_code == 200
    assert len(entries(db, "code.blocked")) == 1
    assert only(db, "upload.withdrawn").details == {"group_id": gid, "removed": 1}


def test_background_upload_is_recorded_once_when_it_commits(db: Database) -> None:
    with client_for(db, upload_background_bytes=10) as api:
        gid = _group(api, [])
        body = "".join(f"BG{i}\n" for i in range(100))
        accepted = api.post(
            f"/api/v1/groups/{gid}/codes", content=body, headers={"Content-Type": "text/plain"}
        )
        assert accepted.status_code == 202, accepted.text
        deadline = time.monotonic() + 60
        while api.get(accepted.headers["location"]).json()["status"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    created = only(db, "upload.created")
    _by_key(db, created)
    assert created.target_id == str(accepted.json()["upload_id"])
    assert created.details["added"] == 100


def test_the_log_is_listed_filtered_and_paged(api: TestClient, db: Database) -> None:
    gid = _group(api, [f"P{i}" for i in range(5)])
    for i in range(5):
        assert api.post(f"/api/v1/codes/P{i}/block").status_code == 200
    page = api.get("/api/v1/audit", params={"action": "code.blocked", "limit": 2}).json()
    assert [e["target"]["name"] for e in page["items"]] == ["P4", "P3"]
    seen = [e["target"]["name"] for e in page["items"]]
    while page["next_cursor"]:
        page = api.get(
            "/api/v1/audit",
            params={"action": "code.blocked", "limit": 2, "cursor": page["next_cursor"]},
        ).json()
        seen += [e["target"]["name"] for e in page["items"]]
    assert seen == ["P4", "P3", "P2", "P1", "P0"]

    first = api.get("/api/v1/audit", params={"action": "upload."}).json()["items"]
    assert [e["action"] for e in first] == ["upload.created"]
    assert first[0]["actor"] == {"kind": "api_key", "id": _key_id(db), "name": "tests"}
    assert first[0]["details"]["group_id"] == gid
    by_key = api.get("/api/v1/audit", params={"actor": f"api_key:{_key_id(db)}"}).json()
    assert len(by_key["items"]) == 6
    assert len(api.get("/api/v1/audit", params={"actor": "tests"}).json()["items"]) == 6
    system = api.get("/api/v1/audit", params={"actor": "system"}).json()["items"]
    assert [e["action"] for e in system] == ["apikey.created"]
    one = api.get("/api/v1/audit", params={"target_type": "code", "target_id": "x"}).json()
    assert one["items"] == []
    future = api.get("/api/v1/audit", params={"since": "2999-01-01T00:00:00"}).json()
    assert future["items"] == []
    past = api.get("/api/v1/audit", params={"until": "2000-01-01T00:00:00Z"}).json()
    assert past["items"] == []
    assert api.get("/api/v1/audit", params={"cursor": "garbage!"}).status_code == 422
    # A time is an RFC 3339 string, not a number of seconds.
    assert api.get("/api/v1/audit", params={"until": "0.5"}).status_code == 422
    assert api.get("/api/v1/audit", headers={"Authorization": ""}).status_code == 401


def test_no_interface_changes_the_log(api: TestClient, db: Database) -> None:
    _group(api, ["E1"])
    entry_id = only(db, "upload.created").id
    for path in ("/api/v1/audit", f"/api/v1/audit/{entry_id}"):
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response = api.request(method, path, json={"action": "forged"})
            assert response.status_code in (404, 405), (method, path, response.status_code)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert api.request(method, "/api/v1/audit").status_code == 405
    operations = {
        (method, path)
        for path, item in api.get("/openapi.json").json()["paths"].items()
        if "audit" in path
        for method in item
    }
    assert operations == {("get", "/api/v1/audit")}
    assert [e.action for e in entries(db)] == ["apikey.created", "upload.created"]
