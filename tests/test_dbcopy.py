"""`promocodes db copy`: an embedded SQLite installation, populated through the real
services, moved to a fresh PostgreSQL database; the copy is verified, and the product
then runs on PostgreSQL with the same data (API key, user, counters, new ids)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from promocodes import migrate
from promocodes.apikeys import service as apikeys
from promocodes.app import create_app
from promocodes.cli import app
from promocodes.codes import redemption
from promocodes.codes.models import Code
from promocodes.config import Settings
from promocodes.customers.models import Customer
from promocodes.db import Database
from promocodes.dbcopy import TargetNotEmpty, copy_database
from promocodes.schema import metadata
from tests.factories import assert_counters_exact, group_with_codes, issue
from tests.invariants import issuance_problems
from tests.messaging.test_mailings import EVERYONE, mailing, people, segment, send_and_work
from tests.pgcluster import private_database
from tests.web.conftest import EMAIL, log_in, make_user

runner = CliRunner()


@pytest.fixture
def target() -> Iterator[Database]:
    """A fresh, empty PostgreSQL database of this test's own."""
    with private_database("promocodes_copy") as url:
        database = Database(url)
        yield database
        database.dispose()


def populate(db: Database) -> tuple[int, str]:
    """Everything a running installation has; returns the group id and an API token."""
    gid = group_with_codes(db, "Summer", [f"S{i:04d}" for i in range(200)])
    group_with_codes(db, "Spare", ["X1", "X2", "X3"])
    people(db, 40)
    first = issue(db, "p0", gid, key="api:0:first")
    assert first is not None
    issue(db, "p1", gid, key="api:0:second")
    assert issue(db, "p0", gid, key="api:0:again", kind="repeat") == first
    with db.write() as s:
        redemption.redeem(s, first, order_id="order-1")
    everyone = segment(db, "Everyone", EVERYONE)
    send_and_work(db, mailing(db, everyone, "Hi {{ client.promocode('Summer') }}"))
    make_user(db)
    with db.write() as s:
        _, token = apikeys.create(s, "shop")
    return gid, token


def all_rows(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    with db.read() as s:
        return {
            t.name: [tuple(r) for r in s.execute(select(t).order_by(*t.primary_key.columns))]
            for t in metadata.sorted_tables
        }


def copy_cli(source: Database, to: str, *args: str) -> Any:
    return runner.invoke(
        app, ["db", "copy", "--to", to, *args], env={"PROMOCODES_DATABASE_URL": source.url}
    )


def test_copy_to_postgresql_then_run_there(sqlite_db: Database, target: Database) -> None:
    gid, token = populate(sqlite_db)
    result = copy_cli(sqlite_db, target.url, "--batch-size", "7")
    assert result.exit_code == 0, result.output
    assert "Copied and verified" in result.output

    source_rows = all_rows(sqlite_db)
    assert all_rows(target) == source_rows  # every row of every table, value by value
    assert len(source_rows["messages"]) == 40 and len(source_rows["api_keys"]) == 1

    with TestClient(
        create_app(Settings(database_url=target.url), target),
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        before = sqlite_db_groups(sqlite_db, token)
        after = client.get("/api/v1/groups").json()["items"]
        assert after == before
        summer = next(g for g in after if g["name"] == "Summer")
        assert (summer["issued"], summer["redeemed"], summer["active"]) == (42, 1, 158)

        # New rows get new ids: the sequences were moved past the copied ones.
        client.put("/api/v1/customers/newcomer", json={"email": "n@example.com"})
        issued = client.post(f"/api/v1/groups/{gid}/issue", json={"customer_id": "newcomer"})
        assert issued.status_code == 200, issued.text
        with sqlite_db.read() as s:
            taken = set(s.scalars(select(Code.code).where(Code.issued_at.is_not(None))))
        assert len(taken) == 42 and issued.json()["code"] not in taken
        created = client.post("/api/v1/groups", json={"name": "Autumn"})
        assert created.status_code == 201, created.text
        assert created.json()["id"] > max(row[0] for row in source_rows["code_groups"])

        # Idempotency records came along: a retried call returns the same code.
        again = client.post(
            f"/api/v1/groups/{gid}/issue",
            json={"customer_id": "newcomer"},
            headers={"Idempotency-Key": "retry-1"},
        )
        replay = client.post(
            f"/api/v1/groups/{gid}/issue",
            json={"customer_id": "newcomer"},
            headers={"Idempotency-Key": "retry-1"},
        )
        assert again.json()["code"] == replay.json()["code"]

    with TestClient(create_app(Settings(database_url=target.url), target)) as browser:
        response = log_in(browser, EMAIL)
        assert response.status_code == 303 and response.headers["location"] == "/groups"
        assert "Summer" in browser.get("/groups").text

    more = group_with_codes(target, "Winter", ["W1", "W2"])
    with target.read() as s:
        new_ids = s.scalars(select(Code.id).where(Code.group_id == more)).all()
    assert min(new_ids) > max(row[0] for row in source_rows["codes"])
    assert_counters_exact(target, gid, more)
    assert issuance_problems(target, gid) == []
    with target.read() as s:
        codes = s.scalar(select(func.count(func.distinct(Code.code))))
        assert codes == s.scalar(select(func.count()).select_from(Code))


def sqlite_db_groups(db: Database, token: str) -> list[dict[str, Any]]:
    with TestClient(
        create_app(Settings(database_url=db.url), db),
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        items: list[dict[str, Any]] = client.get("/api/v1/groups").json()["items"]
        return items


def test_copy_refuses_a_target_that_holds_data(sqlite_db: Database, target: Database) -> None:
    populate(sqlite_db)
    first = copy_cli(sqlite_db, target.url)
    assert first.exit_code == 0, first.output
    with target.read() as s:
        codes_before = s.scalar(select(func.count()).select_from(Code))

    second = copy_cli(sqlite_db, target.url)
    assert second.exit_code == 1
    assert "already holds data" in second.output
    with target.read() as s:
        assert s.scalar(select(func.count()).select_from(Code)) == codes_before


def test_copy_back_from_postgresql_to_sqlite(
    sqlite_db: Database, target: Database, tmp_path: Path
) -> None:
    """The other direction (plain INSERTs instead of COPY) keeps every value too."""
    populate(sqlite_db)
    copy_database(sqlite_db, target, batch_size=11)
    back = Database(f"sqlite:///{tmp_path}/back.db")
    try:
        reports = copy_database(target, back, sample_size=3, seed=1)
        assert all(r.ok for r in reports), [r.problems for r in reports if not r.ok]
        assert {r.table: r.target_rows for r in reports}["codes"] == 203
        assert all_rows(back) == all_rows(sqlite_db)
        with pytest.raises(TargetNotEmpty):
            copy_database(target, back)
    finally:
        back.dispose()


def test_verification_catches_a_target_that_changed_rows(
    sqlite_db: Database, target: Database
) -> None:
    """A target that does not store what it was given (here triggers that drop a row and
    rewrite names) fails the copy, naming the table and the difference."""
    populate(sqlite_db)
    migrate.upgrade(target.engine)
    with target.engine.begin() as conn:
        conn.exec_driver_sql(
            """
            CREATE FUNCTION lose_first() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.id = 1 THEN RETURN NULL; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER lose_first BEFORE INSERT ON mailing_chunks
                FOR EACH ROW EXECUTE FUNCTION lose_first();
            CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                NEW.first_name := upper(NEW.first_name) || '!';
                RETURN NEW;
            END $$;
            CREATE TRIGGER shout BEFORE INSERT ON customers
                FOR EACH ROW EXECUTE FUNCTION shout();
            """
        )
    result = copy_cli(sqlite_db, target.url)
    assert result.exit_code == 1, result.output
    assert "mailing_chunks: source has 1 rows, target 0" in result.output
    assert "mailing_chunks: row 1 is missing from the target" in result.output
    assert "customers: row 1 differs in first_name" in result.output
    assert "Copied and verified" not in result.output


def test_a_copy_that_fails_writes_nothing_and_says_why(
    sqlite_db: Database, target: Database
) -> None:
    populate(sqlite_db)
    migrate.upgrade(target.engine)
    with target.engine.begin() as conn:
        conn.exec_driver_sql(
            """
            CREATE FUNCTION lose_p7() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.external_id = 'p7' THEN RETURN NULL; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER lose_p7 BEFORE INSERT ON customers
                FOR EACH ROW EXECUTE FUNCTION lose_p7();
            """
        )
    result = copy_cli(sqlite_db, target.url)
    assert result.exit_code == 1
    assert "copying table" in result.output and "nothing was written" in result.output
    assert "foreign key" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    with target.read() as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == 0
