"""Deleting a segment never loses a mailing's history: removed when no mailing used it,
archived when one was sent to it, refused while a mailing not sent yet needs it; and a
mailing made while the segment is being deleted never ends up naming a deleted one."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from promocodes.db import Database
from promocodes.messaging import mailings
from promocodes.messaging.models import Mailing
from promocodes.messaging.schemas import MailingCreate
from promocodes.segments import service
from promocodes.segments.models import Segment
from promocodes.segments.schemas import SegmentCreate
from promocodes.segments.tree import parse_filter
from tests.conftest import _database, reset
from tests.messaging.test_mailings import EVERYONE, mailing, people, segment, send_and_work

ALL = parse_filter(EVERYONE)


def rows(db: Database) -> list[tuple[int, str, bool]]:
    with db.read() as s:
        found = s.execute(select(Segment.id, Segment.name, Segment.archived_at)).all()
    return [(i, name, archived is not None) for i, name, archived in found]


def test_an_unused_segment_is_removed(db: Database) -> None:
    sid = segment(db, "Nobody yet", EVERYONE)
    with db.write() as s:
        assert mailings.segment_deletion(s, service.get(s, sid)).outcome == "removed"
        assert mailings.delete_segment(s, sid) == "removed"
    assert rows(db) == []


def test_a_segment_a_mailing_was_sent_to_is_archived(db: Database) -> None:
    people(db, 2)
    sid = segment(db, "Everyone", EVERYONE)
    mid = mailing(db, sid, "Hello")
    send_and_work(db, mid)
    with db.write() as s:
        assert mailings.delete_segment(s, sid) == "archived"
    assert rows(db) == [(sid, "Everyone", True)]
    with db.read() as s:
        assert service.list_segments(s) == []
        with pytest.raises(service.SegmentNotFound):
            service.get(s, sid)
        assert service.get_any(s, sid).name == "Everyone"  # for the mailing's report
        assert mailings.to_out(s, mailings.get(s, mid)).status == "sent"
    # The name is free again, and the old segment cannot be used for a new mailing.
    again = segment(db, "Everyone", EVERYONE)
    assert again != sid
    with db.write() as s, pytest.raises(service.SegmentNotFound):
        mailings.create(s, MailingCreate(name="M2", segment_id=sid, subject="s", body_text="x"))
    with db.write() as s, pytest.raises(service.SegmentNotFound):
        mailings.delete_segment(s, sid)


def test_a_mailing_not_sent_yet_blocks_the_deletion(db: Database) -> None:
    people(db, 1)
    sid = segment(db, "Everyone", EVERYONE)
    mid = mailing(db, sid, "Hello", name="Spring draft")
    with db.write() as s, pytest.raises(mailings.SegmentInUse) as caught:
        mailings.delete_segment(s, sid)
    assert f"'Spring draft' (id {mid})" in caught.value.detail
    assert rows(db) == [(sid, "Everyone", False)]


def test_a_mailing_made_during_the_deletion_never_names_a_deleted_segment(pg_url: str) -> None:
    """PostgreSQL: the deletion and a new mailing lock the segment row, so one waits for
    the other. Without the mailing's lock, its INSERT would wait on the deletion and then
    fail on the foreign key (removed) or name an archived segment (archived)."""
    db = _database(pg_url)
    reset(db)
    people(db, 1)
    for sent_before in (False, True):
        sid = segment(db, f"S{sent_before}", EVERYONE)
        if sent_before:
            send_and_work(db, mailing(db, sid, "x", name="old"))
        outcome: list[object] = []

        def make_mailing(sid: int = sid, outcome: list[object] = outcome) -> None:
            try:
                with db.write() as s:
                    mailings.create(
                        s, MailingCreate(name="new", segment_id=sid, subject="s", body_text="x")
                    )
                outcome.append("created")
            except Exception as exc:
                outcome.append(exc)

        with db.write() as s:
            mailings.delete_segment(s, sid)
            racer = threading.Thread(target=make_mailing)
            racer.start()
            racer.join(0.5)
            assert racer.is_alive(), "the new mailing should wait for the deletion"
        racer.join(10)
        assert len(outcome) == 1 and isinstance(outcome[0], service.SegmentNotFound), outcome
        with db.read() as s:
            assert s.scalar(select(Mailing.id).where(Mailing.name == "new")) is None


def test_a_deletion_during_a_new_mailing_sees_it(pg_url: str) -> None:
    db = _database(pg_url)
    reset(db)
    people(db, 1)
    sid = segment(db, "S", EVERYONE)
    outcome: list[object] = []

    def delete() -> None:
        try:
            with db.write() as s:
                outcome.append(mailings.delete_segment(s, sid))
        except Exception as exc:
            outcome.append(exc)

    with db.write() as s:
        mailings.create(s, MailingCreate(name="new", segment_id=sid, subject="s", body_text="x"))
        racer = threading.Thread(target=delete)
        racer.start()
        racer.join(0.5)
        assert racer.is_alive(), "the deletion should wait for the new mailing"
    racer.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], mailings.SegmentInUse), outcome
    assert rows(db) == [(sid, "S", False)]


def test_names_are_unique_among_live_segments_only(db: Database) -> None:
    people(db, 1)
    sid = segment(db, "VIP", EVERYONE)
    send_and_work(db, mailing(db, sid, "x"))
    with db.write() as s:
        mailings.delete_segment(s, sid)
    with db.write() as s:
        service.create(s, SegmentCreate(name="VIP", filter=ALL))
    with db.write() as s, pytest.raises(service.SegmentNameTaken):
        service.create(s, SegmentCreate(name="VIP", filter=ALL))
