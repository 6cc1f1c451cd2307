"""CLI commands for customers (``promocodes customers import|show|list|erase``)."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path

import typer
from rich.table import Table

from promocodes import erasure
from promocodes.audit.service import Actor
from promocodes.clikit import JSON_OPTION, cli_errors, console, database, print_json
from promocodes.codes import lookup
from promocodes.customers import service
from promocodes.customers.importer import read_customers

customers_app = typer.Typer(help="Customers and their promo codes.", no_args_is_help=True)


@customers_app.command("import")
@cli_errors
def customers_import(
    file: str = typer.Argument(
        ..., help="JSON lines, CSV (customer_id column) or a JSON array; - for stdin."
    ),
) -> None:
    """Create or update customers from a file; bad lines are reported, the rest go in."""
    with ExitStack() as stack:
        stream = sys.stdin.buffer if file == "-" else stack.enter_context(Path(file).open("rb"))
        with console.status("Importing customers…"), database().write() as session:
            report = service.import_customers(
                session, read_customers(stream, filename=None if file == "-" else file)
            )
    table = Table("", "count", title="Customer import")
    for label, value in (
        ("records received", report.received),
        ("created", report.created),
        ("updated", report.updated),
        ("invalid", report.invalid_count),
    ):
        table.add_row(label, f"{value:,}")
    console.print(table)
    if report.invalid:
        bad = Table("line", "problem", title="Invalid records")
        for item in report.invalid:
            bad.add_row(str(item.line), item.message)
        console.print(bad)


@customers_app.command("show")
@cli_errors
def customers_show(customer_id: str, as_json: bool = JSON_OPTION) -> None:
    """A customer's profile and the promo codes they were issued (newest first; with
    --json, ``{"customer": …, "promo_codes": […]}`` in the API's shapes)."""
    with database().read() as session:
        customer = service.get(session, customer_id)
        out = service.to_out(customer)
        history = [
            lookup.promo_code_out(h)
            for h in lookup.customer_history(session, customer, limit=1_000)
        ]
    if as_json:
        print_json({"customer": out, "promo_codes": history})
        return
    console.print(f"[bold]{out.customer_id}[/] {out.first_name or ''} {out.last_name or ''}")
    for label, value in (("email", out.email), ("phone", out.phone)):
        if value:
            console.print(f"{label}: {value}")
    for key, value in sorted(out.attributes.items()):
        console.print(f"{key}: {value}")
    table = Table("code", "group", "kind", "issued", "source", "status", title="Promo codes")
    for h in history:
        source = f"{h.source} {h.source_ref}" if h.source_ref else h.source
        table.add_row(
            h.code, h.group_name, h.kind, f"{h.issued_at:%Y-%m-%d %H:%M}", source, h.status
        )
    console.print(table if history else "No promo codes issued yet.")


@customers_app.command("erase")
@cli_errors
def customers_erase(
    customer_id: str, yes: bool = typer.Option(False, "--yes", "-y"), as_json: bool = JSON_OPTION
) -> None:
    """Erase a customer's personal data (the right to be forgotten): fields, attributes
    and their messages' addresses and bodies. Their promo code history stays, under a
    pseudonymous id."""
    if not yes:
        typer.confirm(f"Erase customer {customer_id!r} for good?", abort=True)
    with database().write() as session:
        done = erasure.erase(session, customer_id, actor=Actor.cli())
    if as_json:
        print_json(done)
        return
    if done.already:
        console.print(f"{done.customer_id} was already erased; nothing changed.")
        return
    console.print(
        f"Erased: the customer's history now stands under {done.customer_id} "
        f"({done.messages_redacted:,} messages redacted)."
    )
