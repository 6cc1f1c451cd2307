"""Test databases: real SQLite and real PostgreSQL, both built by the migrations.

Every test that takes ``db`` runs once per backend. Where PostgreSQL is unreachable the
PostgreSQL half is skipped and the run ends with a loud banner; with
``PROMOCODES_TEST_REQUIRE_ALL=1`` (set by ``.ci/run``) a missing backend fails instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from promocodes import migrate
from promocodes.db import Database
from promocodes.schema import metadata

PG_URL = os.environ.get(
    "PROMOCODES_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_ALL = os.environ.get("PROMOCODES_TEST_REQUIRE_ALL") == "1"
_missing: dict[str, str] = {}


def unavailable(what: str, why: str) -> None:
    """Skip (locally) or fail (in CI) a test whose real dependency is missing."""
    _missing[what] = why
    if REQUIRE_ALL:
        pytest.fail(f"{what} is required in this run but unavailable: {why}")
    pytest.skip(f"{what} unavailable: {why}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _missing:
        tr = terminalreporter
        tr.section("SKIPPED BACKENDS", sep="!", red=True, bold=True)
        for what, why in _missing.items():
            tr.write_line(f"{what}: tests needing it were SKIPPED ({why})", red=True, bold=True)
    skipped = terminalreporter.stats.get("skipped", [])
    if REQUIRE_ALL and skipped:
        terminalreporter.write_line(
            f"{len(skipped)} tests skipped in a run that requires everything", red=True
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    skipped = session.config.pluginmanager.get_plugin("terminalreporter")
    if REQUIRE_ALL and skipped is not None and skipped.stats.get("skipped"):
        session.exitstatus = 1


def _pg_admin_url() -> str:
    return make_url(PG_URL).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A private database on the PostgreSQL server for this test session."""
    name = f"promocodes_test_{os.getpid()}"
    try:
        admin = create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any failure to reach the server means "unavailable"
        unavailable("PostgreSQL", f"{PG_URL}: {str(exc).splitlines()[0]}")
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("sqlite") / "test.db"
    return f"sqlite:///{path}"


_migrated: dict[str, Database] = {}


def _database(url: str) -> Database:
    if url not in _migrated:
        db = Database(url)
        migrate.upgrade(db.engine)
        _migrated[url] = db
    return _migrated[url]


def reset(db: Database) -> None:
    """Empty every table, keeping the migrated schema.

    The audit log's triggers refuse DELETE and TRUNCATE. Only here, inside the same
    transaction as the emptying, are they set aside: disabled on PostgreSQL, and on SQLite
    (which cannot disable a trigger) dropped and created again from their stored SQL.
    """
    tables = [t.name for t in reversed(metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))
        else:
            triggers = conn.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
            ).all()
            for name, _ in triggers:
                conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))
            conn.execute(text("DELETE FROM sqlite_sequence"))
            for _, sql in triggers:
                conn.exec_driver_sql(sql)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "pg_url" if request.param == "postgresql" else "sqlite_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = _database(db_url)
    reset(database)
    yield database


@pytest.fixture
def sqlite_db(sqlite_url: str) -> Iterator[Database]:
    database = _database(sqlite_url)
    reset(database)
    yield database
