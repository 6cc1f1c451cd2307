"""Each sensitive action in the web UI records exactly one entry naming the logged-in
user, and the Audit log page shows and filters them without offering any change."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from promocodes.apikeys.scopes import SCOPES
from promocodes.audit.models import AuditEntry
from promocodes.db import Database
from tests.audit.common import entries, only
from tests.web.conftest import EMAIL, Ui, app_client, log_in, make_user
from tests.web.conftest import cheap_password_hashing as cheap_password_hashing  # autouse

ALL_SCOPES = list(SCOPES)

FIELDS = {
    "name": "",
    "description": "",
    "valid_from": "",
    "valid_until": "",
    "low_stock_threshold": "",
}


@pytest.fixture
def ui(db: Database) -> Iterator[Ui]:
    make_user(db)
    with app_client(db) as client:
        assert log_in(client).status_code == 303
        yield Ui(client, db)


def _by_user(entry: AuditEntry) -> None:
    assert (entry.actor_kind, entry.actor_name) == ("user", EMAIL)
    assert entry.actor_id is not None and entry.actor_id.isdigit()


def test_web_actions_are_recorded_once_by_the_user(ui: Ui, db: Database) -> None:
    created = ui.post("/groups/new", {**FIELDS, "name": "Web", "codes": "W1\nW2"})
    assert created.status_code == 303, created.text
    gid = int(re.findall(r"/groups/(\d+)", created.headers["location"])[0])
    first = only(db, "upload.created")
    _by_user(first)
    assert (first.details["group_id"], first.details["added"]) == (gid, 2)

    checked = ui.post(f"/groups/{gid}/upload", {"codes": "W3", "action": "check"})
    assert checked.status_code == 200  # a dry run writes nothing, so records nothing
    assert len(entries(db, "upload.created")) == 1
    uploaded = ui.post(f"/groups/{gid}/upload", {"codes": "W3\nW4"})
    assert uploaded.status_code == 303, uploaded.text
    second = entries(db, "upload.created")[1]
    _by_user(second)

    withdrawn = ui.post(f"/uploads/{second.target_id}/withdraw")
    assert withdrawn.status_code == 303
    _by_user(only(db, "upload.withdrawn"))
    assert only(db, "upload.withdrawn").details["removed"] == 2

    export = ui.get(f"/groups/{gid}/codes.csv")
    assert export.status_code == 200 and "W1" in export.text
    exported = only(db, "export.codes")
    _by_user(exported)
    assert exported.target_id == str(gid)

    key = ui.post("/settings/api-keys", {"name": "Shop", "scope": ALL_SCOPES})
    assert key.status_code == 200
    token = re.search(r"pc_[0-9a-f]+_[\w-]+", key.text)
    assert token is not None
    key_entry = only(db, "apikey.created")
    _by_user(key_entry)
    assert key_entry.target_name == "Shop"
    assert token.group(0) not in str(key_entry.details)  # never the secret
    assert ui.post(f"/settings/api-keys/{key_entry.target_id}/revoke").status_code == 303
    _by_user(only(db, "apikey.revoked"))

    assert ui.post(f"/groups/{gid}/delete").status_code == 303
    deleted = only(db, "group.deleted")
    _by_user(deleted)
    assert deleted.target_name == "Web"

    # Failed actions record nothing.
    count = len(entries(db))
    assert ui.post("/uploads/999/withdraw").status_code == 404
    assert ui.post("/groups/999/delete").status_code == 404
    assert ui.get("/groups/999/codes.csv").status_code == 404
    assert ui.post("/groups/999/upload", {"codes": "Z1"}).status_code in (404, 422)
    assert len(entries(db)) == count


def test_audit_page_lists_filters_and_offers_no_change(ui: Ui, db: Database) -> None:
    ui.post("/groups/new", {**FIELDS, "name": "Page <b>", "codes": "PG1"})
    ui.post("/settings/api-keys", {"name": "Shop", "scope": ALL_SCOPES})
    page = ui.get("/audit")
    assert page.status_code == 200
    assert 'href="/audit" aria-current="page"' in page.text
    # Actions read as words; the raw name stays on the row for admins (its title).
    assert 'data-action="upload.created"' in page.text and ">Codes uploaded<" in page.text
    assert 'title="apikey.created"' in page.text and ">API key created<" in page.text
    assert EMAIL in page.text and "Page &lt;b&gt;" in page.text  # escaped
    only_keys = ui.get("/audit", params={"action": "apikey.created"})
    assert 'data-action="apikey.created"' in only_keys.text
    assert 'data-action="upload.created"' not in only_keys.text
    assert '<option value="apikey.created" title="apikey.created" selected>' in only_keys.text
    nobody = ui.get("/audit", params={"actor": "someone@else"})
    assert "No entries match these filters" in nobody.text
    bad = ui.get("/audit", params={"since": "yesterday"})
    assert bad.status_code == 422 and "enter a date and time" in bad.text
    assert 'method="post"' not in page.text.split("<main", 1)[1]
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert ui.client.request(method, "/audit").status_code == 405


def test_audit_page_needs_a_login(db: Database) -> None:
    with app_client(db) as client:
        response = client.get("/audit", follow_redirects=False)
    assert response.status_code == 303 and "/login" in response.headers["location"]
