"""Shared plumbing of the CLI: the database handle, one-line errors, rich output, and
``--json`` output for scripts."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from pydantic_core import to_json
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from promocodes import migrate
from promocodes.config import Settings
from promocodes.db import Database
from promocodes.errors import DomainError, message_of

P = ParamSpec("P")
R = TypeVar("R")

console = Console()
err_console = Console(stderr=True)

_databases: dict[str, Database] = {}


def database() -> Database:
    """The configured database, with its schema current.

    The embedded SQLite default upgrades itself so a first command just works; a shared
    PostgreSQL database is upgraded only on purpose (``promocodes db upgrade``), because
    other processes may be running the old code against it.
    """
    url = Settings().database_url
    if url not in _databases:
        db = Database(url)
        if migrate.pending(db.engine):
            if db.dialect != "sqlite":
                raise DomainError(
                    "the database schema is not current; run `promocodes db upgrade` first"
                )
            migrate.upgrade(db.engine)
        _databases[url] = db
    return _databases[url]


# The option every command with a script-readable answer takes, said alike everywhere.
JSON_OPTION = typer.Option(
    False, "--json", help="Print the answer as JSON (the API's shape) instead of a table."
)


def print_json(value: Any) -> None:
    """One line of JSON on standard output: a model as the API answers it, a dataclass,
    or a list of them (times in ISO 8601). Errors still go to standard error as one
    sentence with exit code 1, so a script reads either an answer or a failure."""
    typer.echo(to_json(value).decode())


def progress_bar() -> Progress:
    """The bar of long work (an upload, a file of redemptions): bytes read, lines, rate."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[lines]:,} lines · {task.fields[rate]:,.0f} lines/s"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]Error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def cli_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Domain and database errors become one clear line and exit code 1, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except DomainError as exc:
            raise fail(exc.detail) from None
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "input"
            raise fail(f"{field}: {message_of(first)}") from None
        except OverflowError:
            # An id past the database's 64-bit integers (SQLite's driver refuses to bind
            # it): no such row can exist.
            raise fail("a number given is too large to be an id (ids stay below 2^63)") from None
        except OperationalError as exc:
            raise fail(f"database unavailable: {str(exc.orig).strip().splitlines()[0]}") from None
        except SQLAlchemyError as exc:
            raise fail(f"database error: {str(exc).splitlines()[0]}") from None
        except BrokenPipeError:
            # The reader went away (``| head``): no error line for what it chose not to
            # read, but exit 1 as the output is incomplete. Python would still flush
            # the rest to the closed pipe at exit and complain: stdout goes nowhere.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(code=1) from None
        except OSError as exc:
            raise fail(str(exc)) from None

    return wrapper
