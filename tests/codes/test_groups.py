"""Groups: create, list, show, edit, delete vs archive (SPEC §1), on both backends."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from promocodes.codes import service
from promocodes.codes.models import Code
from promocodes.codes.schemas import GroupCreate, GroupUpdate
from promocodes.db import Database
from promocodes.errors import GroupNameTaken, GroupNotFound, ValidationFailed
from tests.factories import counts, group_with_codes, make_group, upload


def test_create_with_codes_shows_counts(db: Database) -> None:
    with db.write() as s:
        group = make_group(s, "School supplies 30%", description="Back to school")
        report = upload(s, group.id, ["A1", "A2", "A3"])
    assert report.added == 3
    with db.read() as s:
        (listed,) = service.list_groups(s)
    assert (listed.name, listed.total, listed.active, listed.issued) == (
        "School supplies 30%",
        3,
        3,
        0,
    )
    assert listed.description == "Back to school"


@pytest.mark.parametrize(
    "name", ["10% off", "O'Reilly's \"best\" deal", "Скидка 30% на канцтовары", "a" * 200]
)
def test_names_may_hold_any_printable_text(db: Database, name: str) -> None:
    with db.write() as s:
        group = make_group(s, name)
    with db.read() as s:
        assert service.resolve_group(s, name).id == group.id


@pytest.mark.parametrize("other", ["summer 10%", "  SUMMER 10%  ", "Summer 10%"])
def test_names_are_unique_ignoring_case_and_surrounding_spaces(db: Database, other: str) -> None:
    with db.write() as s:
        make_group(s, "Summer 10%")
    with pytest.raises(GroupNameTaken, match="already exists"), db.write() as s:
        make_group(s, other)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("a" * 201, "at most 200"),
        ("two\nlines", "control characters"),
    ],
)
def test_bad_names_are_refused_with_the_reason(name: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        GroupCreate(name=name)


def test_validity_must_be_ordered_and_zoned() -> None:
    with pytest.raises(ValidationError, match="later than valid_from"):
        GroupCreate(
            name="x",
            valid_from=datetime(2027, 1, 2, tzinfo=UTC),
            valid_until=datetime(2027, 1, 1, tzinfo=UTC),
        )
    with pytest.raises(ValidationError, match="time zone"):
        GroupCreate(name="x", valid_until=datetime(2027, 1, 1))


def test_edit_changes_only_given_fields(db: Database) -> None:
    with db.write() as s:
        group = make_group(s, "Old", description="keep me", low_stock_threshold=5)
    until = datetime(2027, 6, 30, 23, 59, tzinfo=UTC)
    with db.write() as s:
        service.update_group(s, group.id, GroupUpdate(name="New", valid_until=until))
    with db.read() as s:
        out = service.to_out(s, service.get_group(s, group.id))
    assert (out.name, out.description, out.low_stock_threshold, out.valid_until) == (
        "New",
        "keep me",
        5,
        until,
    )


def test_edit_cannot_take_another_groups_name_but_may_change_own_case(db: Database) -> None:
    with db.write() as s:
        a = make_group(s, "Alpha")
        make_group(s, "Beta")
    with pytest.raises(GroupNameTaken), db.write() as s:
        service.update_group(s, a.id, GroupUpdate(name="beta"))
    with db.write() as s:
        service.update_group(s, a.id, GroupUpdate(name="ALPHA"))
    with db.read() as s:
        assert service.get_group(s, a.id).name == "ALPHA"


def test_edit_rejects_validity_inverted_against_stored_value(db: Database) -> None:
    with db.write() as s:
        group = make_group(s, "G", valid_from=datetime(2027, 1, 1, tzinfo=UTC))
    with pytest.raises(ValidationFailed), db.write() as s:
        service.update_group(s, group.id, GroupUpdate(valid_until=datetime(2026, 1, 1, tzinfo=UTC)))


def test_delete_without_issued_codes_removes_group_and_codes(db: Database) -> None:
    gid = group_with_codes(db, "Wrong", ["X1", "X2"])
    with db.write() as s:
        assert service.delete_group(s, gid).outcome == "removed"
    with db.read() as s:
        assert s.query(Code).count() == 0
        with pytest.raises(GroupNotFound):
            service.get_group(s, gid)
    # The codes are gone, so they can be uploaded again elsewhere.
    assert counts(db, group_with_codes(db, "Right", ["X1", "X2"])).total == 2


def test_delete_with_issued_codes_archives_and_frees_the_name(db: Database) -> None:
    gid = group_with_codes(db, "Used", ["U1", "U2"])
    with db.write() as s:
        # Issuance arrives in a later module; mark one code issued the way a claim does.
        s.query(Code).filter_by(code="U1").update(
            {"status": "issued", "issued_at": datetime.now(UTC)}
        )
        from promocodes.codes import repository

        repository.bump_counters(s, gid, available=-1, issued=1)
    with db.write() as s:
        assert service.delete_group(s, gid).outcome == "archived"
    with db.read() as s:
        assert service.list_groups(s) == []
        assert s.query(Code).filter_by(group_id=gid).count() == 2  # history kept
        with pytest.raises(GroupNotFound):
            service.resolve_group(s, "Used")
    with db.write() as s:
        assert make_group(s, "used").id != gid  # the name is free again


def test_list_paginates_by_id_and_searches(db: Database) -> None:
    with db.write() as s:
        ids = [make_group(s, f"Group {i}").id for i in range(5)]
        make_group(s, "100% off_now")
    with db.read() as s:
        first = service.list_groups(s, limit=2)
        rest = service.list_groups(s, after_id=first[-1].id, limit=10)
        assert [g.id for g in first + rest][:5] == ids
        assert [g.name for g in service.list_groups(s, search="0% OFF_")] == ["100% off_now"]
        assert service.list_groups(s, search="%") != []
        assert service.list_groups(s, search="_now") != []
        assert service.list_groups(s, search="x_y") == []


def test_resolve_by_id_or_name(db: Database) -> None:
    with db.write() as s:
        g = make_group(s, "42")
        h = make_group(s, "Named")
    with db.read() as s:
        assert service.resolve_group(s, str(h.id)).id == h.id
        assert service.resolve_group(s, "named").id == h.id
        assert service.resolve_group(s, "42").id == g.id  # no group 42: falls back to name
        with pytest.raises(GroupNotFound, match="no group"):
            service.resolve_group(s, "missing")


def test_delete_after_a_voided_issue_archives_the_group(db: Database) -> None:
    # A refused message voids its issuance and returns the code: the counters then say
    # "never issued", but the voided issuance is history on the customer's profile.
    from promocodes.codes import issuance
    from tests.factories import make_customer

    gid = group_with_codes(db, "Voided", ["V1", "V2"])
    with db.write() as s:
        customer = make_customer(s)
        issuance.issue_initial(s, customer, gid, key="m1.1", source="mailing")
        assert issuance.void(s, "m1.1") == 1
        assert issuance.void(s, "m1.1") == 0  # voided once
    c = counts(db, gid)
    assert (c.issued, c.active) == (0, 2)
    with db.write() as s:
        assert service.delete_group(s, gid).outcome == "archived"
    with db.read() as s:
        assert s.query(Code).filter_by(group_id=gid).count() == 2  # history kept


def test_delete_while_an_issue_is_in_flight_waits_and_archives(db: Database) -> None:
    # The delete locks the group before it decides; an issue in flight holds the group
    # (its issuance's key) until it commits, so the delete sees the issue and archives.
    import threading
    import time

    from promocodes.codes import issuance
    from tests.factories import make_customer

    gid = group_with_codes(db, "Busy", ["B1", "B2"])
    with db.write() as s:
        customer_id = make_customer(s).id
    issued = threading.Event()
    failures: list[BaseException] = []

    def issue_then_linger() -> None:
        try:
            with db.write() as s:
                from promocodes.customers.models import Customer

                customer = s.get(Customer, customer_id)
                assert customer is not None
                issuance.issue_initial(s, customer, gid, key="k1", source="api")
                issued.set()
                time.sleep(0.5)
        except BaseException as exc:
            failures.append(exc)
            issued.set()

    issuer = threading.Thread(target=issue_then_linger)
    issuer.start()
    assert issued.wait(10)
    with db.write() as s:
        outcome = service.delete_group(s, gid).outcome
    issuer.join()
    assert not failures
    assert outcome == "archived"
    with db.read() as s:
        assert s.query(Code).filter_by(group_id=gid).count() == 2
