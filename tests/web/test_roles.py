"""Roles and scopes as people meet them: the last administrator stays one, a viewer is
told in words why a change is refused, only an administrator manages users and keys, and
the CLI sets roles and scopes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from promocodes.cli import app
from promocodes.db import Database
from promocodes.errors import ValidationFailed
from promocodes.users import service as users
from tests.api.conftest import client_for
from tests.factories import group_with_codes
from tests.messaging.test_mailings import EVERYONE, segment
from tests.web.conftest import app_client, csrf_of, log_in

runner = CliRunner()


def _add(db: Database, email: str, role: str) -> int:
    with db.write() as s:
        return users.create_user(s, email, "a long password", role=role).id


def test_the_last_admin_cannot_be_demoted_or_removed(db: Database) -> None:
    admin = _add(db, "boss@example.com", "admin")
    _add(db, "ann@example.com", "marketer")
    with db.write() as s, pytest.raises(users.LastAdmin, match="only administrator"):
        users.set_role(s, admin, "marketer")
    with db.write() as s, pytest.raises(users.LastAdmin):
        users.delete_user(s, "boss@example.com")
    with db.write() as s, pytest.raises(ValidationFailed, match="must be one of"):
        users.set_role(s, admin, "owner")
    with db.write() as s:  # with a second admin, the first may step down
        users.set_role(s, users.get_by_email(s, "ann@example.com").id, "admin")
        assert users.set_role(s, admin, "viewer").role == "viewer"


def test_a_viewer_reads_but_is_told_why_a_change_is_refused(db: Database) -> None:
    _add(db, "boss@example.com", "admin")
    _add(db, "vic@example.com", "viewer")
    with app_client(db) as web:
        assert log_in(web, "vic@example.com", "a long password").status_code == 303
        assert web.get("/groups").status_code == 200
        settings = web.get("/settings").text
        assert 'id="my-role">viewer<' in settings and "Create API key" not in settings
        token = csrf_of(settings)
        refused = web.post("/groups/new", data={"csrf_token": token, "name": "X"})
        assert refused.status_code == 403
        assert "your role (viewer) may not make this change" in refused.text
        assert web.get("/groups/1/codes.csv").status_code == 403  # no exports of codes
        assert web.get("/settings/users/1/reset").status_code == 403
        assert 'id="api-reference"' not in settings  # the API reference is in admins' menu


def test_an_admin_finds_the_api_reference_in_the_menu(db: Database) -> None:
    _add(db, "boss@example.com", "admin")
    with app_client(db) as web:
        assert log_in(web, "boss@example.com", "a long password").status_code == 303
        assert '<a href="/docs" id="api-reference">API reference</a>' in web.get("/groups").text
        docs = web.get("/docs")
        assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text
        assert "script-src 'self';" in docs.headers["content-security-policy"]
        assert "cdn" not in docs.text.lower()
        assert web.get("/docs/assets/swagger-ui-bundle.js").status_code == 200


def test_an_admin_gives_roles_on_the_settings_page(db: Database) -> None:
    _add(db, "boss@example.com", "admin")
    ann = _add(db, "ann@example.com", "marketer")
    with app_client(db) as web:
        log_in(web, "boss@example.com", "a long password")
        page = web.get("/settings").text
        assert f'id="role-{ann}"' in page and 'id="user-role"' in page
        token = csrf_of(page)
        done = web.post(f"/settings/users/{ann}/role", data={"csrf_token": token, "role": "viewer"})
        assert done.status_code == 200 and "ann@example.com is now viewer" in done.text
        added = web.post(
            "/settings/users",
            data={"csrf_token": token, "email": "new@example.com", "role": "viewer"},
        )
        assert added.status_code == 200
    with db.read() as s:
        assert users.get(s, ann).role == "viewer"
        assert users.get_by_email(s, "new@example.com").role == "viewer"


def test_the_cli_sets_roles_and_scopes(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMOCODES_DATABASE_URL", db.url)
    made = runner.invoke(
        app, ["users", "create", "v@example.com", "--password", "long enough", "--role", "viewer"]
    )
    assert made.exit_code == 0 and "(viewer)" in made.output, made.output
    assert "v@example.com" in runner.invoke(app, ["users", "list"]).output
    lone = runner.invoke(app, ["users", "set-role", "v@example.com", "admin"])
    assert lone.exit_code == 0 and "now admin" in lone.output
    bad = runner.invoke(app, ["apikeys", "create", "till", "--scope", "redeem", "--scope", "pay"])
    assert bad.exit_code == 1 and "unknown scope 'pay'" in bad.output
    key = runner.invoke(app, ["apikeys", "create", "till", "--scope", "redeem"])
    assert key.exit_code == 0 and "redeem" in key.output
    token = key.output.strip().splitlines()[-1]
    with client_for(db) as api:
        api.headers["Authorization"] = f"Bearer {token}"
        refused = api.post("/api/v1/groups", json={"name": "G"})
        assert refused.status_code == 403
        problem = refused.json()
        assert problem["type"].endswith("scope-missing") and problem["scope"] == "manage"
        assert "needs the scope 'manage'" in problem["detail"]


LOOK_ONLY = "Your role (viewer) can look but not change; ask an administrator."
# What a page offers only to someone who may change things or download exports.
CONTROLS = (
    "Save changes", "Save campaign", "Save segment", "Save draft", ">Upload<", ">Check<",
    ">Generate<", ">Delete<", ">Export CSV<", "Export customers", 'href="/groups/new"',
    'href="/segments/new"', 'href="/campaigns/new"', 'href="/mailings/new"', "Send…",
    'action="/campaigns/1/pause"', 'id="export-messages"',
)  # fmt: skip


def _world(web: TestClient, db: Database) -> None:
    """As a marketer: a group with codes, a segment, a campaign and a draft mailing."""
    group_with_codes(db, "Spring", ["AAA-1", "AAA-2"])
    token = csrf_of(web.get("/groups/new").text)
    segment(db, "All", EVERYONE)
    body = "Code: {{ client.promocode('Spring') }}"
    message = {"csrf_token": token, "channel": "outbox", "subject": "Hi", "body_text": body}
    campaign = {**message, "name": "Welcome", "event": "signup", "active": "1", "body_html": ""}
    assert web.post("/campaigns/new", data=campaign, follow_redirects=False).status_code == 303
    mailing = {**message, "name": "Spring sale", "segment_id": "1", "body_html": ""}
    assert web.post("/mailings/new", data=mailing, follow_redirects=False).status_code == 303


PAGES = ("/groups", "/groups/1", "/segments", "/segments/1", "/campaigns", "/campaigns/1",
         "/campaigns/1/messages", "/mailings", "/mailings/1")  # fmt: skip
# Pages that hold nothing but a form: a viewer reads the sentence instead.
NEW_PAGES = ("/groups/new", "/segments/new", "/campaigns/new", "/mailings/new",
             "/groups/1/delete", "/campaigns/1/delete",
             "/mailings/1/send")  # fmt: skip


def test_a_viewer_is_shown_no_control_the_server_would_refuse(db: Database) -> None:
    _add(db, "boss@example.com", "admin")
    _add(db, "ann@example.com", "marketer")
    _add(db, "vic@example.com", "viewer")
    with app_client(db) as web:
        log_in(web, "ann@example.com", "a long password")
        _world(web, db)
        offered = " ".join(web.get(path).text for path in PAGES)
        for control in CONTROLS:  # the marketer still has every one of them
            assert control in offered, control
        for path in NEW_PAGES:
            page = web.get(path).text
            assert 'method="post"' in page and LOOK_ONLY not in page, path
    with app_client(db) as web:
        log_in(web, "vic@example.com", "a long password")
        for path in PAGES:
            page = web.get(path).text
            assert [c for c in CONTROLS if c in page] == [], path
        group = web.get("/groups/1").text
        assert "AAA-1" in group and LOOK_ONLY in group  # the data, read-only
        campaign = web.get("/campaigns/1").text
        assert 'value="Welcome"' in campaign and '<fieldset disabled class="readonly">' in campaign
        for path in NEW_PAGES:
            page = web.get(path).text
            assert LOOK_ONLY in page and 'method="post"' not in page.split("<main")[-1], path
