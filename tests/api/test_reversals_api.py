"""HTTP: the never-issued rule of a group, reversing a redemption, lifting a block."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from promocodes.codes.models import Redemption
from promocodes.db import Database
from tests.api.test_groups_api import _problem
from tests.audit.common import entries
from tests.factories import assert_counters_exact


def _group(api: TestClient, codes: list[str], **fields: object) -> int:
    r = api.post("/api/v1/groups", json={"name": "G", "codes": codes, **fields})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _issue(api: TestClient, gid: int, customer: str) -> str:
    api.put(f"/api/v1/customers/{customer}", json={})
    got = api.post(f"/api/v1/groups/{gid}/issue", json={"customer_id": customer}).json()
    return str(got["code"])


def _redemptions(db: Database) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(Redemption)) or 0


def test_personal_codes_must_be_issued_before_they_are_redeemed(
    api: TestClient, db: Database
) -> None:
    gid = _group(api, ["P1", "P2"])
    assert api.get(f"/api/v1/groups/{gid}").json()["redeem_unissued"] is False
    _problem(api.post("/api/v1/codes/P1/redeem", json={"order_id": "o-1"}), 409, "code-not-issued")
    code = _issue(api, gid, "ann")
    assert api.post(f"/api/v1/codes/{code}/redeem", json={"order_id": "o-1"}).status_code == 200
    # The flyer setting, switched on: any code of the group may be redeemed.
    patched = api.patch(f"/api/v1/groups/{gid}", json={"redeem_unissued": True})
    assert patched.json()["redeem_unissued"] is True
    assert api.post("/api/v1/codes/P2/redeem", json={"order_id": "o-2"}).status_code == 200
    _problem(
        api.patch(f"/api/v1/groups/{gid}", json={"redeem_unissued": None}), 422, "validation-error"
    )
    assert _redemptions(db) == 2
    assert_counters_exact(db, gid)


def test_flyer_group_set_at_creation(api: TestClient, db: Database) -> None:
    gid = _group(api, ["F1"], redeem_unissued=True)
    done = api.post("/api/v1/codes/F1/redeem", json={"order_id": "till-1"})
    assert done.status_code == 200, done.text
    group = api.get(f"/api/v1/groups/{gid}").json()
    assert (group["active"], group["issued"], group["redeemed"]) == (0, 0, 1)


def test_reversal_returns_the_code_to_its_holder_or_to_stock(api: TestClient, db: Database) -> None:
    gid = _group(api, ["R1", "R2", "R3"], redeem_unissued=True)
    held = _issue(api, gid, "ann")
    api.post(f"/api/v1/codes/{held}/redeem", json={"customer_id": "ann", "order_id": "o-1"})
    api.post("/api/v1/codes/R3/redeem", json={"order_id": "o-3"})
    assert _redemptions(db) == 2
    wrong = _problem(
        api.delete(f"/api/v1/codes/{held}/redemption?order_id=o-9"), 409, "wrong-order"
    )
    assert "'o-1'" in wrong["detail"] and "'o-9'" in wrong["detail"]
    _problem(api.delete(f"/api/v1/codes/{held}/redemption"), 409, "wrong-order")
    back = api.delete(f"/api/v1/codes/{held}/redemption?order_id=o-1")
    assert back.json() == {
        "code": held, "status": "issued", "previous_status": "redeemed", "order_id": "o-1"
    }  # fmt: skip
    stock = api.delete("/api/v1/codes/R3/redemption?order_id=o-3").json()
    assert stock["status"] == "available"
    _problem(api.delete("/api/v1/codes/R3/redemption?order_id=o-3"), 409, "code-not-redeemed")
    _problem(api.delete("/api/v1/codes/R2/redemption?order_id=o-3"), 409, "code-not-redeemed")
    _problem(api.delete("/api/v1/codes/NOPE/redemption?order_id=o"), 404, "code-not-found")
    assert _redemptions(db) == 0
    group = api.get(f"/api/v1/groups/{gid}").json()
    assert (group["active"], group["issued"], group["redeemed"]) == (2, 1, 0)
    assert_counters_exact(db, gid)
    # The holder may redeem it again, with another order.
    again = api.post(f"/api/v1/codes/{held}/redeem", json={"customer_id": "ann", "order_id": "o-2"})
    assert again.status_code == 200
    assert_counters_exact(db, gid)
    recorded = [
        (e.target_name, e.details["order_id"], e.details["status"])
        for e in entries(db, "code.unredeemed")
    ]
    assert recorded == [(held, "o-1", "issued"), ("R3", "o-3", "available")]


def test_unblock_returns_the_code_to_its_holder_or_to_stock(api: TestClient, db: Database) -> None:
    gid = _group(api, ["B1", "B2", "B3"])
    held = _issue(api, gid, "ann")
    for code in (held, "B2"):
        api.post(f"/api/v1/codes/{code}/block")
    assert api.post(f"/api/v1/codes/{held}/unblock").json() == {
        "code": held, "status": "issued", "previous_status": "blocked"
    }  # fmt: skip
    assert api.post("/api/v1/codes/B2/unblock").json()["status"] == "available"
    # Not blocked: nothing changes, and nothing is recorded.
    assert api.post("/api/v1/codes/B2/unblock").json() == {
        "code": "B2", "status": "available", "previous_status": "available"
    }  # fmt: skip
    _problem(api.post("/api/v1/codes/NOPE/unblock"), 404, "code-not-found")
    assert [e.details["status"] for e in entries(db, "code.unblocked")] == ["issued", "available"]
    group = api.get(f"/api/v1/groups/{gid}").json()
    assert (group["active"], group["issued"], group["blocked"]) == (2, 1, 0)
    assert_counters_exact(db, gid)
    # Back in stock, the code is issued again like any other.
    assert _issue(api, gid, "bob") == "B2"
    assert_counters_exact(db, gid)


def test_bulk_redemption_streams_a_file(api: TestClient, db: Database) -> None:
    gid = _group(api, ["K1", "K2", "K3"], redeem_unissued=True)
    csv_body = "code,order_id\nK1,o-1\nK2,o-2\nNOPE,o-3\n"
    url = "/api/v1/codes/redemptions"
    first = api.post(url, content=csv_body, headers={"Content-Type": "text/csv"})
    assert first.status_code == 200, first.text
    assert first.json() == {
        "received": 3, "redeemed": 2, "already": 0, "rejected": 1,
        "rejected_lines": [{"line": 4, "code": "NOPE", "reason": "unknown code"}],
    }  # fmt: skip
    again = api.post(url, content=csv_body, headers={"Content-Type": "text/csv"}).json()
    assert (again["redeemed"], again["already"]) == (0, 2)
    lines = '{"code": "K3", "order_id": "o-9"}\n'
    jsonl = api.post(url, content=lines, headers={"Content-Type": "application/x-ndjson"})
    assert jsonl.json()["redeemed"] == 1
    _problem(
        api.post(url, content="K1\n", headers={"Content-Type": "text/plain"}),
        422,
        "validation-error",
    )
    plain = api.post(f"{url}?order_id=o-1", content="K1\n", headers={"Content-Type": "text/plain"})
    assert plain.json()["already"] == 1
    _problem(
        api.post(url, content="{}", headers={"Content-Type": "application/json"}),
        415,
        "unsupported-media-type",
    )
    too_big = api.post(
        url,
        content=b"K1,o-1\n" * (64 * 1024 * 1024 // 7 + 1),
        headers={"Content-Type": "text/csv"},
    )
    _problem(too_big, 413, "payload-too-large")
    assert _redemptions(db) == 3
    assert_counters_exact(db, gid)
    # Recorded when a file redeemed something; the re-runs changed nothing and left none.
    assert [e.details["redeemed"] for e in entries(db, "codes.redeemed")] == [2, 1]


HEADER_ONLY = (
    "The file has only a header line ('code,order_id') and no codes below it: nothing to redeem."
)
XLSX = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00[Content_Types].xml" + bytes(300)


@pytest.mark.parametrize(
    ("data", "slug", "detail"),
    [
        (XLSX, "not-a-text-file", "This file is not a text file (it looks like an Excel"),
        (b"%PDF-1.7\n" + bytes(50), "not-a-text-file", "This file is not a text file (it looks"),
        (b"K1,o-1\n\x00\x00\x01\x02binary", "not-a-text-file", "This file is not a text file (it"),
        (b"", "validation-error", "The file is empty: nothing to redeem."),
        (b"\r\n  \r\n", "validation-error", "The file is empty: nothing to redeem."),
        # A header and no line of redemptions below it (nor one of empty cells).
        (b"code,order_id\n", "validation-error", HEADER_ONLY),
        (b"\xef\xbb\xbfcode,order_id\r\n,\r\n\r\n", "validation-error", HEADER_ONLY),
    ],
)
def test_a_redemption_file_that_is_not_text_or_is_empty_is_refused_up_front(
    api: TestClient, db: Database, data: bytes, slug: str, detail: str
) -> None:
    # As a code upload is: one sentence, not a report of undecodable lines or of zeros.
    gid = _group(api, ["K1"], redeem_unissued=True)
    url = "/api/v1/codes/redemptions?order_id=o-1"
    for kind in ("text/csv", "text/plain"):
        problem = _problem(api.post(url, content=data, headers={"Content-Type": kind}), 422, slug)
        assert problem["detail"].startswith(detail), problem
    assert _redemptions(db) == 0 and entries(db, "codes.redeemed") == []
    assert_counters_exact(db, gid)
    # A file of text in another encoding than UTF-8 is read in it, as an upload is.
    utf16 = "code,order_id\nK1,o-1\n".encode("utf-16")
    done = api.post(url, content=utf16, headers={"Content-Type": "text/csv"})
    assert done.status_code == 200 and done.json()["redeemed"] == 1, done.text


def test_a_redemption_time_must_be_a_moment_that_happened(api: TestClient, db: Database) -> None:
    """Year 1 and 9999 were taken (on SQLite year 1 was stored as text no read could
    parse: the group's codes, its analytics and the customer's codes were 500 from then
    on), and 9999-12-31T23:59:59-01:00, past the year 9999 in UTC, made the whole file a
    500. Each such line is refused in words; the rest of the file goes in."""
    gid = _group(api, [f"T{i}" for i in range(8)], redeem_unissued=True)
    soon = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = (
        "code,order_id,redeemed_at\n"
        "T0,o-0,0001-01-01\n"
        "T1,o-1,9999-12-31\n"
        "T2,o-2,9999-12-31T23:59:59-01:00\n"
        "T3,o-3,1999-12-31T23:59:59Z\n"
        f"T4,o-4,{later}\n"
        "T5,o-5,2000-01-01T00:00:00Z\n"  # the floor itself is a moment like any
        f"T6,o-6,{soon}\n"  # a till's clock a minute fast
        "T7,o-7,\n"
    )
    answer = api.post(
        "/api/v1/codes/redemptions", content=body, headers={"Content-Type": "text/csv"}
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    before, future = "before 2000, earlier than any code redeemed here", "in the future: a"
    reasons = {r["line"]: r["reason"] for r in report["rejected_lines"]}
    assert (report["redeemed"], report["rejected"]) == (3, 5), report
    assert reasons[2] == f"bad date '0001-01-01': {before}"
    assert reasons[3].startswith("bad date '9999-12-31': in the future: a redemption file")
    assert reasons[4].startswith(f"bad date '9999-12-31T23:59:59-01:00': {future}")
    assert reasons[5] == f"bad date '1999-12-31T23:59:59Z': {before}"
    assert reasons[6].startswith(f"bad date '{later}': {future}")
    assert _redemptions(db) == 3
    assert_counters_exact(db, gid)
    for url in (f"/api/v1/groups/{gid}/codes", f"/api/v1/groups/{gid}/analytics"):
        assert api.get(url).status_code == 200, url
