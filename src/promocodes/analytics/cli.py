"""``promocodes mailings|campaigns|groups analytics ID``: did it work? The figures of
the web pages and the API, as a table or the API's JSON (registered on those command
groups by ``cli.py``)."""

from __future__ import annotations

from collections.abc import Callable

from rich.table import Table
from sqlalchemy.orm import Session

from promocodes.analytics import service
from promocodes.analytics.chart import duration
from promocodes.clikit import JSON_OPTION, cli_errors, console, database, print_json


@cli_errors
def mailing_analytics(mailing_id: int, as_json: bool = JSON_OPTION) -> None:
    """Codes a mailing sent → redeemed, the rate, the median time to redeem, by day."""
    _show(service.of_mailing, mailing_id, as_json)


@cli_errors
def campaign_analytics(campaign_id: int, as_json: bool = JSON_OPTION) -> None:
    """Codes a campaign's messages gave → redeemed, the rate, the median time, by day."""
    _show(service.of_campaign, campaign_id, as_json)


@cli_errors
def group_analytics(group_id: int, as_json: bool = JSON_OPTION) -> None:
    """Codes a group gave (whatever sent them) → redeemed, the rate, the median time."""
    _show(service.of_group, group_id, as_json)


def _show(figures: Callable[[Session, int], service.Analytics], id_: int, as_json: bool) -> None:
    with database().read() as session:
        found = figures(session, id_)
    if as_json:
        print_json(service.as_out(found))
        return
    table = Table("", "", title=f"{found.of} {found.id}: redemptions")
    table.add_row("codes sent", f"{found.sent:,}")
    table.add_row("redeemed", f"{found.redeemed:,}")
    rate = "—" if found.rate is None else f"{found.rate:.1%}"
    table.add_row("redemption rate", rate)
    table.add_row("median time to redeem", duration(found.median_seconds))
    for day, n in found.by_day:
        table.add_row(day.isoformat(), f"{n:,} redeemed")
    console.print(table)
