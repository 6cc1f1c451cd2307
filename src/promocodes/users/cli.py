"""CLI commands for web UI users (``promocodes users create|list|set-role|set-password|
delete``)."""

from __future__ import annotations

import typer
from rich.table import Table

from promocodes.audit.service import Actor
from promocodes.clikit import cli_errors, console, database
from promocodes.users import service

users_app = typer.Typer(help="Users of the web UI.", no_args_is_help=True)

_PASSWORD = typer.Option(
    ...,
    "--password",
    prompt=True,
    confirmation_prompt=True,
    hide_input=True,
    help="The password (asked for, twice, when left out: keeps it out of shell history).",
)


@users_app.command("create")
@cli_errors
def users_create(
    email: str,
    password: str = _PASSWORD,
    role: str = typer.Option(
        "marketer", help="admin (users, API keys, settings), marketer, or viewer (read only)."
    ),
) -> None:
    """Create a user who can log in to the web UI, with a role."""
    with database().write() as session:
        user = service.create_user(session, email, password, role=role, actor=Actor.cli())
        address = user.email
    console.print(f"User {address} created ({role}).", highlight=False)


@users_app.command("set-role")
@cli_errors
def users_set_role(email: str, role: str) -> None:
    """Give a user another role (admin, marketer or viewer); the last admin stays one."""
    with database().write() as session:
        user = service.set_role(
            session, service.get_by_email(session, email).id, role, actor=Actor.cli()
        )
        address = user.email
    console.print(f"{address} is now {role}.", highlight=False)


@users_app.command("list")
@cli_errors
def users_list() -> None:
    """Every user (never their password hashes)."""
    with database().read() as session:
        users = service.list_users(session)
    table = Table("email", "role", "created", "last login")
    for u in users:
        table.add_row(
            u.email,
            u.role,
            f"{u.created_at:%Y-%m-%d %H:%M}",
            f"{u.last_login_at:%Y-%m-%d %H:%M}" if u.last_login_at else "",
        )
    console.print(table)


@users_app.command("set-password")
@cli_errors
def users_set_password(email: str, password: str = _PASSWORD) -> None:
    """Change a user's password; the user's open sessions end."""
    with database().write() as session:
        user = service.set_password(session, email, password, actor=Actor.cli())
        address = user.email
    console.print(f"Password of {address} changed; their sessions were ended.", highlight=False)


@users_app.command("delete")
@cli_errors
def users_delete(email: str, yes: bool = typer.Option(False, "--yes", "-y")) -> None:
    """Remove a user: their open sessions end and they can no longer log in."""
    db = database()
    # Asked outside the write transaction: a prompt must not hold SQLite's write lock.
    with db.read() as session:
        address = service.get_by_email(session, email).email
    if not yes:
        typer.confirm(f"Remove user {address}? Their open sessions end.", abort=True)
    with db.write() as session:
        service.delete_user(session, address, actor=Actor.cli())
    console.print(f"User {address} removed.", highlight=False)
