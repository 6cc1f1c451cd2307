"""The API's read of a group on the driver (``service.shown``) shows exactly what the
ORM path (``service.to_out``) shows: every field, typed alike, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from promocodes.codes import service
from promocodes.codes.benefit import Benefit
from promocodes.codes.schemas import GroupOut
from promocodes.db import Database
from promocodes.errors import GroupNotFound
from tests.factories import customers, issue, make_group, upload


def _both(db: Database, group_id: int) -> tuple[GroupOut, GroupOut]:
    with db.read() as s:
        by_orm = service.to_out(s, service.get_group(s, group_id))
    with db.driver_read() as tx:
        by_driver = service.shown(tx, group_id)
    return by_orm, by_driver


def test_every_field_of_a_full_group_reads_the_same(db: Database) -> None:
    with db.write() as s:
        group = make_group(
            s,
            "Full",
            description="Ten percent off",
            valid_from=datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC),
            valid_until=datetime(2099, 1, 1, tzinfo=UTC),
            low_stock_threshold=7,
            redeem_unissued=True,
            refill_pattern="FULL-??????",
            refill_below=3,
            refill_count=50,
            benefit=Benefit(type="amount", value=Decimal("12.50"), currency="EUR"),
            customer_limit=2,
            limit_action="skip",
        )
        upload(s, group.id, ["F1", "F2", "F3", "F4"])
    (alice,) = customers(db, 1)
    issue(db, alice, group.id, key="k1")
    by_orm, by_driver = _both(db, group.id)
    assert (by_driver.total, by_driver.active, by_driver.issued) == (4, 3, 1)
    assert by_driver.benefit is not None and by_orm.benefit is not None
    assert repr(by_driver.benefit.value) == repr(by_orm.benefit.value) == "Decimal('12.50')"
    assert by_driver.model_dump() == by_orm.model_dump()
    assert by_driver.model_dump_json() == by_orm.model_dump_json()
    assert by_driver.valid_from is not None and by_driver.valid_from.tzinfo is not None


def test_an_empty_group_with_no_optional_field_reads_the_same(db: Database) -> None:
    with db.write() as s:
        group_id = make_group(s, "Bare").id
    by_orm, by_driver = _both(db, group_id)
    assert by_driver.total == 0 and by_driver.benefit is None
    assert by_driver.model_dump_json() == by_orm.model_dump_json()


def test_an_archived_or_missing_group_is_not_found(db: Database) -> None:
    with db.write() as s:
        group_id = make_group(s, "Gone").id
        upload(s, group_id, ["G1"])
    (bob,) = customers(db, 1)
    issue(db, bob, group_id, key="k1")
    with db.write() as s:
        assert service.delete_group(s, group_id).outcome == "archived"
    for missing in (group_id, group_id + 1000):
        with pytest.raises(GroupNotFound), db.driver_read() as tx:
            service.shown(tx, missing)
