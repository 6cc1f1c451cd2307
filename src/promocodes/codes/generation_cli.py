"""``promocodes codes generate``: codes drawn from a pattern into a group, as an upload
(registered on the ``codes`` command group by ``codes/cli.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from promocodes.audit.service import Actor
from promocodes.clikit import cli_errors, console, database, progress_bar
from promocodes.codes import generation, service


@cli_errors
def codes_generate(
    group: str,
    pattern: str = typer.Argument(
        ..., help="# a digit, ? a letter, * either; other characters as written."
    ),
    count: int = typer.Argument(..., help="How many new codes."),
) -> None:
    """Generate COUNT new random codes of PATTERN (e.g. AUT-####-????) into a group.

    Codes are unique across the platform (drawn again when one exists). Refused when
    COUNT is more than 1 in 100 of the pattern's possible codes: they would be guessable.
    """
    with progress_bar() as bar:
        task = bar.add_task("Generating", total=count, lines=0, rate=0.0)
        with database().write() as session:
            target = service.resolve_group(session, group)
            done = generation.generate(
                session,
                target.id,
                pattern,
                count,
                source="cli",
                actor=Actor.cli(),
                progress=lambda r: bar.update(task, completed=r.added, lines=r.received),
            )
    console.print(
        f"Upload {done.upload_id}: {done.added:,} codes of {done.pattern} added to group "
        f"{done.group_id} ({done.collisions:,} drawn again: they existed already)."
    )
    if done.added < done.requested:
        console.print(f"Only {done.added:,} of {done.requested:,}: the pattern ran out of codes.")


# (name, command), in the order ``promocodes codes --help`` lists them.
COMMANDS: tuple[tuple[str, Callable[..., Any]], ...] = (("generate", codes_generate),)
