"""CLI: ``promocodes mailings …`` and ``promocodes outbox …``."""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from promocodes import exports
from promocodes.audit.service import Actor
from promocodes.clikit import JSON_OPTION, cli_errors, console, database, print_json
from promocodes.config import Settings
from promocodes.errors import ValidationFailed
from promocodes.messaging import mailings, outbox, resend
from promocodes.messaging.models import CHANNELS
from promocodes.messaging.schemas import MailingCreate
from promocodes.pagination import status_filter

mailings_app = typer.Typer(help="Mass mailings.", no_args_is_help=True)
outbox_app = typer.Typer(help="Stored messages of mailings and campaigns.", no_args_is_help=True)


def _read(path: str | None) -> str | None:
    return Path(path).read_text() if path else None


@mailings_app.command("create")
@cli_errors
def mailings_create(
    name: str,
    segment: int = typer.Option(..., help="Segment id."),
    subject: str = typer.Option(..., help="Subject template."),
    text: str = typer.Option(None, "--text", help="File with the plain-text body template."),
    html: str = typer.Option(None, "--html", help="File with the HTML body template."),
    channel: str = typer.Option("outbox", help=f"One of: {', '.join(CHANNELS)}."),
) -> None:
    """Create a draft mailing (templates are validated)."""
    data = MailingCreate(
        name=name,
        segment_id=segment,
        subject=subject,
        body_text=_read(text),
        body_html=_read(html),
        channel=channel,
    )
    with database().write() as s:
        mailing = mailings.create(s, data)
        mailing_id = mailing.id
    console.print(f"Created mailing {mailing_id} (draft).")


@mailings_app.command("check")
@cli_errors
def mailings_check(mailing_id: int) -> None:
    """Each group's codes against what the mailing needs, from a dry run of the template
    over a sample of up to 200 recipients (nothing is issued), and who would be skipped."""
    with database().read() as s:
        found = mailings.stock_check(s, mailings.get(s, mailing_id))
    table = Table("group", "needed", "active", "enough")
    about = "about " if found.estimated else ""
    for r in found.groups:
        table.add_row(r.name, f"{about}{r.needed:,}", f"{r.active:,}", "yes" if r.enough else "NO")
    console.print(table if found.groups else "The templates issue no codes.")
    scope = (
        f"{found.sample:,} of {found.recipients:,} recipients (an estimate)"
        if found.estimated
        else f"all {found.recipients:,} recipients"
    )
    console.print(f"Dry run over {scope}.", highlight=False)
    skipped = sum(found.skipped.values())
    if skipped:
        console.print(f"{skipped:,} of {found.sample:,} would be skipped:", highlight=False)
        for (reason, detail), n in found.skipped.most_common(10):
            console.print(f"  {reason}: {detail} ({n:,})", markup=False, highlight=False)


@mailings_app.command("preview")
@cli_errors
def mailings_preview(mailing_id: int, customer: str = typer.Option(None)) -> None:
    """Render for a customer (or a sample) with placeholder codes; nothing is consumed."""
    with database().read() as s:
        r = mailings.preview_message(s, mailings.get(s, mailing_id), customer)
    console.print(f"[bold]Subject:[/] {r.subject}")
    if r.body_text:
        console.print(r.body_text, markup=False, highlight=False)
    if r.body_html:
        console.print(r.body_html, markup=False, highlight=False)


@mailings_app.command("send")
@cli_errors
def mailings_send(
    mailing_id: int,
    allow_partial: bool = typer.Option(False, help="Send to as many as the stock allows."),
    wait: bool = typer.Option(False, help="Show progress until it is done."),
) -> None:
    """Start sending (workers do the work; `promocodes serve` runs one)."""
    with database().write() as s:
        mailing = mailings.send(s, mailing_id, settings=Settings(), allow_partial=allow_partial)
        status, total = mailing.status, mailing.total
    console.print(f"Mailing {mailing_id}: {status}, {total:,} recipients.")
    if wait:
        _wait(mailing_id, total)


def _wait(mailing_id: int, total: int) -> None:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        console=console,
    ) as bar:
        task = bar.add_task("Sending", total=max(total, 1))
        while True:
            with database().read() as s:
                out = mailings.to_out(s, mailings.get(s, mailing_id))
            bar.update(task, completed=out.rendered + out.skipped)
            if out.status not in ("sending", "scheduled"):
                break
            time.sleep(0.5)
    _print_status(mailing_id)


def _print_status(mailing_id: int) -> None:
    with database().read() as s:
        out = mailings.to_out(s, mailings.get(s, mailing_id))
    table = Table("", "", title=f"Mailing {out.id}: {out.name}")
    for label, value in (
        ("status", out.status),
        ("recipients", f"{out.total:,}"),
        ("rendered", f"{out.rendered:,}"),
        ("sent", f"{out.sent:,}"),
        ("skipped", f"{out.skipped:,}"),
        ("failed", f"{out.failed:,}"),
    ):
        table.add_row(label, value)
    for reason, n in sorted(out.skipped_reasons.items()):
        table.add_row(f"  skipped: {reason}", f"{n:,}")
    for a in out.attempts:
        label = "first send" if a.round == 0 else f"resend {a.round}"
        table.add_row(
            f"  {label}",
            f"{a.recipients:,} recipients: {a.sent:,} sent, {a.failed:,} failed, "
            f"{a.queued:,} queued, {a.skipped:,} skipped",
        )
    console.print(table)


@mailings_app.command("resend")
@cli_errors
def mailings_resend(
    mailing_id: int,
    wait: bool = typer.Option(False, help="Show progress until it is done."),
) -> None:
    """Send again to every recipient whose message failed: a new message each, with new
    codes (the failed messages' codes stay returned or kept, as their delivery decided)."""
    with database().write() as s:
        mailing = resend.resend_failed(s, mailing_id, settings=Settings())
        out = mailings.to_out(s, mailing)
    console.print(f"Mailing {mailing_id}: resending to {out.attempts[-1].recipients:,} recipients.")
    if wait:
        _wait(mailing_id, out.total)


@mailings_app.command("status")
@cli_errors
def mailings_status(mailing_id: int, as_json: bool = JSON_OPTION) -> None:
    """Progress and report."""
    if not as_json:
        _print_status(mailing_id)
        return
    with database().read() as s:
        out = mailings.to_out(s, mailings.get(s, mailing_id))
    print_json(out)


@mailings_app.command("cancel")
@cli_errors
def mailings_cancel(mailing_id: int) -> None:
    """Stop sending: chunks in progress finish, no new chunk starts."""
    with database().write() as s:
        mailings.cancel(s, mailing_id)
    console.print(f"Mailing {mailing_id} cancelled.")


@outbox_app.command("export")
@cli_errors
def outbox_export(
    mailing: int = typer.Option(None, help="The mailing whose messages to export."),
    campaign: int = typer.Option(None, help="The campaign whose messages to export."),
    status: str = typer.Option(None, help=f"One of: {', '.join(outbox.STATUSES)}."),
    output: str = typer.Option("-", "--output", "-o", help="File to write; - for stdout."),
) -> None:
    """Export a mailing's or a campaign's messages as CSV (safe to open in a spreadsheet)."""
    if (mailing is None) == (campaign is None):
        raise ValidationFailed("give either --mailing or --campaign")
    source = outbox.Source("mailing", mailing) if mailing else outbox.Source("campaign", campaign)
    wanted = status_filter(status, outbox.STATUSES)
    done = exports.messages(
        database(), source, status=wanted, actor=Actor.cli(), domain=Settings().message_id_domain
    )
    with ExitStack() as stack:
        target = (
            sys.stdout if output == "-" else stack.enter_context(Path(output).open("w", newline=""))
        )
        for chunk in done.chunks:
            target.write(chunk)
