"""Checkout validation over HTTP: every reason a code cannot be redeemed now, for whom,
and proof that asking changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from promocodes.audit.models import AuditEntry
from promocodes.codes.models import Code, Issuance, Redemption
from promocodes.db import Database
from tests.api.test_groups_api import _problem
from tests.factories import assert_counters_exact


def _group(api: TestClient, name: str, codes: list[str], **fields: object) -> int:
    r = api.post("/api/v1/groups", json={"name": name, "codes": codes, **fields})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _issue(api: TestClient, gid: int, customer: str) -> str:
    api.put(f"/api/v1/customers/{customer}", json={})
    got = api.post(f"/api/v1/groups/{gid}/issue", json={"customer_id": customer})
    assert got.status_code == 200, got.text
    return str(got.json()["code"])


def _validate(api: TestClient, code: str, customer: str | None = None) -> dict[str, Any]:
    body = {} if customer is None else {"customer_id": customer}
    r = api.post(f"/api/v1/codes/{code}/validate", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _state(db: Database) -> tuple[Any, ...]:
    """Everything validation could touch: code rows, counters, history, audit."""
    with db.read() as s:
        codes = s.execute(select(Code.code, Code.status, Code.issued_at).order_by(Code.id)).all()
        counters = s.execute(text("SELECT * FROM group_counters ORDER BY group_id, slot")).all()
        return (
            codes,
            counters,
            s.scalar(select(func.count()).select_from(Issuance)),
            s.scalar(select(func.count()).select_from(Redemption)),
            s.scalar(select(func.count()).select_from(AuditEntry)),
        )


def test_a_held_code_is_valid_for_its_holder_only(api: TestClient, db: Database) -> None:
    gid = _group(
        api,
        "Autumn 15%",
        ["V1", "V2"],
        benefit={"type": "percent", "value": 15, "text": "15% off shoes"},
    )
    code = _issue(api, gid, "ann")
    api.put("/api/v1/customers/bob", json={})
    before = _state(db)
    mine = _validate(api, code, "ann")
    assert mine["valid"] is True and mine["reason"] is None
    assert mine["group"] == {"id": gid, "name": "Autumn 15%"}
    assert mine["benefit"] == {
        "type": "percent",
        "value": 15.0,
        "currency": None,
        "text": "15% off shoes",
    }
    assert _validate(api, code)["valid"] is True
    theirs = _validate(api, code, "bob")
    assert (theirs["valid"], theirs["reason"]) == (False, "code-issued-to-another-customer")
    assert "ann" not in str(theirs)
    # The never-issued code: refused for anyone, as redeem would.
    assert _validate(api, "V2")["reason"] == "code-not-issued"
    assert _validate(api, "V2", "ann")["reason"] == "code-not-issued"
    assert _state(db) == before, "validation changed something"
    assert_counters_exact(db, gid)


def test_every_reason_a_code_cannot_be_redeemed(api: TestClient, db: Database) -> None:
    now = datetime.now(UTC)
    unknown = _validate(api, "NOPE")
    assert (unknown["valid"], unknown["reason"], unknown["group"]) == (
        False,
        "code-not-found",
        None,
    )
    flyers = _group(api, "Flyers", ["F1", "F2", "F3"], redeem_unissued=True)
    assert _validate(api, "F1")["valid"] is True
    api.post("/api/v1/codes/F1/redeem", json={"order_id": "o-1"})
    assert _validate(api, "F1")["reason"] == "code-already-redeemed"
    api.post("/api/v1/codes/F2/block")
    assert _validate(api, "F2")["reason"] == "code-blocked"
    later = (now + timedelta(days=2)).isoformat()
    api.patch(f"/api/v1/groups/{flyers}", json={"valid_from": later})
    soon = _validate(api, "F3")
    assert soon["reason"] == "group-not-yet-valid" and soon["valid_from"] is not None
    api.patch(f"/api/v1/groups/{flyers}", json={"valid_from": None, "valid_until": later})
    assert _validate(api, "F3")["valid"] is True
    with db.write() as s:
        s.execute(text("UPDATE code_groups SET valid_until = :t"), {"t": now - timedelta(days=1)})
    assert _validate(api, "F3")["reason"] == "group-expired"
    # A code's own expiry, passed since its upload (an upload leaves out codes already
    # past their date).
    r = api.post(
        f"/api/v1/groups/{_group(api, 'Own', [], redeem_unissued=True)}/codes",
        content=f"code,valid_until\nOWN1,{later}\n",
        headers={"Content-Type": "text/csv"},
    )
    assert r.status_code in (200, 201), r.text
    with db.write() as s:
        s.execute(
            text("UPDATE codes SET valid_until = :t WHERE code = 'OWN1'"),
            {"t": now - timedelta(days=1)},
        )
    assert _validate(api, "OWN1")["reason"] == "code-expired"
    # An archived group: the code's history stays, its codes no longer count.
    held = _group(api, "Held", ["H1"])
    _issue(api, held, "cid")
    assert api.delete(f"/api/v1/groups/{held}").status_code == 204
    assert _validate(api, "H1")["reason"] == "group-archived"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer_id": ""}, "customer_id"),
        ({"customer_id": "x" * 201}, "customer_id"),
        ({"customer_id": "a\x00b"}, "customer_id"),
        ({"customer_id": 5}, "customer_id"),
        ({"order_id": "o-1"}, "order_id"),
    ],
)
def test_bad_input_is_refused_by_field(
    api: TestClient, db: Database, body: dict[str, object], field: str
) -> None:
    r = api.post("/api/v1/codes/ANY/validate", json=body)
    problem = _problem(r, 422, "validation-error")
    assert field in problem["detail"]


def test_no_body_and_unknown_customer(api: TestClient, db: Database) -> None:
    _group(api, "G", ["N1"], redeem_unissued=True)
    assert api.post("/api/v1/codes/N1/validate").json()["valid"] is True
    _problem(
        api.post("/api/v1/codes/N1/validate", json={"customer_id": "ghost"}),
        404,
        "customer-not-found",
    )
