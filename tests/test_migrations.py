"""Migrations build the schema the models describe, on both backends, and unwind."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from promocodes import migrate
from promocodes.db import Database
from promocodes.schema import metadata


def test_models_match_migrations(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    assert not migrate.pending(db.engine)


def test_downgrade_and_upgrade_again(db: Database) -> None:
    migrate.downgrade(db.engine, "base")
    assert migrate.pending(db.engine)
    migrate.upgrade(db.engine)
    assert not migrate.pending(db.engine)
