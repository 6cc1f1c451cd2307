"""The audit log is append-only at the database level, on both backends, and an entry
commits with its action or not at all."""

from __future__ import annotations

import pytest
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from promocodes.audit.models import AuditEntry
from promocodes.audit.service import SYSTEM, Target, record
from promocodes.db import Database, Driver, RawSQL
from promocodes.idempotency import idempotent
from promocodes.models import utcnow
from tests.audit.common import entries


def _one_entry(db: Database) -> int:
    with db.write() as s:
        entry = record(s, SYSTEM, "test.action", Target("group", 1, "G"), {"n": 1})
        return entry.id


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET action = 'forged' WHERE id = :id",
        "UPDATE audit_log SET details = '{}'",
        "DELETE FROM audit_log WHERE id = :id",
        "DELETE FROM audit_log",
    ],
)
def test_update_and_delete_are_refused_by_the_database(db: Database, statement: str) -> None:
    entry_id = _one_entry(db)
    with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
        conn.execute(text(statement), {"id": entry_id})
    [entry] = entries(db)
    assert (entry.id, entry.action, entry.details) == (entry_id, "test.action", {"n": 1})


def test_emptying_the_table_is_refused(db: Database) -> None:
    # SQLite has no TRUNCATE (it is a DELETE there, refused above); PostgreSQL's TRUNCATE
    # skips row triggers, so a statement trigger refuses it.
    _one_entry(db)
    statement = "TRUNCATE audit_log" if db.dialect == "postgresql" else "DELETE FROM audit_log"
    with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
        conn.execute(text(statement))
    assert len(entries(db)) == 1


def test_orm_changes_are_refused_too(db: Database) -> None:
    entry_id = _one_entry(db)
    with pytest.raises(DBAPIError, match="append-only"), db.write() as s:
        s.get_one(AuditEntry, entry_id).actor_name = "someone else"
        s.flush()
    with pytest.raises(DBAPIError, match="append-only"), db.write() as s:
        s.delete(s.get_one(AuditEntry, entry_id))
        s.flush()
    assert entries(db)[0].actor_name == "system"


def test_an_entry_commits_with_its_action_or_not_at_all(db: Database) -> None:
    with pytest.raises(RuntimeError), db.write() as s:
        record(s, SYSTEM, "test.action", Target("group", 1))
        raise RuntimeError("the action failed after recording")
    assert entries(db) == []


class _Out(BaseModel):
    entry_id: int


def test_an_idempotent_replay_returns_the_stored_answer_without_recording_again(
    db: Database,
) -> None:
    """The replay answers from the stored response and never runs the handler again, so
    an audited handler behind ``Idempotency-Key`` records its action once."""
    with db.write() as s:
        s.execute(
            text(
                "INSERT INTO api_keys (name, prefix, secret_hash, created_at) "
                "VALUES ('k', 'p', 'h', CURRENT_TIMESTAMP)"
            )
        )
    runs: list[str] = []
    add = RawSQL.of(
        "INSERT INTO audit_log (at, actor_kind, actor_id, actor_name, action, target_type, "
        "details) VALUES (:at, 'api_key', '1', 'k', 'test.action', 'code', '{}') RETURNING id"
    )

    def run(tx: Driver, key: str) -> _Out:
        runs.append(key)
        return _Out(entry_id=int(tx.first(add, {"at": tx.bind_time(utcnow())})[0]))

    with db.driver_write() as tx:
        first = idempotent(1, "same", "/x", _Out(entry_id=0), _Out, run)(tx)
    with db.driver_write() as tx:
        again = idempotent(1, "same", "/x", _Out(entry_id=0), _Out, run)(tx)
    assert first == again
    assert runs == ["api:1:same"]
    [entry] = entries(db)
    assert (entry.id, entry.actor_kind, entry.actor_id) == (first.entry_id, "api_key", "1")
