"""``promocodes alerts list``: the stock alerts (low stock, out of codes, expiring soon),
as the alerts page lists them."""

from __future__ import annotations

import typer
from rich.table import Table

from promocodes.clikit import JSON_OPTION, cli_errors, console, database, print_json
from promocodes.codes import alerts, service
from promocodes.codes.stock import CONDITIONS
from promocodes.errors import ValidationFailed

alerts_app = typer.Typer(help="Stock alerts of groups.", no_args_is_help=True)


@alerts_app.command("list")
@cli_errors
def alerts_list(
    group: str = typer.Option(None, "--group", help="Only this group's (by id or exact name)."),
    kind: str = typer.Option(None, "--kind", help=f"Only this kind: {', '.join(CONDITIONS)}."),
    open_only: bool = typer.Option(
        False, "--open", help="Only the alerts nobody has acknowledged yet."
    ),
    limit: int = typer.Option(200, min=1, max=1000, help="At most this many, newest first."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The newest stock alerts first (`GET /api/v1/alerts`, with the page's filters)."""
    if kind is not None and kind not in CONDITIONS:
        raise ValidationFailed(f"--kind must be one of {', '.join(CONDITIONS)}; got {kind!r}")
    with database().read() as session:
        group_id = service.resolve_group(session, group).id if group else None
        rows = alerts.listing(
            session, group_id=group_id, kind=kind, open_only=open_only, limit=limit
        )
    if as_json:
        print_json([alerts.as_out(r.alert) for r in rows])
        return
    if not rows:
        console.print("No alerts.")
        return
    table = Table("id", "raised", "group", "kind", "delivered", "acknowledged")
    for r in rows:
        a = r.alert
        name = f"{r.group_name} (archived)" if r.group_archived else r.group_name
        seen = (
            f"{a.acknowledged_at:%Y-%m-%d %H:%M} {a.acknowledged_by}" if a.acknowledged_at else ""
        )
        table.add_row(
            str(a.id),
            f"{a.created_at:%Y-%m-%d %H:%M}",
            f"{a.group_id}: {name}",
            a.kind,
            f"{a.delivered_at:%Y-%m-%d %H:%M}" if a.delivered_at else "",
            seen,
        )
    console.print(table)
