"""Each sensitive CLI command records exactly one entry naming the operating-system user;
a failed command records none."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from promocodes.audit.models import AuditEntry
from promocodes.cli import app
from promocodes.db import Database
from tests.audit.common import entries, only

runner = CliRunner()


@pytest.fixture(autouse=True)
def _database_url(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMOCODES_DATABASE_URL", db.url)


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def _by_os_user(entry: AuditEntry) -> None:
    assert (entry.actor_kind, entry.actor_id, entry.actor_name) == ("cli", None, getpass.getuser())


def test_cli_actions_are_recorded_once_by_the_os_user(db: Database, tmp_path: Path) -> None:
    cli("groups", "create", "Cli")
    file = tmp_path / "codes.txt"
    file.write_text("C1\nC2\nC3\n")
    cli("codes", "upload", "Cli", str(file), "--dry-run")
    assert entries(db, "upload.created") == []
    cli("codes", "upload", "Cli", str(file))
    uploaded = only(db, "upload.created")
    _by_os_user(uploaded)
    assert (uploaded.target_name, uploaded.details["added"]) == (str(file), 3)

    cli("codes", "block", "C1")
    blocked = only(db, "code.blocked")
    _by_os_user(blocked)
    assert blocked.target_name == "C1"

    out = tmp_path / "out.csv"
    cli("codes", "export", "Cli", "--output", str(out))
    assert "C2" in out.read_text()
    exported = only(db, "export.codes")
    _by_os_user(exported)
    assert exported.target_name == "Cli"

    cli("uploads", "withdraw", uploaded.target_id or "", "--yes")
    withdrawn = only(db, "upload.withdrawn")
    _by_os_user(withdrawn)
    assert withdrawn.details["removed"] == 2

    cli("groups", "delete", "Cli", "--yes")
    _by_os_user(only(db, "group.deleted"))

    token = cli("apikeys", "create", "Ops").strip().splitlines()[-1]
    created = only(db, "apikey.created")
    _by_os_user(created)
    assert created.target_name == "Ops" and token not in str(created.details)
    cli("apikeys", "revoke", created.target_id or "")
    _by_os_user(only(db, "apikey.revoked"))

    cli("users", "create", "ops@example.com", "--password", "s3cret-pass")
    user = only(db, "user.created")
    _by_os_user(user)
    assert user.target_name == "ops@example.com" and "s3cret" not in str(user.details)
    cli("users", "create", "second@example.com", "--password", "s3cret-pass")
    cli("users", "delete", "ops@example.com", "--yes")
    removed = only(db, "user.deleted")
    _by_os_user(removed)
    assert removed.target_name == "ops@example.com"


def test_failed_cli_commands_record_nothing(db: Database, tmp_path: Path) -> None:
    file = tmp_path / "codes.txt"
    file.write_text("F1\n")
    cli("codes", "upload", "Missing", str(file), code=1)
    cli("codes", "block", "NOPE", code=1)
    cli("codes", "export", "Missing", code=1)
    cli("uploads", "withdraw", "99", "--yes", code=1)
    cli("groups", "delete", "Missing", "--yes", code=1)
    cli("apikeys", "revoke", "99", code=1)
    cli("users", "create", "not-an-email", "--password", "s3cret-pass", code=1)
    cli("users", "delete", "nobody@example.com", "--yes", code=1)
    assert entries(db) == []
