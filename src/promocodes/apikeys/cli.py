"""CLI commands for API keys (``promocodes apikeys create|list|revoke``)."""

from __future__ import annotations

import typer
from rich.table import Table

from promocodes.apikeys import service
from promocodes.apikeys.scopes import SCOPES
from promocodes.audit.service import Actor
from promocodes.clikit import cli_errors, console, database

apikeys_app = typer.Typer(help="API keys for the REST API.", no_args_is_help=True)


@apikeys_app.command("create")
@cli_errors
def apikeys_create(
    name: str,
    scope: list[str] = typer.Option(
        list(SCOPES),
        "--scope",
        help="What the key may do, repeatable: read, issue, redeem, manage (default: all).",
    ),
) -> None:
    """Create a key. It is printed once, alone on the last line; only a hash is kept."""
    with database().write() as session:
        key, token = service.create(session, name, scopes=scope, actor=Actor.cli())
        key_id, scopes = key.id, key.scopes
    console.print(
        f"API key {key_id} ({name}; {scopes}) created. Store it now; it is not shown again:"
    )
    # Plain print, not rich: scripts capture this line verbatim (`| tail -n 1`).
    print(token)


@apikeys_app.command("list")
@cli_errors
def apikeys_list() -> None:
    """All keys (never their secrets)."""
    with database().read() as session:
        keys = service.list_keys(session)
    table = Table("id", "name", "scopes", "prefix", "created", "last used", "revoked")
    for k in keys:
        table.add_row(
            str(k.id),
            k.name,
            k.scopes,
            f"pc_{k.prefix}_…",
            f"{k.created_at:%Y-%m-%d %H:%M}",
            f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "",
            f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "",
        )
    console.print(table)


@apikeys_app.command("revoke")
@cli_errors
def apikeys_revoke(key_id: int) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    with database().write() as session:
        service.revoke(session, key_id, actor=Actor.cli())
    console.print(f"API key {key_id} revoked.")
