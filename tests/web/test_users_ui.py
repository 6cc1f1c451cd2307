"""Users from the settings page: add someone with a password shown once, reset a
forgotten password, remove someone who left, change your own password. Each change is
audited under the acting user, and ends the sessions it must."""

from __future__ import annotations

import re

from promocodes.db import Database
from promocodes.users import service as users
from tests.audit.common import entries, only
from tests.web.conftest import EMAIL, PASSWORD, Ui, app_client, log_in


def one_time_password(html: str) -> str:
    found = re.search(r'<code id="new-password">([^<]+)</code>', html)
    assert found, "no one-time password on the page"
    return found.group(1)


def user_id(db: Database, email: str) -> int:
    with db.read() as s:
        return users.get_by_email(s, email).id


def test_add_a_user_who_logs_in_with_the_password_shown_once(ui: Ui, db: Database) -> None:
    page = ui.post("/settings/users", {"email": " Ann@Example.com "})
    assert page.status_code == 200 and "User ann@example.com added." in page.text
    password = one_time_password(page.text)
    assert len(password) == 16
    assert "new-password" not in ui.get("/settings").text  # shown only that once
    entry = entries(db, "user.created")[-1]  # after the logged-in user's own
    assert (entry.target_name, entry.actor_name) == ("ann@example.com", EMAIL)
    with app_client(db) as other:
        assert log_in(other, "ann@example.com", password).status_code == 303
    twice = ui.post("/settings/users", {"email": "ann@example.com"})
    assert twice.status_code == 422 and "already exists" in twice.text
    assert 'value="ann@example.com"' in twice.text
    bad = ui.post("/settings/users", {"email": "not an address"})
    assert bad.status_code == 422 and "is not an email address" in bad.text
    assert len(entries(db, "user.created")) == 2


def test_reset_ends_their_sessions_and_shows_the_new_password(ui: Ui, db: Database) -> None:
    with db.write() as s:
        users.create_user(s, "bob@example.com", "bobs old password", role="admin")
    bob = user_id(db, "bob@example.com")
    with app_client(db) as other:
        log_in(other, "bob@example.com", "bobs old password")
        assert other.get("/groups").status_code == 200
        assert (
            "Reset the password of bob@example.com?" in ui.get(f"/settings/users/{bob}/reset").text
        )
        page = ui.post(f"/settings/users/{bob}/reset")
        assert page.status_code == 200 and "Password of bob@example.com reset" in page.text
        assert other.get("/groups", follow_redirects=False).status_code == 303
        assert log_in(other, "bob@example.com", "bobs old password").status_code != 303
        assert log_in(other, "bob@example.com", one_time_password(page.text)).status_code == 303
    assert only(db, "user.password_changed").actor_name == EMAIL
    assert ui.get("/settings/users/999/reset").status_code == 404
    own = ui.post(f"/settings/users/{user_id(db, EMAIL)}/reset")
    assert own.status_code == 409 and "Change your password" in own.text
    assert len(entries(db, "user.password_changed")) == 1
    assert ui.get("/settings").status_code == 200  # still logged in


def test_remove_someone_but_not_yourself(ui: Ui, db: Database) -> None:
    with db.write() as s:
        users.create_user(s, "cy@example.com", "cys own password", role="admin")
    cy, me = user_id(db, "cy@example.com"), user_id(db, EMAIL)
    settings = ui.get("/settings").text
    assert f'href="/settings/users/{cy}/remove"' in settings
    assert f'href="/settings/users/{me}/remove"' not in settings  # no link to remove yourself
    assert "Remove cy@example.com?" in ui.get(f"/settings/users/{cy}/remove").text
    done = ui.post(f"/settings/users/{cy}/remove")
    assert done.status_code == 303 and done.headers["location"] == "/settings"
    after = ui.get("/settings").text
    assert "User cy@example.com removed." in after  # the flash
    assert "<td>cy@example.com" not in after and f"<td>{EMAIL}" in after
    assert only(db, "user.deleted").target_name == "cy@example.com"
    refused = ui.post(f"/settings/users/{me}/remove")
    assert refused.status_code == 409 and "cannot remove yourself" in refused.text
    with db.read() as s:
        assert [u.email for u in users.list_users(s)] == [EMAIL]


def test_change_your_own_password(ui: Ui, db: Database) -> None:
    form = {"current": PASSWORD, "new": "a new long password", "again": "a new long password"}
    wrong = ui.post("/settings/password", {**form, "current": "not it"})
    assert wrong.status_code == 422 and "current password is not right" in wrong.text
    differ = ui.post("/settings/password", {**form, "again": "something else"})
    assert differ.status_code == 422 and "two new passwords differ" in differ.text
    short = ui.post("/settings/password", {**form, "new": "short", "again": "short"})
    assert short.status_code == 422 and "at least 8 characters" in short.text
    assert entries(db, "user.password_changed") == []
    done = ui.post("/settings/password", form)
    assert done.status_code == 303 and done.headers["location"] == "/login"
    assert ui.get("/settings", follow_redirects=False).status_code == 303  # logged out
    assert log_in(ui.client, EMAIL, PASSWORD).status_code != 303
    assert log_in(ui.client, EMAIL, "a new long password").status_code == 303
    assert only(db, "user.password_changed").target_name == EMAIL


def test_user_pages_need_a_login_and_a_csrf_token(db: Database) -> None:
    with db.write() as s:
        users.create_user(s, EMAIL, PASSWORD, role="admin")
    with app_client(db) as client:
        for url in ("/settings/password", "/settings/users/1/reset"):
            response = client.get(url, follow_redirects=False)
            assert response.status_code == 303 and "/login" in response.headers["location"]
        log_in(client)
        forged = client.post("/settings/users", data={"email": "eve@example.com"})
        assert forged.status_code == 403
    assert [e.target_name for e in entries(db, "user.created")] == [EMAIL]


def test_guessing_the_current_password_is_throttled(ui: Ui, db: Database) -> None:
    form = {"current": "guess", "new": "a new long password", "again": "a new long password"}
    answers = [ui.post("/settings/password", form).status_code for _ in range(12)]
    # The login used one attempt of the same bucket (10 at once, then one every 10 s).
    assert answers[:9] == [422] * 9 and set(answers[9:]) == {429}
    right = ui.post("/settings/password", {**form, "current": PASSWORD})
    assert right.status_code == 429 and "too many attempts" in right.text
    assert entries(db, "user.password_changed") == []
