"""API keys from the CLI: printed once on the last line, stored as a hash, revocable."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from promocodes.apikeys.models import ApiKey
from promocodes.app import create_app
from promocodes.cli import app as cli
from promocodes.config import Settings
from promocodes.db import Database


def test_create_use_list_revoke(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMOCODES_DATABASE_URL", db.url)
    runner = CliRunner()
    created = runner.invoke(cli, ["apikeys", "create", "Loyalty platform"])
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    assert token.startswith("pc_") and " " not in token
    with db.read() as s:
        stored = s.scalars(select(ApiKey)).one()
    assert token.split("_", 2)[2] not in (stored.secret_hash, stored.prefix)
    api = TestClient(create_app(Settings(database_url=db.url), db))
    auth = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/groups", headers=auth).status_code == 200
    listed = runner.invoke(cli, ["apikeys", "list"])
    assert "Loyalty" in listed.output and token.split("_", 2)[2] not in listed.output
    assert runner.invoke(cli, ["apikeys", "revoke", str(stored.id)]).exit_code == 0
    refused = api.get("/api/v1/groups", headers=auth)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    missing = runner.invoke(cli, ["apikeys", "revoke", "999"])
    assert missing.exit_code == 1 and "does not exist" in missing.output
