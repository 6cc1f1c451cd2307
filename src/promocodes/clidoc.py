"""The CLI reference (docs/cli.md), rendered from the command tree itself.

Hand-written CLI docs drift the day someone adds an option; rendering them from the
Typer/Click objects, and failing a test when the committed file differs, keeps them true.
The output must not depend on the terminal: plain text from the parameters' own help
records (no rich panels, no ANSI, no wrapping), commands in the CLI's own order.

Regenerate with ``make docs`` (``python -m promocodes.clidoc docs/cli.md``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import typer

HEADER = """\
# CLI reference

<!-- Generated from the command tree by `make docs` (src/promocodes/clidoc.py); do not edit.
     tests/docs/test_cli_reference.py fails when this file is stale. -->

`promocodes` manages the database, groups, codes, uploads, customers, segments, API keys,
mailings, campaigns and web UI users, and runs the server and workers. It reads its
settings from `PROMOCODES_*` environment variables (the database is
`PROMOCODES_DATABASE_URL`, by default an SQLite file under `./var`). Every command accepts
`--help`; errors are printed as one line on standard error with exit code 1. Commands
that answer with data take `--json` for scripts: one line of JSON on standard output, in
the shape the API answers the same question (`codes issue --json` prints what
`POST /api/v1/groups/{id}/issue` returns).
"""

# A help record's first half is "--opt, -o <type>"; the type is shown in its own column.
_DECL = re.compile(r"^(?P<decl>.*?)(?: <(?P<type>[^<>]+)>)?$")


def _cell(text: str) -> str:
    """Text safe inside one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _walk(command: Any, name: str, parent: typer.Context | None) -> list[str]:
    # Explicit widths: the usage line and help records must not follow $COLUMNS.
    ctx = typer.Context(
        command, info_name=name, parent=parent, terminal_width=1000, max_content_width=1000
    )
    path = ctx.command_path
    out = [f"## `{path}`", ""]
    help_text = (command.help or "").strip()
    if help_text:
        out += [help_text, ""]
    usage = command.get_usage(ctx).removeprefix("Usage:").strip()
    out += ["```", usage, "```", ""]

    arguments: list[tuple[str, str, str]] = []
    options: list[tuple[str, str, str]] = []
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False) or param.name == "help":
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        head, help_part = record
        match = _DECL.match(head)
        decl = match["decl"] if match else head
        kind = (match["type"] if match else None) or ""
        row = (f"`{decl}`", kind, help_part)
        (arguments if param.param_type_name == "argument" else options).append(row)
    for title, rows in (("Argument", arguments), ("Option", options)):
        if rows:
            out += [f"| {title} | Type | Description |", "|---|---|---|"]
            out += [f"| {_cell(a)} | {_cell(b)} | {_cell(c)} |" for a, b, c in rows]
            out.append("")

    subcommands = []
    if isinstance(command, typer.core.TyperGroup):
        for sub_name in command.list_commands(ctx):
            sub = command.get_command(ctx, sub_name)
            if sub is not None and not getattr(sub, "hidden", False):
                subcommands.append((sub_name, sub))
    if subcommands:
        out += ["| Command | Summary |", "|---|---|"]
        out += [
            f"| [`{sub_name}`](#{_anchor(f'{path} {sub_name}')}) | "
            f"{_cell(sub.get_short_help_str(limit=1000))} |"
            for sub_name, sub in subcommands
        ]
        out.append("")
    for sub_name, sub in subcommands:
        out += _walk(sub, sub_name, ctx)
    return out


def _anchor(path: str) -> str:
    """GitHub's heading anchor for "## `promocodes groups create`"."""
    return re.sub(r"[^a-z0-9 _-]", "", path.lower()).replace(" ", "-")


def render(app: typer.Typer | None = None) -> str:
    """The whole reference as Markdown."""
    if app is None:
        from promocodes.cli import app as cli_app

        app = cli_app
    command = typer.main.get_command(app)
    lines = [HEADER, *_walk(command, "promocodes", None)]
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> None:
    """``python -m promocodes.clidoc [FILE]``: write the reference (stdout without FILE)."""
    text = render()
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":  # pragma: no cover
    main()
