"""Apply migrations programmatically (CLI ``db upgrade``, ``serve`` start-up, tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """A connection to run migrations on.

    SQLite cannot alter a table in place: Alembic's batch mode copies it, drops the old
    one and renames the copy, and with foreign keys enforced the drop would fail (or
    cascade) for a table others point at. As SQLite's documentation prescribes for such
    changes, enforcement is off while migrating (the pragma only takes effect outside a
    transaction, hence on the driver connection) and every key is checked afterwards.
    """
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            _pragma(conn, "foreign_keys=OFF")
        try:
            before = _heads(conn)
            yield conn
            # The check reads every row that has a key: only worth it when a migration
            # ran (serve and every CLI command come through here at start).
            if sqlite and _heads(conn) != before:
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"foreign keys broken after migrating: {broken[:5]}")
            if conn.in_transaction():
                conn.rollback()
        finally:
            if sqlite:
                _pragma(conn, "foreign_keys=ON")


def _pragma(conn: Connection, setting: str) -> None:
    """A pragma on the driver connection itself, outside any transaction (where SQLite
    would ignore a change of ``foreign_keys``)."""
    driver = conn.connection.driver_connection
    assert driver is not None, "a checked-out connection has its driver connection"
    driver.execute(f"PRAGMA {setting}")


def _heads(conn: Connection) -> set[str]:
    heads = set(MigrationContext.configure(conn).get_current_heads())
    if conn.in_transaction():
        conn.rollback()
    return heads


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with _migrating(engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def pending(engine: Engine) -> bool:
    """True when the database is behind the newest migration."""
    script = ScriptDirectory.from_config(alembic_config(str(engine.url)))
    # A read transaction: on SQLite a write one (BEGIN IMMEDIATE) would queue /readyz and
    # every CLI command's schema check behind a long upload.
    with engine.connect().execution_options(promocodes_readonly=True) as conn:
        current = MigrationContext.configure(conn).get_current_heads()
    return set(current) != set(script.get_heads())


def downgrade(engine: Engine, revision: str) -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with _migrating(engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
