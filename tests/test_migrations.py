"""Migrations build the schema the models describe, on both backends, and unwind."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

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


def test_dropping_the_code_foreign_keys_keeps_every_row_and_the_other_keys(db: Database) -> None:
    # On SQLite the migration rebuilds ``codes``, which issuances point at: it must run
    # with enforcement off, keep every row, and leave enforcement on afterwards.
    migrate.downgrade(db.engine, "0007_audit_log")
    # Rows written as the old schema has them (today's models know later columns).
    now = {"now": datetime(2026, 11, 27, tzinfo=UTC)}
    with db.write() as s:
        s.execute(
            text(
                "INSERT INTO code_groups (id, name, name_key, created_at, updated_at) "
                "VALUES (900, 'Kept', 'kept', :now, :now)"
            ),
            now,
        )
        for n, code in enumerate(["KEEP1", "KEEP2", "KEEP3"], start=900):
            s.execute(
                text(
                    "INSERT INTO codes (id, code, group_id, status, created_at) "
                    f"VALUES ({n}, '{code}', 900, 'available', :now)"
                ),
                now,
            )
        s.execute(
            text(
                "INSERT INTO customers (id, external_id, attributes, created_at, updated_at) "
                "VALUES (900, 'c-900', '{}', :now, :now)"
            ),
            now,
        )
        s.execute(
            text(
                "INSERT INTO issuances (id, key, group_id, kind, customer_id, code_id, source, "
                "issued_at) VALUES (900, 'm1', 900, 'initial', 900, 901, 'api', :now)"
            ),
            now,
        )
    group_id = 900
    migrate.upgrade(db.engine)
    with db.read() as s:
        assert (
            s.scalar(text("SELECT count(*) FROM codes WHERE group_id = :g"), {"g": group_id}) == 3
        )
        assert (
            s.scalar(text("SELECT c.code FROM issuances i JOIN codes c ON c.id = i.code_id"))
            == "KEEP2"
        )
    with pytest.raises(IntegrityError), db.write() as s:
        s.execute(text("UPDATE issuances SET code_id = code_id + 1000"))
    migrate.downgrade(db.engine, "0007_audit_log")  # puts the keys back over the same rows
    migrate.upgrade(db.engine)
    assert not migrate.pending(db.engine)


def test_sqlite_tables_keep_the_autoincrement_the_models_ask_for(sqlite_db: Database) -> None:
    """``compare_metadata`` does not see AUTOINCREMENT; a table rebuilt by a batch
    migration silently loses it, and SQLite then reuses removed ids (PostgreSQL's
    sequences never do)."""
    db = sqlite_db
    wanted = {t.name for t in metadata.sorted_tables if t.kwargs.get("sqlite_autoincrement")}
    assert "code_groups" in wanted
    with db.read() as s:
        found = {
            name
            for name, sql in s.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
            )
            if "AUTOINCREMENT" in sql
        }
    assert wanted <= found, f"missing AUTOINCREMENT: {sorted(wanted - found)}"


def test_a_removed_groups_id_is_never_given_to_a_new_group(db: Database) -> None:
    from promocodes.codes import service
    from promocodes.codes.schemas import GroupCreate

    migrate.downgrade(db.engine, "0008_codes_without_fks")
    with db.write() as s:  # as the old schema has it (today's models know later columns)
        s.execute(
            text(
                "INSERT INTO code_groups (name, name_key, created_at, updated_at) "
                "VALUES ('Before', 'before', :now, :now)"
            ),
            {"now": datetime(2026, 11, 27, tzinfo=UTC)},
        )
        before = int(s.scalar(text("SELECT max(id) FROM code_groups")))
    migrate.upgrade(db.engine)
    with db.write() as s:
        removed = service.create_group(s, GroupCreate(name="Removed")).id
        assert removed > before
    with db.write() as s:
        service.delete_group(s, removed)
    with db.write() as s:
        assert service.create_group(s, GroupCreate(name="Next")).id > removed


def test_adding_counter_stripes_and_taking_them_away_keeps_every_count(db: Database) -> None:
    from promocodes.codes import issuance
    from promocodes.codes.models import COUNTER_STRIPES
    from tests.factories import assert_counters_exact, counts, make_customer, make_group, upload

    def stripes(gid: int) -> int:
        with db.read() as s:
            sql = text("SELECT count(*) FROM group_counters WHERE group_id = :g")
            return int(s.scalar(sql, {"g": gid}))

    with db.write() as s:
        gid = make_group(s, "Striped").id
        upload(s, gid, [f"S{i}" for i in range(10)])
        for n in range(3):
            issuance.issue_initial(s, make_customer(s, f"c{n}"), gid, key=f"k{n}", source="api")
        # Part of the total on the last stripe for certain (claims pick stripes at random).
        move = "UPDATE group_counters SET total = total + :d WHERE group_id = :g AND slot = :s"
        s.execute(text(move), {"d": -4, "g": gid, "s": 0})
        s.execute(text(move), {"d": 4, "g": gid, "s": COUNTER_STRIPES - 1})
    before = counts(db, gid)
    assert stripes(gid) == COUNTER_STRIPES == 64
    assert (before.total, before.issued, before.active) == (10, 3, 7)

    migrate.downgrade(db.engine, "0009_group_ids_never_reused")
    assert stripes(gid) == 8 and counts(db, gid) == before
    assert_counters_exact(db, gid)
    migrate.upgrade(db.engine)
    assert stripes(gid) == 64 and counts(db, gid) == before
    with db.write() as s:
        issuance.issue_initial(s, make_customer(s, "c9"), gid, key="k9", source="api")
    assert counts(db, gid).issued == 4
    assert_counters_exact(db, gid)


def test_attributes_stored_with_nan_become_valid_json(sqlite_db: Database) -> None:
    migrate.downgrade(sqlite_db.engine, "0019_redemption_analytics")
    now = datetime(2026, 12, 6, tzinfo=UTC)
    with sqlite_db.write() as s:  # as an API call could store them before the check
        s.execute(
            text(
                "INSERT INTO customers (external_id, attributes, created_at, updated_at) "
                "VALUES ('nan', :a, :now, :now), ('ok', :b, :now, :now)"
            ),
            {"a": '{"n": NaN, "l": [1, -Infinity], "city": "Berlin"}', "b": '{"n": 1}', "now": now},
        )
    migrate.upgrade(sqlite_db.engine)
    with sqlite_db.read() as s:
        found = s.execute(text("SELECT external_id, attributes FROM customers")).all()
        rows: dict[str, str] = {row[0]: row[1] for row in found}
        assert s.scalar(text("SELECT count(*) FROM customers WHERE json_valid(attributes)")) == 2
    assert json.loads(rows["nan"]) == {"n": None, "l": [1, None], "city": "Berlin"}
    assert json.loads(rows["ok"]) == {"n": 1}
