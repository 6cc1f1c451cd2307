"""docs/cli.md is the CLI reference rendered from the command tree; it must be current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from promocodes import clidoc
from promocodes.cli import app

REFERENCE = Path(__file__).parents[2] / "docs" / "cli.md"


def test_cli_reference_is_current() -> None:
    current = clidoc.render()
    assert REFERENCE.read_text(encoding="utf-8") == current, "docs/cli.md is stale: run `make docs`"


def test_reference_has_every_command_and_its_options() -> None:
    text = clidoc.render()
    paths: list[str] = []

    def walk(command: Any, path: str) -> None:
        paths.append(path)
        for sub in getattr(command, "commands", {}).values():
            if not sub.hidden:
                walk(sub, f"{path} {sub.name}")

    walk(typer.main.get_command(app), "promocodes")
    missing = [p for p in paths if f"## `{p}`\n" not in text]
    assert missing == []
    assert {"promocodes groups create", "promocodes codes upload"} <= set(paths)
    # Defaults, both halves of a boolean flag and arguments appear as the CLI defines them.
    assert "| `--port` | int | Port to listen on. [default: 8000] |" in text
    assert "| `--allow-partial / --no-allow-partial` |  | Send to as many" in text
    assert "promocodes codes upload [OPTIONS] {group} {file}" in text


def test_reference_does_not_depend_on_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    wide = clidoc.render()
    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm-256color")
    narrow = clidoc.render()
    assert narrow == wide
    assert "\x1b[" not in narrow


def test_module_writes_the_reference_file(tmp_path: Path) -> None:
    out = tmp_path / "cli.md"
    subprocess.run([sys.executable, "-m", "promocodes.clidoc", str(out)], check=True)
    assert out.read_text(encoding="utf-8") == clidoc.render()
