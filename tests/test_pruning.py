"""Pruning: old idempotency records and expired web sessions go, in bounded batches, on
the workers' schedule; recent ones stay; retention below a day is refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select, update

from promocodes.apikeys.models import IdempotencyRecord
from promocodes.config import Settings
from promocodes.db import Database
from promocodes.messaging import mailings
from promocodes.messaging.models import MailingChunk
from promocodes.models import utcnow
from promocodes.users import service as users
from promocodes.users.models import UserSession
from promocodes.worker import Worker, prune, run_until
from tests.api.conftest import client_for
from tests.factories import SENDING, group_with_codes
from tests.messaging.test_mailings import EVERYONE, mailing, people, segment


def _issue_with_keys(db: Database, keys: list[str]) -> dict[str, str]:
    gid = group_with_codes(db, "G", [f"C{i}" for i in range(20)])
    codes = {}
    with client_for(db) as api:
        api.put("/api/v1/customers/ann", json={})
        for key in keys:
            r = api.post(
                f"/api/v1/groups/{gid}/issue",
                json={"customer_id": "ann"},
                headers={"Idempotency-Key": key},
            )
            assert r.status_code == 200, r.text
            codes[key] = r.json()["code"]
    return codes


def _age(db: Database, keys: list[str], hours: float) -> None:
    with db.write() as s:
        s.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key.in_(keys))
            .values(created_at=utcnow() - timedelta(hours=hours))
        )


def _keys(db: Database) -> set[str]:
    with db.read() as s:
        return set(s.scalars(select(IdempotencyRecord.key)))


def test_old_idempotency_records_are_pruned_in_batches_recent_kept(db: Database) -> None:
    old = [f"old{i}" for i in range(5)]
    _issue_with_keys(db, [*old, "day-old", "fresh"])
    _age(db, old, 49)
    _age(db, ["day-old"], 47)
    settings = Settings(database_url=db.url, prune_batch_size=2)  # 3 batches for 5 rows
    pruned = prune(db, settings)
    assert pruned.idempotency_records == 5
    assert _keys(db) == {"day-old", "fresh"}
    assert prune(db, settings).idempotency_records == 0


def test_leases_of_long_finished_chunks_are_cleared_their_reports_kept(db: Database) -> None:
    group_with_codes(db, "G", [f"L{i}" for i in range(30)])
    people(db, 20)
    m = mailing(db, segment(db, "All", EVERYONE), "{{ client.promocode('G') }}", chunk_size=5)
    with db.write() as s:
        mailings.send(s, m, settings=SENDING)
    run_until(db, Settings(database_url=db.url), timeout=30)
    with db.write() as s:  # two chunks finished two days ago, two just now
        old = list(s.scalars(select(MailingChunk.id).order_by(MailingChunk.id).limit(2)))
        s.execute(
            update(MailingChunk)
            .where(MailingChunk.id.in_(old))
            .values(finished_at=utcnow() - timedelta(hours=49))
        )
    settings = Settings(database_url=db.url, prune_batch_size=1)
    assert prune(db, settings).chunk_leases == 2
    with db.read() as s:
        chunks = s.execute(
            select(MailingChunk.id, MailingChunk.lease_owner, MailingChunk.rendered)
        ).all()
    assert {cid for cid, owner, _ in chunks if owner is None} == set(old)
    assert all(rendered == 5 for _, _, rendered in chunks)  # the report stays
    assert prune(db, settings).chunk_leases == 0


def test_expired_sessions_are_pruned_live_ones_kept(db: Database) -> None:
    with db.write() as s:
        user = users.create_user(s, "ann@example.com", "a long enough password 1", role="admin")
        users.start_session(s, user)
        users.start_session(s, user)
    with db.write() as s:
        first = s.scalars(select(UserSession).order_by(UserSession.id)).first()
        assert first is not None
        first.expires_at = utcnow() - timedelta(minutes=1)
    pruned = prune(db, Settings(database_url=db.url))
    assert pruned.user_sessions == 1
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(UserSession)) == 1
    # 13 hours on, the other session's idle expiry has passed too.
    later = prune(db, Settings(database_url=db.url), now=utcnow() + timedelta(hours=13))
    assert later.user_sessions == 1


def test_the_worker_prunes_at_most_every_interval(db: Database) -> None:
    _issue_with_keys(db, ["a", "b"])
    _age(db, ["a"], 72)
    worker = Worker(db, Settings(database_url=db.url, prune_interval_seconds=3600))
    worker.run_once()
    assert _keys(db) == {"b"}
    _age(db, ["b"], 72)
    worker.run_once()  # within the interval: nothing pruned
    assert _keys(db) == {"b"}
    Worker(db, Settings(database_url=db.url)).run_once()  # a fresh worker prunes at once
    assert _keys(db) == set()


def test_a_retry_after_pruning_still_gets_its_code(db: Database) -> None:
    """The stored answer is gone, but the issuance itself is keyed by the API key and the
    Idempotency-Key: a very late retry still cannot take a second code."""
    gid = group_with_codes(db, "G", ["A", "B", "C"])
    with client_for(db) as api:
        api.put("/api/v1/customers/ann", json={})
        url = f"/api/v1/groups/{gid}/issue"
        first = api.post(url, json={"customer_id": "ann"}, headers={"Idempotency-Key": "k"})
        _age(db, ["k"], 100)
        assert prune(db, Settings(database_url=db.url)).idempotency_records == 1
        again = api.post(url, json={"customer_id": "ann"}, headers={"Idempotency-Key": "k"})
    assert again.status_code == 200 and again.json()["code"] == first.json()["code"]


@pytest.mark.parametrize("hours", [0, 1, 23.9])
def test_retention_under_a_day_is_refused(hours: float) -> None:
    with pytest.raises(ValidationError, match="idempotency_retention_hours"):
        Settings(idempotency_retention_hours=hours)
    assert Settings(idempotency_retention_hours=24).idempotency_retention_hours == 24
    assert Settings().idempotency_retention_hours == 48
