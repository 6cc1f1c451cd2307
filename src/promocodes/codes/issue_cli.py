"""``promocodes codes issue|lookup``: the operator's counter work, the API's issue and
look-up from the command line (registered on the ``codes`` command group by
``codes/cli.py``). The same services answer as in the API: the rules live there."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import typer
from rich.table import Table

from promocodes.audit.service import Actor
from promocodes.clikit import JSON_OPTION, cli_errors, console, database, print_json
from promocodes.codes import issuance, lookup, service
from promocodes.codes.models import REPEAT
from promocodes.codes.schemas import CodeLookupOut, IssueIn
from promocodes.errors import ValidationFailed

MAX_KEY = 200  # as the API's Idempotency-Key header


def _operation_key(idempotency_key: str | None) -> str:
    """The issuance's business key: the operator's, so running the command again with it
    answers the same code; otherwise a new one, so each run issues anew."""
    if idempotency_key is None:
        return f"cli:auto:{uuid.uuid4().hex}"
    if not idempotency_key.strip() or len(idempotency_key) > MAX_KEY or "\x00" in idempotency_key:
        raise ValidationFailed(
            f"--idempotency-key: give 1 to {MAX_KEY} characters (no NUL), not blank"
        )
    return f"cli:{idempotency_key}"


@cli_errors
def codes_issue(
    group: str = typer.Argument(..., help="The group, by id or exact name."),
    customer: str = typer.Argument(..., help="The customer's external id."),
    repeat: bool = typer.Option(
        False,
        "--repeat",
        help="Show the customer's last code from the group again (recorded as a repeat) "
        "instead of a new one.",
    ),
    idempotency_key: str = typer.Option(
        None,
        "--idempotency-key",
        help="Issue at most once per key (and group): running again with it answers the "
        "same code; the same key for another customer is refused.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Issue a code from a group to a customer, as `POST /api/v1/groups/{id}/issue` does
    (the group's validity, stock and per-customer limit hold alike)."""
    body = IssueIn.model_validate(
        {"customer_id": customer, "kind": REPEAT if repeat else "initial"}
    )
    key = _operation_key(idempotency_key)
    db = database()
    with db.read() as session:
        target = service.resolve_group(session, group)
        group_id, name = target.id, target.name
    with db.driver_write() as tx:
        fn = issuance.issue_repeat if repeat else issuance.issue_initial
        got = fn(tx, body.customer_id, group_id, key=key, source="cli")
    if as_json:
        print_json(issuance.as_out(got))
    elif got.code is None:
        console.print(
            f"{got.customer_id} has no code from group {group_id} ({name}) to show again.",
            highlight=False,
        )
    else:
        console.print(
            f"{got.code}: issued to {got.customer_id} from group {group_id} ({name}), {got.kind}.",
            highlight=False,
        )


@cli_errors
def codes_lookup(code: str, as_json: bool = JSON_OPTION) -> None:
    """Who got a code, when and through what, and its status (audited: a look-up reveals
    customers)."""
    # A write: the look-up is recorded in the audit log in the same transaction.
    with database().write() as session:
        out = lookup.as_out(lookup.lookup(session, code, actor=Actor.cli()))
    if as_json:
        print_json(out)
        return
    console.print(_summary(out))
    if not out.issuances:
        console.print("Never issued.")
        return
    table = Table("customer", "kind", "issued", "source", "voided", title="Issued")
    for h in out.issuances:
        source = f"{h.source} {h.source_ref}" if h.source_ref else h.source
        table.add_row(
            h.customer_id,
            h.kind,
            f"{h.issued_at:%Y-%m-%d %H:%M}",
            source,
            "yes" if h.voided else "",
        )
    console.print(table)


def _summary(out: CodeLookupOut) -> Table:
    table = Table("", "", title=f"{out.code}: {out.status}")
    table.add_row("group", f"{out.group_id}: {out.group_name}")
    if out.valid_until:
        table.add_row("valid until", f"{out.valid_until:%Y-%m-%d %H:%M UTC}")
    if out.redeemed_at:
        order = f" (order {out.order_id})" if out.order_id else ""
        table.add_row("redeemed", f"{out.redeemed_at:%Y-%m-%d %H:%M UTC}{order}")
    return table


# (name, command), in the order ``promocodes codes --help`` lists them.
COMMANDS: tuple[tuple[str, Callable[..., Any]], ...] = (
    ("issue", codes_issue),
    ("lookup", codes_lookup),
)
