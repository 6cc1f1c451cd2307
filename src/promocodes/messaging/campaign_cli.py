"""CLI: ``promocodes campaigns list|show`` and ``promocodes events send`` — the API's
campaign reads and its event door, through the same services."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from promocodes.clikit import JSON_OPTION, cli_errors, console, database, print_json
from promocodes.config import Settings
from promocodes.errors import ValidationFailed
from promocodes.messaging import campaigns, events, outbox
from promocodes.messaging.schemas import CampaignOut, EventIn, EventOut

campaigns_app = typer.Typer(help="Campaigns: a message sent on an event.", no_args_is_help=True)
events_app = typer.Typer(help="Events that campaigns answer.", no_args_is_help=True)


def _json_object(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(f"--customer-fields is not valid JSON: {exc}") from None


def _stats(counts: dict[str, int]) -> str:
    return ", ".join(f"{n:,} {status}" for status, n in sorted(counts.items()) if n) or "none"


def _table(found: list[CampaignOut]) -> Table:
    table = Table("id", "name", "event", "channel", "active", "messages")
    for c in found:
        table.add_row(
            str(c.id), c.name, c.event, c.channel, "yes" if c.active else "no", _stats(c.stats)
        )
    return table


@campaigns_app.command("list")
@cli_errors
def campaigns_list(as_json: bool = JSON_OPTION) -> None:
    """The campaigns (not deleted), with their messages by status."""
    with database().read() as session:
        found = campaigns.to_outs(session, campaigns.list_campaigns(session))
    if as_json:
        print_json(found)
    else:
        console.print(_table(found) if found else "No campaigns.")


@campaigns_app.command("show")
@cli_errors
def campaigns_show(campaign_id: int, as_json: bool = JSON_OPTION) -> None:
    """One campaign: its event, channel, templates and messages by status."""
    with database().read() as session:
        out = campaigns.to_out(session, campaigns.get(session, campaign_id))
    if as_json:
        print_json(out)
        return
    console.print(_table([out]))
    console.print(f"[bold]Subject:[/] {out.subject}", highlight=False)
    for label, body in (("Text", out.body_text), ("HTML", out.body_html)):
        if body:
            console.print(f"[bold]{label}:[/]")
            console.print(body, markup=False, highlight=False)


@events_app.command("send")
@cli_errors
def events_send(
    event: str = typer.Argument(..., help="The event's name, e.g. signup."),
    customer: str = typer.Argument(..., help="The customer's external id."),
    event_id: str = typer.Option(
        None,
        "--event-id",
        help="Your id of the event: sending it again answers the same messages.",
    ),
    fields: str = typer.Option(
        None,
        "--customer-fields",
        help="The customer as the event knows them, a JSON object (as PUT /customers takes: "
        '{"email": …, "attributes": {…}}); applied only where a campaign on the event '
        "adds customers.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Send an event for a customer, as `POST /api/v1/events`: every active campaign on it
    renders and queues its message (issuing its codes)."""
    given = {"event": event, "customer_id": customer, "event_id": event_id}
    if fields is not None:
        given["customer"] = _json_object(fields)
    body = EventIn.model_validate({k: v for k, v in given.items() if v is not None})
    domain = Settings().message_id_domain
    with database().write() as session:
        done = events.receive(session, body)
        external_id = done.customer.external_id
        items = [outbox.out(m, external_id, domain) for m in done.messages]
    out = EventOut(
        event=body.event, customer_id=external_id, customer_change=done.change, messages=items
    )
    if as_json:
        print_json(out)
        return
    if done.change is not None:
        console.print(f"Customer {external_id}: {done.change}.", highlight=False)
    if not items:
        console.print(f"No active campaign answers {body.event!r}.", highlight=False)
        return
    table = Table("message", "status", "recipient", "subject", "skipped because")
    for m in items:
        table.add_row(str(m.id), m.status, m.recipient or "", m.subject or "", m.skip_reason or "")
    console.print(table)
