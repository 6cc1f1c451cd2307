"""``promocodes codes validate``: a checkout's question from the command line (registered
on the ``codes`` command group by ``codes/cli.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer
from rich.table import Table

from promocodes.clikit import JSON_OPTION, cli_errors, console, database, print_json
from promocodes.codes import checkout
from promocodes.codes.benefit import public_text
from promocodes.codes.schemas import ValidateOut
from promocodes.customers import service as customers


@cli_errors
def codes_validate(
    code: str,
    customer: str = typer.Option(
        None, "--customer", help="The customer (external id) at checkout."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Whether a code can be redeemed now, and why not; changes nothing. Exits 0 when it
    can, 1 when it cannot."""
    with database().read() as session:
        found = customers.get(session, customer) if customer else None
        out = checkout.as_out(checkout.validate(session, code, customer=found))
    if as_json:
        print_json(out)
    else:
        console.print(_table(out))
    if not out.valid:
        raise typer.Exit(code=1)


def _table(out: ValidateOut) -> Table:
    table = Table("", "", title=f"{out.code}: {'valid' if out.valid else 'not valid'}")
    if out.reason:
        table.add_row("reason", f"{out.reason}: {out.detail}")
    if out.group:
        table.add_row("group", f"{out.group.id}: {out.group.name}")
    if out.benefit:
        table.add_row("benefit", public_text(out.benefit))
    for label, when in (("valid from", out.valid_from), ("valid until", out.valid_until)):
        if when:
            table.add_row(label, f"{when:%Y-%m-%d %H:%M UTC}")
    return table


# (name, command), in the order ``promocodes codes --help`` lists them.
COMMANDS: tuple[tuple[str, Callable[..., Any]], ...] = (("validate", codes_validate),)
