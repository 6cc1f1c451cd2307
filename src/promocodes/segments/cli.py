"""CLI commands for segments (``promocodes segments preview|export``)."""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from promocodes import exports
from promocodes.audit.service import Actor
from promocodes.clikit import JSON_OPTION, cli_errors, console, database, print_json
from promocodes.errors import ValidationFailed
from promocodes.segments import service
from promocodes.segments.schemas import DEFAULT_SAMPLE, MAX_SAMPLE
from promocodes.segments.tree import parse_filter

segments_app = typer.Typer(help="Customer segments built from filters.", no_args_is_help=True)


def _read_json(file: str) -> Any:
    raw = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(f"{file} is not valid JSON: {exc}") from None


@segments_app.command("preview")
@cli_errors
def segments_preview(
    file: str = typer.Argument(..., help="A filter tree as JSON (see docs); - for stdin."),
    sample: int = typer.Option(
        DEFAULT_SAMPLE, min=0, max=MAX_SAMPLE, help="How many matching customers to show."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Count the customers a filter selects and show the first few, without saving it."""
    tree = parse_filter(_read_json(file))
    with console.status("Counting customers…"), database().read() as session:
        result = service.preview(session, tree, sample_size=sample)
    if as_json:
        print_json(result)
        return
    console.print(f"[bold]{result.count:,}[/] customers match.")
    if not result.sample:
        return
    table = Table("customer", "email", "name", "attributes", title="Sample (first by id)")
    for c in result.sample:
        name = " ".join(part for part in (c.first_name, c.last_name) if part)
        attributes = ", ".join(f"{k}={v}" for k, v in sorted(c.attributes.items()))
        table.add_row(c.customer_id, c.email or "", name, attributes)
    console.print(table)


@segments_app.command("export")
@cli_errors
def segments_export(
    segment_id: int,
    output: str = typer.Option("-", "--output", "-o", help="File to write; - for stdout."),
) -> None:
    """Export a saved segment's customers as CSV (safe to open in a spreadsheet; audited,
    since customers are personal data)."""
    with ExitStack() as stack:
        target = (
            sys.stdout if output == "-" else stack.enter_context(Path(output).open("w", newline=""))
        )
        done = exports.segment_customers(database(), segment_id, actor=Actor.cli())
        for chunk in done.chunks:
            target.write(chunk)
