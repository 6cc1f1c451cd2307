"""Issuing and redeeming codes (SPEC §1–2): order, exactly-once, errors, counters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from promocodes.codes import issuance, lookup, redemption, uploads
from promocodes.codes.importer import read_text
from promocodes.codes.models import Issuance
from promocodes.codes.schemas import GroupUpdate
from promocodes.codes.service import delete_group, update_group
from promocodes.customers import service as customers
from promocodes.db import Database
from promocodes.errors import (
    CodeAlreadyRedeemed,
    CodeBlocked,
    CodeNotFound,
    CodeNotIssued,
    GroupExhausted,
    GroupExpired,
    GroupNotFound,
    GroupNotYetValid,
    IdempotencyKeyReused,
)
from tests.factories import (
    assert_counters_exact,
    counts,
    group_with_codes,
    issue,
    make_customer,
    make_group,
)

NOW = datetime.now(UTC)


def _issuances(db: Database) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(Issuance)) or 0)


def test_initial_issue_takes_a_code_and_updates_counts(db: Database) -> None:
    gid = group_with_codes(db, "G", ["A1", "A2", "A3"])
    with db.write() as s:
        alice = make_customer(s, "alice", email="alice@example.com")
        issued = issuance.issue_initial(s, alice, gid, key="msg-1", source="api")
    assert issued.code == "A1" and issued.kind == "initial" and issued.customer_id == "alice"
    c = counts(db, gid)
    assert (c.total, c.active, c.issued) == (3, 2, 1)
    assert_counters_exact(db, gid)


def test_same_key_returns_the_same_code_and_records_nothing_new(db: Database) -> None:
    gid = group_with_codes(db, "G", ["A1", "A2"])
    with db.write() as s:
        make_customer(s, "alice")
        make_customer(s, "bob")
    first = issue(db, "alice", gid, "msg-1")
    assert issue(db, "alice", gid, "msg-1") == first
    assert _issuances(db) == 1
    assert counts(db, gid).active == 1
    with pytest.raises(IdempotencyKeyReused), db.write() as s:
        issuance.issue_initial(s, customers.get(s, "bob"), gid, key="msg-1", source="api")
    assert issue(db, "alice", gid, "msg-2") == "A2"


def test_codes_with_expiry_go_first_expired_and_blocked_never(db: Database) -> None:
    soon = (NOW + timedelta(days=2)).strftime("%Y-%m-%d")
    later = (NOW + timedelta(days=30)).strftime("%Y-%m-%d")
    past = (NOW - timedelta(days=1)).strftime("%Y-%m-%d")
    csv_text = f"code,valid_until\nNOEXP1,\nLATER,{later}\nPAST,{past}\nSOON,{soon}\nNOEXP2,\n"
    import io

    from promocodes.codes.importer import CodeReader

    with db.write() as s:
        gid = make_group(s, "G").id
        uploads.upload_codes(
            s, gid, CodeReader(io.BytesIO(csv_text.encode()), fmt="csv"), source="cli"
        )
        redemption.block(s, "NOEXP1")
        make_customer(s, "c")
    got = [issue(db, "c", gid, f"k{i}") for i in range(3)]
    assert got == ["SOON", "LATER", "NOEXP2"]
    with pytest.raises(GroupExhausted, match="no codes left"):
        issue(db, "c", gid, "k9")
    assert_counters_exact(db, gid)


def test_group_validity_window(db: Database) -> None:
    gid = group_with_codes(db, "G", ["A1"])
    with db.write() as s:
        make_customer(s, "c")
        update_group(s, gid, GroupUpdate(valid_until=NOW - timedelta(seconds=1)))
    with pytest.raises(GroupExpired, match="expired"):
        issue(db, "c", gid, "k")
    with db.write() as s:
        update_group(s, gid, GroupUpdate(valid_from=NOW + timedelta(days=1), valid_until=None))
    with pytest.raises(GroupNotYetValid):
        issue(db, "c", gid, "k")
    assert _issuances(db) == 0
    assert counts(db, gid).active == 1


def test_archived_or_unknown_group(db: Database) -> None:
    gid = group_with_codes(db, "G", ["A1", "A2"])
    with db.write() as s:
        make_customer(s, "c")
    issue(db, "c", gid, "k1")
    with db.write() as s:
        assert delete_group(s, gid).outcome == "archived"
    with pytest.raises(GroupNotFound):
        issue(db, "c", gid, "k2")
    with pytest.raises(GroupNotFound):
        issue(db, "c", 999, "k3")


def test_repeat_reshows_the_last_initial_code(db: Database) -> None:
    gid = group_with_codes(db, "G", ["A1", "A2", "A3"])
    with db.write() as s:
        make_customer(s, "c")
        make_customer(s, "d")
    assert issue(db, "c", gid, "r0", kind="repeat") is None
    assert _issuances(db) == 0
    issue(db, "c", gid, "m1")
    second = issue(db, "c", gid, "m2")
    issue(db, "d", gid, "m3")
    assert issue(db, "c", gid, "r1", kind="repeat") == second == "A2"
    assert issue(db, "c", gid, "r1", kind="repeat") == "A2"  # same key: same, once
    assert _issuances(db) == 4
    c = counts(db, gid)
    assert (c.active, c.issued) == (0, 3)  # a repeat consumes nothing
    with db.read() as s:
        history = lookup.customer_history(s, customers.get(s, "c"))
    assert [(h.code, h.kind, h.source) for h in history] == [
        ("A2", "repeat", "api"),
        ("A2", "initial", "api"),
        ("A1", "initial", "api"),
    ]
    assert all(h.group_name == "G" and h.status == "issued" for h in history)


def test_redeem_once_retry_with_same_order_is_the_same_result(db: Database) -> None:
    gid = group_with_codes(db, "G", ["A1", "A2"])
    with db.write() as s:
        make_customer(s, "c")
        make_customer(s, "d")
    code = issue(db, "c", gid, "m1")
    assert code is not None
    with db.write() as s:
        first = redemption.redeem(s, code, customer=customers.get(s, "c"), order_id="o-1")
    with db.write() as s:
        again = redemption.redeem(s, code, customer=customers.get(s, "c"), order_id="o-1")
    assert again.redeemed_at == first.redeemed_at and again.customer_id == "c"
    # The same order for another customer is not a retry: refused, never answered as
    # theirs (it was answered 200 with customer "d").
    with pytest.raises(CodeAlreadyRedeemed, match="not for customer 'd'"), db.write() as s:
        redemption.redeem(s, code, customer=customers.get(s, "d"), order_id="o-1")
    with pytest.raises(CodeAlreadyRedeemed, match="o-1"), db.write() as s:
        redemption.redeem(s, code, order_id="o-2")
    with pytest.raises(CodeAlreadyRedeemed), db.write() as s:
        redemption.redeem(s, code)
    c = counts(db, gid)
    assert (c.active, c.issued, c.redeemed) == (1, 1, 1)
    assert_counters_exact(db, gid)
    with db.read() as s:
        found = lookup.lookup(s, code)
    assert found.status == "redeemed" and found.order_id == "o-1"
    assert [(h.customer_id, h.kind) for h in found.issuances] == [("c", "initial")]


def test_redeem_errors(db: Database) -> None:
    gid = group_with_codes(db, "G", ["A1", "A2", "A3", "A4"])
    with db.write() as s:
        make_customer(s, "c")
        make_customer(s, "d")
    code = issue(db, "c", gid, "m1")
    assert code == "A1"
    with pytest.raises(CodeNotFound), db.write() as s:
        redemption.redeem(s, "NOPE")
    with pytest.raises(CodeNotIssued, match="not issued to customer 'd'"), db.write() as s:
        redemption.redeem(s, code, customer=customers.get(s, "d"))
    with pytest.raises(CodeNotIssued, match="has not been issued"), db.write() as s:
        redemption.redeem(s, "A2", require_issued=True)
    with db.write() as s:
        redemption.block(s, "A3")
    with pytest.raises(CodeBlocked), db.write() as s:
        redemption.redeem(s, "A3")
    # A code never issued here is refused, unless its group is printed on flyers.
    with pytest.raises(CodeNotIssued, match="has not been issued"), db.write() as s:
        redemption.redeem(s, "A4", order_id="shop-9")
    with db.write() as s:
        update_group(s, gid, GroupUpdate(redeem_unissued=True))
        redemption.redeem(s, "A4", order_id="shop-9")
    c = counts(db, gid)
    assert (c.total, c.active, c.issued, c.redeemed, c.blocked) == (4, 1, 1, 1, 1)
    assert_counters_exact(db, gid)


def test_failed_issue_leaves_nothing_behind(db: Database) -> None:
    with db.write() as s:
        gid = make_group(s, "Empty").id
        make_customer(s, "c")
    with pytest.raises(GroupExhausted):
        issue(db, "c", gid, "k")
    assert _issuances(db) == 0
    with db.write() as s:
        uploads.upload_codes(s, gid, read_text("Z1"), source="cli")
    assert issue(db, "c", gid, "k") == "Z1"
