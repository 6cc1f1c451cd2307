"""The ``promocodes`` command line."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from pathlib import Path

import typer
from rich.markup import escape
from sqlalchemy.exc import DBAPIError

from promocodes import demo, logs, metrics, migrate
from promocodes.analytics import cli as analytics_cli
from promocodes.apikeys.cli import apikeys_app
from promocodes.clikit import cli_errors, console, database
from promocodes.codes.alerts_cli import alerts_app
from promocodes.codes.cli import codes_app, groups_app, uploads_app
from promocodes.config import Settings
from promocodes.customers.cli import customers_app
from promocodes.db import Database
from promocodes.errors import DomainError
from promocodes.messaging.campaign_cli import campaigns_app, events_app
from promocodes.messaging.cli import mailings_app, outbox_app
from promocodes.segments.cli import segments_app
from promocodes.users.bootstrap import FirstAdmin, ensure_first_admin
from promocodes.users.cli import users_app
from promocodes.worker import Supervised, Worker

app = typer.Typer(
    help="Promocodes: promo code groups, uploads and issuance.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema and integrity.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(groups_app, name="groups")
app.add_typer(codes_app, name="codes")
app.add_typer(uploads_app, name="uploads")
app.add_typer(alerts_app, name="alerts")
app.add_typer(customers_app, name="customers")
app.add_typer(segments_app, name="segments")
app.add_typer(apikeys_app, name="apikeys")
app.add_typer(mailings_app, name="mailings")
app.add_typer(campaigns_app, name="campaigns")
app.add_typer(events_app, name="events")
app.add_typer(outbox_app, name="outbox")
app.add_typer(users_app, name="users")
app.command("demo")(demo.command)
mailings_app.command("analytics")(analytics_cli.mailing_analytics)
campaigns_app.command("analytics")(analytics_cli.campaign_analytics)
groups_app.command("analytics")(analytics_cli.group_analytics)


@app.command("worker")
@cli_errors
def worker() -> None:
    """Send mailings and deliver messages until SIGTERM/SIGINT (the chunk in hand finishes)."""
    if problem := Settings().unsafe_to_start():
        raise DomainError(problem)
    logs.configure(Settings())
    stop = _stop_on_signals()
    db = _wait_for_database(stop)
    if db is None:
        return
    w = Worker(db, Settings())
    console.print(f"Worker {w.owner} started.")
    w.run(stop)
    console.print("Worker stopped.")


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _wait_for_database(stop: threading.Event) -> Database | None:
    """The database, once reachable. A worker started while it is down (a host that
    boots before its database server) waits for it, as a running worker does, instead
    of exiting; a schema that is not current still stops it at once."""
    delay = 1.0
    while not stop.is_set():
        try:
            return database()
        except DBAPIError as exc:
            reason = str(exc.orig or exc).strip().splitlines()[0]
            console.print(f"Database unreachable ({reason}); retrying in {delay:g} s.")
            stop.wait(delay)
            delay = min(delay * 2, 30.0)
    return None


@app.command()
@cli_errors
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int | None = typer.Option(
        None,
        min=1,
        help="API server processes on the one port (default PROMOCODES_WORKERS, 1); one "
        "mailing worker thread in all.",
    ),
) -> None:
    """Apply pending migrations and serve the web UI and API."""
    settings = Settings()
    if problem := settings.unsafe_to_start():
        raise DomainError(problem)
    logs.configure(settings)
    workers = workers or settings.workers
    db = Database(settings.database_url, settings)
    migrate.upgrade(db.engine)
    with db.write() as session:
        admin = ensure_first_admin(session, settings)
    # One in-process worker, so the embedded deployment sends mailings with no other
    # process; with PostgreSQL, more `promocodes worker` processes may join it. With
    # --workers N this process only supervises the N server processes: the worker
    # thread runs here, once, not in each of them.
    stop = threading.Event()
    worker = Supervised(db, settings, stop)
    worker.start()
    # uvicorn shuts down gracefully on SIGTERM/SIGINT and then raises the signal again
    # under the handlers it found: with the default ones the process would die there and
    # never stop the worker thread below (its chunk waiting out the lease elsewhere).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    _banner(f"http://{host}:{port}", db.dialect, admin)
    try:
        _serve(settings, db, host, port, workers, worker)
    finally:
        stop.set()
        worker.join(timeout=30)


def _serve(
    settings: Settings, db: Database, host: str, port: int, workers: int, worker: Supervised
) -> None:
    import uvicorn

    from promocodes.app import create_app, for_serving

    # Our logging throughout (log_config=None), and our access line (logs.RequestLog)
    # instead of uvicorn's.
    if workers > 1:
        # Each server process imports and builds its own app (and engine pool); their
        # request metrics meet in one folder (prometheus-client's multiprocess mode),
        # named before they start, so that any of them answers /metrics for all.
        with tempfile.TemporaryDirectory(prefix="promocodes-metrics-") as shared:
            os.environ[metrics.MULTIPROCESS_DIR] = shared
            uvicorn.run(
                "promocodes.app:app_factory",
                factory=True,
                workers=workers,
                host=host,
                port=port,
                log_config=None,
                access_log=False,
            )
    else:
        app = for_serving(create_app(settings, db, worker=worker))
        uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)


def _banner(url: str, dialect: str, admin: FirstAdmin | None) -> None:
    """What a person starting the server needs: where to go and how to log in."""
    lines = [
        f"Promocodes is running (database: {dialect})",
        f"  Web UI:    [bold]{url}[/]",
        f"  API docs:  {url}/docs",
    ]
    if admin is None:
        lines.append("  Log in with an existing user (add one: promocodes users create EMAIL).")
    elif admin.password is not None:
        email = escape(admin.email)
        lines += [
            f"  First administrator created: {email}",
            f"  Password:  [bold]{admin.password}[/]  (shown only this once; change it with",
            f"             promocodes users set-password {email})",
        ]
    else:
        lines.append(
            f"  First administrator created: {escape(admin.email)} "
            "(password from PROMOCODES_ADMIN_PASSWORD)"
        )
    console.print("\n".join(lines), highlight=False, soft_wrap=True)


@db_app.command("upgrade")
@cli_errors
def db_upgrade() -> None:
    """Apply pending migrations."""
    db = Database(Settings().database_url)
    migrate.upgrade(db.engine)
    console.print("Database schema is current.")


@db_app.command("backup")
@cli_errors
def db_backup(
    path: Path = typer.Argument(..., help="File to write the copy to (must not exist)."),
) -> None:
    """Copy the SQLite database to PATH while it is in use (a consistent snapshot)."""
    from promocodes.backup import backup_sqlite

    settings = Settings()
    pages = backup_sqlite(settings.database_url, path)
    console.print(f"Backed up {pages:,} pages to {path}.")


@db_app.command("verify")
@cli_errors
def db_verify() -> None:
    """Recount every group's codes and compare with its counters (a full scan)."""
    from promocodes.codes.service import verify_all_counters

    with database().read() as session:
        checked, bad = verify_all_counters(session)
    if bad:
        for gid, fields in bad.items():
            console.print(f"group {gid}: counters differ from rows in {', '.join(fields)}")
        raise typer.Exit(code=1)
    console.print(f"All counters of {checked} groups equal their rows.")


@db_app.command("copy")
@cli_errors
def db_copy(
    to: str = typer.Option(..., "--to", help="SQLAlchemy URL of the empty target database."),
    batch_size: int = typer.Option(5_000, min=1, help="Rows read and written per batch."),
) -> None:
    """Copy every table into another (empty) database, e.g. SQLite to PostgreSQL, and
    verify row counts and a sample of rows."""
    from promocodes import dbcopy

    target = Database(to)
    try:
        with dbcopy.ProgressBars(console) as bars:
            reports = dbcopy.copy_database(database(), target, batch_size=batch_size, progress=bars)
    finally:
        target.dispose()
    dbcopy.print_report(console, reports)
    if not all(r.ok for r in reports):
        raise typer.Exit(code=1)
    shown = target.engine.url.render_as_string(hide_password=True)
    console.print(f"Copied and verified {len(reports)} tables into {shown}.", highlight=False)


if __name__ == "__main__":  # pragma: no cover
    app()
