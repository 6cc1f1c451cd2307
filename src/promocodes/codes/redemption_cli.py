"""CLI commands that change a code after issuing: block it, lift a block, redeem one
code or a file of codes, reverse a redemption (``promocodes codes
block|unblock|redeem|unredeem``, registered on the ``codes`` command group by
``codes/cli.py``). Several codes in one command are one transaction: all or none, and
what is printed is what was committed."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, BinaryIO

import typer
from rich.table import Table

from promocodes.audit.service import Actor
from promocodes.clikit import JSON_OPTION, cli_errors, console, database, print_json, progress_bar
from promocodes.codes import bulk_redemption, redemption
from promocodes.codes.models import BLOCKED, REDEEMED
from promocodes.codes.redemption_file import MAX_FILE_BYTES, RedemptionReader
from promocodes.codes.schemas import BlockOut, RedeemIn, RedemptionReport, UnblockOut, UnredeemOut
from promocodes.customers import service as customers
from promocodes.errors import ValidationFailed


@cli_errors
def codes_block(codes: list[str], as_json: bool = JSON_OPTION) -> None:
    """Block codes (e.g. leaked): they are never issued or redeemed afterwards."""
    with database().write() as session:
        done = [
            BlockOut(
                code=code,
                status=BLOCKED,
                previous_status=redemption.block(session, code, actor=Actor.cli()),
            )
            for code in codes
        ]
    if as_json:
        print_json(done)
        return
    for out in done:
        console.print(f"{out.code}: blocked (was {out.previous_status})")


@cli_errors
def codes_unblock(codes: list[str], as_json: bool = JSON_OPTION) -> None:
    """Lift a block: a code goes back to its holder, or to the group's stock."""
    done = []
    with database().write() as session:
        for code in codes:
            previous, status = redemption.unblock(session, code, actor=Actor.cli())
            done.append(UnblockOut(code=code, status=status, previous_status=previous))
    if as_json:
        print_json(done)
        return
    for out in done:
        verb = "unblocked, now" if out.previous_status != out.status else "not blocked; still"
        console.print(f"{out.code}: {verb} {out.status}")


@cli_errors
def codes_unredeem(
    code: str,
    order_id: str = typer.Option(None, "--order-id", help="The order that redeemed it."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Reverse a redemption (a cancelled order): the code goes back to its holder, or to
    the group's stock."""
    with database().write() as session:
        status = redemption.unredeem(session, code, order_id=order_id, actor=Actor.cli())
    if as_json:
        print_json(
            UnredeemOut(code=code, status=status, previous_status=REDEEMED, order_id=order_id)
        )
        return
    console.print(f"{code}: redemption reversed, now {status}")


@cli_errors
def codes_redeem(
    file: str = typer.Argument(
        None, help="A CSV, JSON-lines or one-code-a-line file; - for stdin."
    ),
    code: str = typer.Option(None, "--code", help="Redeem this one code instead of a file."),
    order_id: str = typer.Option(
        None,
        "--order-id",
        help="The order: of --code, or of a file's lines that give none (a file of codes alone).",
    ),
    customer: str = typer.Option(
        None, "--customer", help="With --code: the customer it must have been issued to."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Redeem one code (--code, as `POST /api/v1/codes/{code}/redeem`) or a file of codes
    (columns code,order_id,redeemed_at,customer_id); running either again with the same
    order changes nothing."""
    if (file is None) == (code is None):
        raise ValidationFailed("give either a FILE of codes or --code CODE (one of the two)")
    if code is not None:
        _redeem_one(code, order_id, customer, as_json)
        return
    if customer is not None:
        raise ValidationFailed("--customer goes with --code; a file names customers per line")
    with ExitStack() as stack:
        if file == "-":
            stream, size = sys.stdin.buffer, None
        else:
            size = Path(file).stat().st_size
            if size > MAX_FILE_BYTES:
                raise ValidationFailed(f"the file is larger than {MAX_FILE_BYTES:,} bytes")
            stream = stack.enter_context(Path(file).open("rb"))
        report = _redeem(stream, size, order_id, None if file == "-" else file)
    if as_json:
        print_json(report)
    else:
        print_redemptions(report)


def _redeem_one(code: str, order_id: str | None, customer: str | None, as_json: bool) -> None:
    """One code, through the service the API's redeem calls."""
    given = {"order_id": order_id, "customer_id": customer}
    body = RedeemIn.model_validate({k: v for k, v in given.items() if v is not None})
    with database().write() as session:
        holder = customers.get(session, body.customer_id) if body.customer_id else None
        out = redemption.as_out(
            redemption.redeem(session, code, customer=holder, order_id=body.order_id)
        )
    if as_json:
        print_json(out)
        return
    order = f" by order {out.order_id}" if out.order_id else ""
    console.print(f"{out.code}: redeemed{order} at {out.redeemed_at:%Y-%m-%d %H:%M UTC}")


def _redeem(
    stream: BinaryIO, size: int | None, order_id: str | None, name: str | None
) -> RedemptionReport:
    reader = RedemptionReader(stream)
    with progress_bar() as bar:
        task = bar.add_task("Redeeming", total=size, lines=0, rate=0.0)
        started = time.monotonic()

        def progress(r: RedemptionReport) -> None:
            elapsed = max(time.monotonic() - started, 1e-6)
            bar.update(
                task, completed=reader.bytes_read, lines=r.received, rate=r.received / elapsed
            )

        with database().write() as session:
            return bulk_redemption.redeem_file(
                session,
                reader,
                order_id=order_id,
                filename=name,
                actor=Actor.cli(),
                progress=progress,
            )


def print_redemptions(report: RedemptionReport) -> None:
    table = Table("", "count", title="Redemptions")
    for label, value in (
        ("lines received", report.received),
        ("codes redeemed", report.redeemed),
        ("already redeemed by their order", report.already),
        ("lines refused", report.rejected),
    ):
        table.add_row(label, f"{value:,}")
    console.print(table)
    if report.rejected_lines:
        bad = Table("line", "code", "reason", title="Refused lines")
        for item in report.rejected_lines:
            bad.add_row(str(item.line), item.code, item.reason)
        console.print(bad)
        if report.rejected > len(report.rejected_lines):
            console.print(f"… and {report.rejected - len(report.rejected_lines):,} more")


# (name, command), in the order ``promocodes codes --help`` lists them.
COMMANDS: tuple[tuple[str, Callable[..., Any]], ...] = (
    ("block", codes_block),
    ("unblock", codes_unblock),
    ("redeem", codes_redeem),
    ("unredeem", codes_unredeem),
)
