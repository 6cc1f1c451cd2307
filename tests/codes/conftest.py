"""The CLI as a person runs it, against the test's database."""

from __future__ import annotations

from typing import Protocol

import pytest
from typer.testing import CliRunner

from promocodes.cli import app
from promocodes.db import Database

runner = CliRunner()


class Cli(Protocol):
    def __call__(self, *args: str, input: str | bytes | None = None, code: int = 0) -> str: ...


@pytest.fixture
def cli(db: Database, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("PROMOCODES_DATABASE_URL", db.url)

    def run(*args: str, input: str | bytes | None = None, code: int = 0) -> str:
        result = runner.invoke(app, list(args), input=input)
        assert result.exit_code == code, result.output
        return result.output

    return run
