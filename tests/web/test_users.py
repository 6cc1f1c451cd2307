"""Users of the web UI: the service's rules and the CLI."""

from __future__ import annotations

import threading

import pytest
from typer.testing import CliRunner

from promocodes.cli import app
from promocodes.db import Database
from promocodes.errors import ValidationFailed
from promocodes.users import service as users
from tests.audit.common import only
from tests.conftest import reset
from tests.web.conftest import app_client, log_in

runner = CliRunner()


def test_create_normalises_and_refuses_duplicates_and_weak_passwords(db: Database) -> None:
    with db.write() as s:
        user = users.create_user(s, "  Ann@Example.COM ", "long enough", role="admin")
        assert user.email == "ann@example.com"
        assert user.password_hash.startswith("$argon2id$")
    with db.write() as s, pytest.raises(users.UserExists):
        users.create_user(s, "ann@example.com", "another one", role="admin")
    with db.write() as s, pytest.raises(ValidationFailed, match="at least 8"):
        users.create_user(s, "bob@example.com", "short", role="admin")
    with db.write() as s, pytest.raises(ValidationFailed, match="not an email"):
        users.create_user(s, "bob", "long enough", role="admin")
    with db.write() as s:
        assert users.authenticate(s, "ANN@example.com", "long enough").email == "ann@example.com"
    with db.write() as s, pytest.raises(users.InvalidCredentials):
        users.authenticate(s, "ann@example.com", "long enougH")


def test_cli_creates_a_user_who_can_log_in(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMOCODES_DATABASE_URL", db.url)
    result = runner.invoke(app, ["users", "create", "ops@example.com", "--password", "s3cret-pass"])
    assert result.exit_code == 0, result.output
    assert "User ops@example.com created (marketer)." in result.output
    prompted = runner.invoke(
        app, ["users", "create", "two@example.com"], input="pass-word-1\npass-word-1\n"
    )
    assert prompted.exit_code == 0, prompted.output
    mismatch = runner.invoke(
        app, ["users", "create", "three@example.com"], input="pass-word-1\nother-one\n"
    )
    assert mismatch.exit_code != 0
    again = runner.invoke(app, ["users", "create", "ops@example.com", "--password", "s3cret-pass"])
    assert again.exit_code == 1 and "already exists" in again.output
    listed = runner.invoke(app, ["users", "list"])
    assert "ops@example.com" in listed.output and "two@example.com" in listed.output
    with app_client(db) as client:
        assert log_in(client, "two@example.com", "pass-word-1").status_code == 303


def test_set_password_ends_the_users_sessions(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    with db.write() as s:
        users.create_user(s, "ann@example.com", "first password", role="admin")
    with app_client(db) as client:
        log_in(client, "ann@example.com", "first password")
        assert client.get("/groups").status_code == 200
        monkeypatch.setenv("PROMOCODES_DATABASE_URL", db.url)
        result = runner.invoke(
            app, ["users", "set-password", "ann@example.com", "--password", "second password"]
        )
        assert result.exit_code == 0, result.output
        assert client.get("/groups", follow_redirects=False).status_code == 303
        assert log_in(client, "ann@example.com", "second password").status_code == 303


def test_delete_ends_the_users_sessions_and_keeps_the_last_user(db: Database) -> None:
    with db.write() as s:
        users.create_user(s, "ann@example.com", "first password", role="admin")
        users.create_user(s, "bob@example.com", "other password", role="admin")
    with app_client(db) as client:
        log_in(client, "ann@example.com", "first password")
        assert client.get("/groups").status_code == 200
        with db.write() as s:
            users.delete_user(s, " ANN@example.com")
        assert client.get("/groups", follow_redirects=False).status_code == 303
        assert log_in(client, "ann@example.com", "first password").status_code != 303
    with db.write() as s, pytest.raises(users.UserNotFound):
        users.delete_user(s, "ann@example.com")
    with db.write() as s, pytest.raises(users.LastUser, match="only user"):
        users.delete_user(s, "bob@example.com")
    with db.read() as s:
        assert [u.email for u in users.list_users(s)] == ["bob@example.com"]
    assert only(db, "user.deleted").target_name == "ann@example.com"


def test_two_removals_racing_on_postgresql_leave_one_user(pg_url: str) -> None:
    db = Database(pg_url)
    reset(db)
    with db.write() as s:
        users.create_user(s, "ann@example.com", "first password", role="admin")
        users.create_user(s, "bob@example.com", "other password", role="admin")
    outcome: list[BaseException | None] = []

    def remove_bob() -> None:
        try:
            with db.write() as s:
                users.delete_user(s, "bob@example.com")
            outcome.append(None)
        except BaseException as exc:  # reported to the test below
            outcome.append(exc)

    try:
        with db.write() as s:
            users.delete_user(s, "ann@example.com")
            racer = threading.Thread(target=remove_bob)
            racer.start()
            racer.join(0.5)  # it waits on the rows this transaction has locked
            assert racer.is_alive() and not outcome
        racer.join(10)
        assert len(outcome) == 1 and isinstance(outcome[0], users.LastUser)
        with db.read() as s:
            assert [u.email for u in users.list_users(s)] == ["bob@example.com"]
    finally:
        db.dispose()


def test_cli_delete_asks_first_and_refuses_the_last_user(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    with db.write() as s:
        users.create_user(s, "ann@example.com", "first password", role="admin")
        users.create_user(s, "bob@example.com", "other password", role="admin")
    monkeypatch.setenv("PROMOCODES_DATABASE_URL", db.url)
    declined = runner.invoke(app, ["users", "delete", "ann@example.com"], input="n\n")
    assert declined.exit_code != 0 and "Remove user ann@example.com?" in declined.output
    removed = runner.invoke(app, ["users", "delete", "Ann@Example.com"], input="y\n")
    assert removed.exit_code == 0, removed.output
    assert "User ann@example.com removed." in removed.output
    last = runner.invoke(app, ["users", "delete", "bob@example.com", "--yes"])
    assert last.exit_code == 1 and "only user" in last.output
    unknown = runner.invoke(app, ["users", "delete", "nobody@example.com", "--yes"])
    assert unknown.exit_code == 1 and "no user" in unknown.output
    with db.read() as s:
        assert [u.email for u in users.list_users(s)] == ["bob@example.com"]
