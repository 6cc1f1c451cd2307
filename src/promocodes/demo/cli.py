"""``promocodes demo``: fill an empty database with the demo, with a progress bar."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from promocodes.clikit import cli_errors, console, database
from promocodes.config import Settings
from promocodes.demo.builder import build
from promocodes.demo.data import STEPS


@cli_errors
def command(
    force: bool = typer.Option(
        False, "--force", help="Add the demo even though the database already holds data."
    ),
) -> None:
    """Fill an empty database with demo data: groups, codes, customers, segments,
    mailings, a campaign and redemptions."""
    db = database()
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("Starting", total=len(STEPS))
        started = False

        def step(label: str) -> None:
            nonlocal started
            if started:
                bar.advance(task)
            started = True
            bar.update(task, description=label)

        result = build(db, Settings(), force=force, progress=step)
        bar.advance(task)
    console.print(
        f"Demo data ready: {len(result.groups)} groups with {result.codes:,} codes, "
        f"{result.customers:,} customers, {len(result.segments)} segments, "
        f"{len(result.mailings)} mailings, {len(result.campaigns)} active campaigns "
        f"({result.events:,} events), {result.redemptions:,} redemptions.",
        highlight=False,
    )
    console.print(
        f"API key {result.api_key} (shown only this once).", highlight=False, soft_wrap=True
    )
