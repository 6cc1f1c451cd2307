"""CLI commands for groups, codes and uploads (``promocodes groups|codes|uploads``)."""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, TextIO

import typer
from rich.table import Table

from promocodes import exports
from promocodes.audit.service import Actor
from promocodes.clikit import JSON_OPTION, cli_errors, console, database, print_json, progress_bar
from promocodes.codes import (
    background,
    checkout_cli,
    generation_cli,
    issue_cli,
    redemption_cli,
    service,
    uploads,
)
from promocodes.codes.benefit import public_text
from promocodes.codes.importer import CodeReader, format_of
from promocodes.codes.models import STATUSES
from promocodes.codes.report_cli import print_report
from promocodes.codes.schemas import (
    GroupCreate,
    GroupOut,
    GroupUpdate,
    UploadReport,
)
from promocodes.errors import ValidationFailed
from promocodes.pagination import status_filter

groups_app = typer.Typer(help="Groups of promo codes.", no_args_is_help=True)
codes_app = typer.Typer(
    help="Upload, export, issue, look up, block and redeem codes.", no_args_is_help=True
)
uploads_app = typer.Typer(help="Upload history; withdraw a wrong upload.", no_args_is_help=True)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def _groups_table(groups: list[GroupOut]) -> Table:
    table = Table("id", "name", "total", "active", "issued", "redeemed", "blocked", "valid until")
    for g in groups:
        table.add_row(
            str(g.id),
            g.name,
            f"{g.total:,}",
            f"{g.active:,}",
            f"{g.issued:,}",
            f"{g.redeemed:,}",
            f"{g.blocked:,}",
            _when(g.valid_until),
        )
    return table


# The benefit and the limit, as create and edit take them.
BENEFIT_TYPE = typer.Option(
    None, "--benefit", help="What a code gives: percent, amount, free_shipping, gift, other."
)
BENEFIT_VALUE = typer.Option(None, "--benefit-value", help="The percent, or the amount off.")
CURRENCY = typer.Option(None, "--currency", help="ISO 4217 currency of an amount (EUR).")
BENEFIT_TEXT = typer.Option(None, "--benefit-text", help="What customers are shown.")
LIMIT = typer.Option(None, "--limit", help="At most this many new codes per customer.")
LIMIT_ACTION = typer.Option(
    None, "--limit-action", help="At the limit: repeat (the last code again) or skip."
)


def _rules(
    kind: str | None,
    value: str | None,
    currency: str | None,
    text: str | None,
    limit: int | None,
    action: str | None,
) -> dict[str, object]:
    """The benefit and limit options as the schema's fields (None: not given)."""
    benefit = None
    if kind is not None:
        benefit = {"type": kind, "value": value, "currency": currency, "text": text}
    return {"benefit": benefit, "customer_limit": limit, "limit_action": action}


def _validated(model: type[GroupCreate] | type[GroupUpdate], **fields: object) -> object:
    from pydantic import ValidationError

    try:
        return model.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "input"
        raise ValidationFailed(f"{field}: {first['msg']}") from None


@groups_app.command("list")
@cli_errors
def groups_list(
    search: str = typer.Option(None, help="Only names containing this."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List live groups with their counts."""
    with database().read() as session:
        groups = service.list_groups(session, limit=10_000, search=search)
    if as_json:
        print_json(groups)
    else:
        console.print(_groups_table(groups))


@groups_app.command("create")
@cli_errors
def groups_create(
    name: str,
    description: str = typer.Option(None),
    valid_from: datetime = typer.Option(None, help="ISO date/time, UTC"),
    valid_until: datetime = typer.Option(None, help="ISO date/time, UTC"),
    low_stock: int = typer.Option(None, "--low-stock", help="Low-stock alert threshold."),
    redeem_unissued: bool = typer.Option(
        None,
        "--redeem-unissued/--issued-only",
        help="Whether codes may be redeemed without being issued (printed flyers).",
    ),
    benefit: str = BENEFIT_TYPE,
    benefit_value: str = BENEFIT_VALUE,
    currency: str = CURRENCY,
    benefit_text: str = BENEFIT_TEXT,
    limit: int = LIMIT,
    limit_action: str = LIMIT_ACTION,
) -> None:
    """Create a group (by default its codes must be issued before they are redeemed)."""
    data = _validated(
        GroupCreate,
        name=name,
        description=description,
        valid_from=_utc(valid_from),
        valid_until=_utc(valid_until),
        low_stock_threshold=low_stock,
        redeem_unissued=redeem_unissued,
        **_rules(benefit, benefit_value, currency, benefit_text, limit, limit_action),
    )
    assert isinstance(data, GroupCreate)
    with database().write() as session:
        group = service.create_group(session, data)
        out = service.to_out(session, group)
    console.print(f"Created group {out.id}: {out.name}")


@groups_app.command("show")
@cli_errors
def groups_show(group: str, as_json: bool = JSON_OPTION) -> None:
    """Show one group (by id or exact name)."""
    with database().read() as session:
        out = service.to_out(session, service.resolve_group(session, group))
    if as_json:
        print_json(out)
        return
    console.print(_groups_table([out]))
    if out.description:
        console.print(out.description)
    if out.redeem_unissued:
        console.print("Codes may be redeemed without being issued (printed flyers).")
    if out.benefit:
        console.print(f"Benefit: {public_text(out.benefit)}")
    if out.customer_limit:
        then = "the last code again" if out.limit_action == "repeat" else "nothing (skipped)"
        console.print(f"At most {out.customer_limit} new codes per customer; then {then}.")


@groups_app.command("edit")
@cli_errors
def groups_edit(
    group: str,
    name: str = typer.Option(None),
    description: str = typer.Option(None),
    valid_from: datetime = typer.Option(None),
    valid_until: datetime = typer.Option(None),
    low_stock: int = typer.Option(None, "--low-stock"),
    redeem_unissued: bool = typer.Option(
        None,
        "--redeem-unissued/--issued-only",
        help="Whether codes may be redeemed without being issued (printed flyers).",
    ),
    benefit: str = BENEFIT_TYPE,
    benefit_value: str = BENEFIT_VALUE,
    currency: str = CURRENCY,
    benefit_text: str = BENEFIT_TEXT,
    no_benefit: bool = typer.Option(False, "--no-benefit", help="Remove the benefit."),
    limit: int = LIMIT,
    limit_action: str = LIMIT_ACTION,
    no_limit: bool = typer.Option(False, "--no-limit", help="Remove the per-customer limit."),
) -> None:
    """Rename a group or change its description, validity, low-stock threshold, benefit,
    per-customer limit or whether its codes may be redeemed without being issued."""
    data = _validated(
        GroupUpdate,
        name=name,
        description=description,
        valid_from=_utc(valid_from),
        valid_until=_utc(valid_until),
        low_stock_threshold=low_stock,
        redeem_unissued=redeem_unissued,
        **_rules(benefit, benefit_value, currency, benefit_text, limit, limit_action),
    )
    assert isinstance(data, GroupUpdate)
    # "Remove" is an explicit null, which the options (None: not given) cannot say.
    if no_benefit:
        data = data.model_copy(update={"benefit": None})
        data.model_fields_set.add("benefit")
    if no_limit:
        data = data.model_copy(update={"customer_limit": None})
        data.model_fields_set.add("customer_limit")
    with database().write() as session:
        target = service.resolve_group(session, group)
        out = service.to_out(session, service.update_group(session, target.id, data))
    console.print(_groups_table([out]))


@groups_app.command("delete")
@cli_errors
def groups_delete(group: str, yes: bool = typer.Option(False, "--yes", "-y")) -> None:
    """Delete a group: archived if any code was ever issued, otherwise removed with its codes."""
    db = database()
    # Asked outside the write transaction: a prompt must not hold SQLite's write lock. A
    # code issued meanwhile only turns a removal into an archive, never the reverse.
    with db.read() as session:
        target = service.resolve_group(session, group)
        outcome = service.delete_outcome(session, target)
    if not yes:
        verb = "archive" if outcome == "archived" else "remove (with all its codes)"
        typer.confirm(f"This will {verb} group {target.id} {target.name!r}. Continue?", abort=True)
    with db.write() as session:
        result = service.delete_group(session, target.id, actor=Actor.cli())
    console.print(f"Group {result.group_id} {result.outcome}.")


def _utc(value: datetime | None) -> datetime | None:
    from datetime import UTC

    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@codes_app.command("upload")
@cli_errors
def codes_upload(
    group: str,
    file: str = typer.Argument(
        ..., help="A .txt, .csv or .json file, or - for standard input (text or CSV)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and report; write nothing."),
) -> None:
    """Upload codes into a group (one per line, a CSV with a `code` column, or JSON
    `{"codes": [...]}`)."""
    with ExitStack() as stack:
        if file == "-":
            stream, size = sys.stdin.buffer, None
        else:
            stream, size = stack.enter_context(Path(file).open("rb")), Path(file).stat().st_size
        report = _upload(group, file, stream, size, dry_run)
    print_report(report)


def _upload(
    group: str, file: str, stream: BinaryIO, size: int | None, dry_run: bool
) -> UploadReport:
    started = time.monotonic()
    with progress_bar() as bar:
        task = bar.add_task("Uploading", total=size, lines=0, rate=0.0)

        def progress(r: UploadReport) -> None:
            elapsed = max(time.monotonic() - started, 1e-6)
            # A JSON file is read by its parser: its position is how far it has read.
            done = reader.bytes_read if isinstance(reader, CodeReader) else stream.tell()
            bar.update(task, completed=done, lines=r.received, rate=r.received / elapsed)

        with database().write() as session:
            target = service.resolve_group(session, group)  # an unknown group first
            name = None if file == "-" else file
            reader = background.reader_of(stream, format_of(name, None), name)
            report = uploads.upload_codes(
                session,
                target.id,
                reader,
                source="cli",
                actor=Actor.cli(),
                filename=file,
                dry_run=dry_run,
                progress=progress,
            )
    return report


@codes_app.command("export")
@cli_errors
def codes_export(
    group: str,
    status: str = typer.Option(None, help=f"One of: {', '.join(STATUSES)}."),
    output: str = typer.Option("-", "--output", "-o", help="File to write; - for stdout."),
) -> None:
    """Export a group's codes as CSV (safe to open in a spreadsheet)."""
    wanted = status_filter(status, STATUSES)
    with ExitStack() as stack:
        target_file = (
            sys.stdout if output == "-" else stack.enter_context(Path(output).open("w", newline=""))
        )
        _export(group, wanted, target_file)


def _export(group: str, status: str | None, target_file: TextIO) -> None:
    db = database()
    with db.read() as session:
        group_id = service.resolve_group(session, group).id
    for chunk in exports.codes(db, group_id, status=status, actor=Actor.cli()).chunks:
        target_file.write(chunk)


for _name, _command in (
    *issue_cli.COMMANDS,
    *generation_cli.COMMANDS,
    *redemption_cli.COMMANDS,
    *checkout_cli.COMMANDS,
):
    codes_app.command(_name)(_command)


@uploads_app.command("list")
@cli_errors
def uploads_list(group: str = typer.Option(None, help="Only this group's uploads.")) -> None:
    """Recent uploads with their counts."""
    with database().read() as session:
        group_id = service.resolve_group(session, group).id if group else None
        rows = uploads.list_uploads(session, group_id)
    table = Table(
        "id", "group", "when", "source", "file", "received", "added", "invalid", "withdrawn"
    )
    for u in rows:
        table.add_row(
            str(u.id),
            str(u.group_id),
            _when(u.created_at),
            u.source,
            u.filename or "",
            f"{u.received:,}",
            f"{u.added:,}",
            f"{u.invalid_count:,}",
            f"{u.withdrawn:,}" if u.withdrawn_at else "",
        )
    console.print(table)


@uploads_app.command("withdraw")
@cli_errors
def uploads_withdraw(upload_id: int, yes: bool = typer.Option(False, "--yes", "-y")) -> None:
    """Remove the still-available codes of an upload; issued codes are never touched."""
    if not yes:
        typer.confirm(f"Withdraw the available codes of upload {upload_id}?", abort=True)
    with database().write() as session:
        upload = uploads.withdraw_upload(session, upload_id, actor=Actor.cli())
        withdrawn = upload.withdrawn
    console.print(f"Upload {upload_id}: {withdrawn:,} codes withdrawn.")
