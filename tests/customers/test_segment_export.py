"""A segment's customers as CSV from each face (web, API, CLI): every customer the
segment counts and no other, across several pages, formula-safe, audited with who and
how many; only marketers and admins, and API keys with ``read``."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from promocodes.apikeys import service as apikeys
from promocodes.app import create_app
from promocodes.config import Settings
from promocodes.customers import service as customers
from promocodes.customers.schemas import CustomerIn
from promocodes.db import Database
from promocodes.messaging import mailings
from promocodes.segments import export as segment_export
from promocodes.segments import service as segments
from promocodes.users import service as users
from tests.audit.common import entries, only
from tests.codes import conftest as cli_conftest
from tests.codes.conftest import Cli
from tests.messaging.test_mailings import segment

cli = cli_conftest.cli  # the CLI fixture, as the codes tests drive it

OSLO = {"type": "attribute", "name": "city", "op": "eq", "value": "Oslo"}


def world(db: Database, monkeypatch: pytest.MonkeyPatch) -> int:
    """13 customers, 8 of them in Oslo (one named like a formula), exported 4 a page."""
    monkeypatch.setattr(segment_export, "PAGE", 4)
    with db.write() as s:
        for i in range(13):
            city = "Oslo" if i % 3 else "Bergen"
            customers.upsert(
                s,
                CustomerIn(
                    customer_id=f"c{i:02d}",
                    email=f"c{i}@example.com",
                    first_name="=cmd|' /C calc'!A0" if i == 1 else f"N{i}",
                    attributes={"city": city, "n": i},
                ),
            )
    return segment(db, "Oslo", OSLO)


def rows_of(text: str) -> list[dict[str, str]]:
    table = list(csv.reader(io.StringIO(text)))
    assert tuple(table[0]) == segment_export.COLUMNS
    return [dict(zip(table[0], r, strict=True)) for r in table[1:]]


def expected_ids(db: Database, segment_id: int) -> list[str]:
    with db.read() as s:
        tree = segments.tree_of(segments.get(s, segment_id))
        assert segments.count(s, tree) == 8
        page, _ = segments.customers_page(s, tree, cursor=None, limit=1000)
    return [c.customer_id for c in page]


def check(db: Database, segment_id: int, text: str, actor_kind: str) -> None:
    """The export holds exactly the segment's customers, formula-safe, and was audited."""
    rows = rows_of(text)
    assert [r["customer_id"] for r in rows] == expected_ids(db, segment_id)
    by_id = {r["customer_id"]: r for r in rows}
    assert by_id["c01"]["first_name"] == "'=cmd|' /C calc'!A0"  # text, not a formula
    assert by_id["c02"]["email"] == "c2@example.com"
    assert by_id["c02"]["attributes"] == '{"city": "Oslo", "n": 2}'
    assert by_id["c02"]["created_at"].endswith("+00:00") and by_id["c02"]["phone"] == ""
    entry = only(db, "export.customers")
    assert (entry.target_type, entry.target_id, entry.target_name) == (
        "segment",
        str(segment_id),
        "Oslo",
    )
    assert entry.details == {"rows": 8} and entry.actor_kind == actor_kind


def test_cli_export(
    cli: Cli, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = world(db, monkeypatch)
    out = tmp_path / "oslo.csv"
    cli("segments", "export", str(sid), "--output", str(out))
    check(db, sid, out.read_text(encoding="utf-8"), "cli")
    assert rows_of(cli("segments", "export", str(sid))) == rows_of(out.read_text())
    assert "segment 99 does not exist" in cli("segments", "export", "99", code=1)
    assert len(entries(db, "export.customers")) == 2  # nothing recorded for no segment
    unwritable = cli("segments", "export", str(sid), "-o", str(tmp_path / "no" / "x.csv"), code=1)
    assert "No such file or directory" in unwritable and "Traceback" not in unwritable
    assert len(entries(db, "export.customers")) == 2  # nothing disclosed, nothing recorded


def _client(db: Database, scope: str) -> TestClient:
    with db.write() as s:
        _, token = apikeys.create(s, f"only {scope}", scopes=[scope])
    app = create_app(Settings(database_url=db.url), db)
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})


def test_api_export(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    sid = world(db, monkeypatch)
    url = f"/api/v1/segments/{sid}/customers"
    with _client(db, "read") as api:
        answer = api.get(url, headers={"Accept": "text/csv"})
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        assert f'filename="segment-{sid}-customers.csv"' in answer.headers["content-disposition"]
        check(db, sid, answer.text, "api_key")
        # Without the header, the JSON page as before, and nothing audited.
        assert len(api.get(url, params={"limit": 2}).json()["items"]) == 2
        missing = api.get("/api/v1/segments/99/customers", headers={"Accept": "text/csv"})
        assert missing.status_code == 404 and missing.json()["type"] == "segment-not-found"
    for scope in ("issue", "redeem", "manage"):
        with _client(db, scope) as other:
            refused = other.get(url, headers={"Accept": "text/csv"})
            assert refused.status_code == 403 and refused.json()["scope"] == "read"
    assert len(entries(db, "export.customers")) == 1


def _browser(db: Database, role: str) -> TestClient:
    with db.write() as s:
        user = users.create_user(s, f"{role}@example.com", "a long password", role=role)
        token = users.start_session(s, user)
    client = TestClient(create_app(Settings(database_url=db.url), db))
    client.cookies.set("pc_session", token)
    return client


def test_web_export_for_marketers_and_admins(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    sid = world(db, monkeypatch)
    link = f"/segments/{sid}/customers.csv"
    with _browser(db, "viewer") as viewer:
        assert link not in viewer.get(f"/segments/{sid}").text
        refused = viewer.get(link)
        assert refused.status_code == 403 and "role" in refused.text
    assert entries(db, "export.customers") == []
    with _browser(db, "marketer") as marketer:
        assert link in marketer.get(f"/segments/{sid}").text
        answer = marketer.get(link)
        assert answer.status_code == 200
        check(db, sid, answer.text, "user")
        assert marketer.get("/segments/99/customers.csv").status_code == 404
    with _browser(db, "admin") as admin:
        assert admin.get(link).status_code == 200
    assert len(entries(db, "export.customers")) == 2


def test_a_deleted_segment_is_not_exported(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    sid = world(db, monkeypatch)
    with db.write() as s:
        mailings.delete_segment(s, sid)
    with _client(db, "read") as api:
        answer = api.get(f"/api/v1/segments/{sid}/customers", headers={"Accept": "text/csv"})
        assert answer.status_code == 404
    assert entries(db, "export.customers") == []
