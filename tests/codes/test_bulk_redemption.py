"""Redeeming a file of codes: every line's outcome, idempotency by order, the counters,
and a file of 100,000 lines with 1% bad ones, on both backends."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Sequence

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from promocodes.codes import bulk_redemption, redemption, redemption_repository
from promocodes.codes.models import Redemption
from promocodes.codes.redemption_file import MAX_LINE_CHARS, BadLine, RedemptionReader, item_of
from promocodes.codes.redemption_repository import CodeState
from promocodes.codes.schemas import GroupUpdate, RedemptionReport
from promocodes.codes.service import update_group
from promocodes.customers import service as customers
from promocodes.db import Database
from promocodes.errors import CodeAlreadyRedeemed, ValidationFailed
from tests.factories import (
    assert_counters_exact,
    counts,
    group_with_codes,
    issue,
    make_customer,
    make_group,
    upload,
)


def redeem(
    db: Database, body: str | bytes, order_id: str | None = None, batch_size: int = 5_000
) -> RedemptionReport:
    data = body.encode() if isinstance(body, str) else body
    with db.write() as s:
        reader = RedemptionReader(io.BytesIO(data))
        return bulk_redemption.redeem_file(s, reader, order_id=order_id, batch_size=batch_size)


def redemptions(db: Database) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(Redemption)) or 0


def reasons(report: RedemptionReport) -> dict[int, str]:
    return {r.line: r.reason for r in report.rejected_lines}


def test_every_kind_of_line(db: Database) -> None:
    personal = group_with_codes(db, "Personal", [f"P{i}" for i in range(6)])
    flyers = group_with_codes(db, "Flyers", [f"F{i}" for i in range(4)])
    with db.write() as s:
        update_group(s, flyers, GroupUpdate(redeem_unissued=True))
        make_customer(s, "ann")
        make_customer(s, "bob")
    p0, p1, p2 = (issue(db, "ann", personal, f"k{i}") for i in range(3))
    with db.write() as s:
        redemption.block(s, "P5")
        redemption.redeem(s, "F3", order_id="shop-1")
    body = (
        "code,order_id,redeemed_at,customer_id\n"
        f"{p0},o-1,2026-12-01T10:00:00Z,ann\n"  # 2: issued to ann, redeemed
        f"{p1},o-2,,bob\n"  # 3: issued to another customer
        "P3,o-3,,\n"  # 4: never issued, personal group
        "F0,o-4,2026-12-01,\n"  # 5: flyer, redeemed
        "F1,o-5,yesterday,\n"  # 6: bad date
        "NOPE,o-6,,\n"  # 7: unknown
        "P5,o-7,,\n"  # 8: blocked
        "F3,o-8,,\n"  # 9: redeemed by another order
        "F3,shop-1,,\n"  # 10: already, by this order
        "F2,o-9,,\n"  # 11: redeemed
        "F2,o-10,,\n"  # 12: duplicate with another order
        "F2,o-9,,\n"  # 13: duplicate with the same order: already
        "bad code,o-11,,\n"  # 14: bad line
        "F1,,,\n"  # 15: no order id
        f"{p2},o-12,,\n"  # 16: issued, no customer named: redeemed
    )
    first = redeem(db, body)
    assert (first.received, first.redeemed, first.already, first.rejected) == (15, 4, 2, 9)
    assert first.redeemed + first.already + first.rejected == first.received
    assert reasons(first) == {
        3: "issued to another customer",
        4: "not issued (its group only redeems codes that were issued)",
        6: "bad date 'yesterday': expected e.g. 2027-01-31T18:30:00Z",
        7: "unknown code",
        8: "blocked",
        9: "redeemed by another order (shop-1)",
        12: "duplicate code in the file with a different order (line 11)",
        14: "bad line: not a code (contains a space at position 4)",
        15: "bad line: no order id",
    }
    assert redemptions(db) == 5
    assert_counters_exact(db, personal, flyers)
    c = counts(db, flyers)
    assert (c.active, c.redeemed) == (1, 3)
    # The same file again changes nothing: its redeemed lines are now "already".
    again = redeem(db, body)
    assert (again.received, again.redeemed, again.already, again.rejected) == (15, 0, 6, 9)
    assert redemptions(db) == 5
    assert_counters_exact(db, personal, flyers)
    with db.read() as s:
        row = s.execute(
            text(
                "SELECT customer_id, order_id FROM redemptions r JOIN codes c "
                "ON c.id = r.code_id WHERE c.code = :c"
            ),
            {"c": p0},
        ).one()
    assert row[1] == "o-1" and row[0] is not None


def test_json_lines_and_plain_files(db: Database) -> None:
    gid = group_with_codes(db, "Flyers", ["J1", "J2", "T1", "T2"])
    with db.write() as s:
        update_group(s, gid, GroupUpdate(redeem_unissued=True))
    report = redeem(
        db,
        '{"code": "J1", "order_id": "o-1"}\n{"code": "J2"}\nnot json\n[1]\n'
        '{"code": "J2", "order_id": 7}\n{"code": "J2", "orderid": "o-2", "extra": 1}\n',
    )
    assert (report.redeemed, report.rejected) == (1, 5)
    assert set(reasons(report).values()) == {
        "bad line: no order id", "bad line: not JSON", "bad line: not a JSON object",
        "bad line: order_id is not text",
        "bad line: unknown key extra, orderid (known: code, order_id, redeemed_at, customer_id)",
    }  # fmt: skip
    with pytest.raises(ValidationFailed, match="order_id"):
        redeem(db, "T1\nT2\n")
    plain = redeem(db, "T1\nT2\n", order_id="till-9")
    assert (plain.received, plain.redeemed) == (2, 2)
    assert redeem(db, "T1\nT2\n", order_id="till-9").already == 2
    assert_counters_exact(db, gid)


def test_a_long_line_is_refused_unread(db: Database) -> None:
    gid = group_with_codes(db, "Flyers", ["L1"])
    with db.write() as s:
        update_group(s, gid, GroupUpdate(redeem_unissued=True))
    report = redeem(db, "code,order_id\n" + "x" * 50_000 + "\nL1,o-1\n")
    assert report.redeemed == 1 and reasons(report) == {2: "bad line: over 2000 characters"}


def test_a_hundred_thousand_lines_with_one_percent_bad(db: Database) -> None:
    n, bad_each = 100_000, 250
    flyer_codes = [f"FLY{i:06d}" for i in range(n)]
    with db.write() as s:
        flyers = make_group(s, "Flyers", redeem_unissued=True).id
        upload(s, flyers, flyer_codes)
        personal = make_group(s, "Personal").id
        upload(s, personal, [f"PER{i:04d}" for i in range(bad_each)])
    good = n - 4 * bad_each
    lines = [f"{code},o-{i}," for i, code in enumerate(flyer_codes[:good])]
    refused = (
        [(f"NOPE{i}", f"x-{i},", "unknown code") for i in range(bad_each)]
        + [(f"PER{i:04d}", f"p-{i},", "not issued (its group only redeems codes that were issued)")
           for i in range(bad_each)]
        + [(flyer_codes[good + i], f"d-{i},31/12/2026", "bad date '31/12/2026': expected e.g. "
            "2027-01-31T18:30:00Z") for i in range(bad_each)]
        # A code the file already redeemed, again with another order (in another batch).
        + [(flyer_codes[i], f"again-{i},", "duplicate code in the file with a different order")
           for i in range(bad_each)]
    )  # fmt: skip
    rng = random.Random(19)
    # The repeats come after the lines they repeat: in the second half of the file.
    head, tail = lines[: good // 2], lines[good // 2 :] + [f"{c},{rest}" for c, rest, _ in refused]
    rng.shuffle(tail)
    body = ("code,order_id,redeemed_at\n" + "\n".join(head + tail) + "\n").encode()
    expected = {c: why for c, _, why in refused}

    first = redeem(db, body)
    assert (first.received, first.redeemed, first.already, first.rejected) == (n, good, 0, n - good)
    assert len(first.rejected_lines) == n - good  # all listed: exactly the limit
    assert {r.code: r.reason for r in first.rejected_lines} == expected
    assert redemptions(db) == good
    assert_counters_exact(db, flyers, personal)
    c = counts(db, flyers)
    assert (c.total, c.active, c.redeemed, c.issued) == (n, n - good, good, 0)

    again = redeem(db, body)
    assert (again.received, again.redeemed, again.already, again.rejected) == (
        n, 0, good, n - good
    )  # fmt: skip
    assert redemptions(db) == good
    assert_counters_exact(db, flyers, personal)


@pytest.mark.parametrize(
    "line",
    [
        "F1,o-1", "F1,o-1,", "F1,o-1,,,", "F1,o 1", "F1, o-1", "F1,\"o-1\"", "F1,o-1,2026-12-01",
        "F1,o-1,,ann", "F 1,o-1", "F1,", "F1,,", "É1,o-1", "F1,o-é", "x" * 65 + ",o",
        "F1," + "o" * 200, "F1," + "o" * 201, "F1,o\x7f", "F1,o-1" + "," * 3000,
    ],
)  # fmt: skip
@pytest.mark.parametrize(
    "header", ["code,order_id", "code,order_id,redeemed_at,customer_id", "code,order_id,code"]
)
def test_a_plain_line_reads_as_the_general_way_reads_it(header: str, line: str) -> None:
    # The reader takes plain "code,order_id" lines by one match; item_of is the reference.
    columns = tuple(header.split(","))
    (read,) = RedemptionReader(io.BytesIO(f"{header}\n{line}\n".encode()))
    if len(line) > MAX_LINE_CHARS:
        assert isinstance(read, BadLine) and "over" in read.reason
        return
    cells = line.split(",") if '"' not in line else next(csv.reader([line]))
    assert read == item_of(2, dict(zip(columns, cells, strict=False)))


def test_a_line_whose_code_changed_after_the_read_is_reported_not_counted(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    gid = group_with_codes(db, "Flyers", ["R1", "R2", "R3"])
    with db.write() as s:
        update_group(s, gid, GroupUpdate(redeem_unissued=True))
    read = redemption_repository.states

    def read_then_block(session: Session, codes: Sequence[str]) -> list[CodeState]:
        states = read(session, codes)
        redemption.block(session, "R2")  # what a concurrent block would do meanwhile
        return states

    monkeypatch.setattr(redemption_repository, "states", read_then_block)
    report = redeem(db, "code,order_id\nR1,o-1\nR2,o-2\nR2,o-2\nR3,o-3\n")
    assert (report.redeemed, report.already, report.rejected) == (2, 0, 2)
    assert set(reasons(report)) == {3, 4}
    assert all("changed while redeeming" in why for why in reasons(report).values())
    assert redemptions(db) == 2
    assert_counters_exact(db, gid)
    assert (counts(db, gid).redeemed, counts(db, gid).blocked) == (2, 1)


def _redeemed_before(db: Database) -> None:
    """P0 redeemed by order o-1 for ann, P1 by o-2 naming nobody (issued to ann), the
    flyer F0 by o-3 naming nobody; P2 issued to ann, not redeemed."""
    personal = group_with_codes(db, "Personal", ["P0", "P1", "P2"])
    flyers = group_with_codes(db, "Flyers", ["F0"])
    with db.write() as s:
        update_group(s, flyers, GroupUpdate(redeem_unissued=True))
        make_customer(s, "ann")
        make_customer(s, "bob")
    codes = [issue(db, "ann", personal, f"k{i}") for i in range(3)]
    assert codes == ["P0", "P1", "P2"]
    with db.write() as s:
        redemption.redeem(s, "P0", order_id="o-1", customer=customers.get(s, "ann"))
        redemption.redeem(s, "P1", order_id="o-2")
        redemption.redeem(s, "F0", order_id="o-3")


def _single(db: Database, code: str, order_id: str, customer_id: str) -> str:
    """What the single redeem answers the same line: ``already`` or ``refused``."""
    try:
        with db.write() as s:
            who = customers.get(s, customer_id) if customer_id else None
            redemption.redeem(s, code, order_id=order_id, customer=who)
    except CodeAlreadyRedeemed:
        return "refused"
    return "already"


@pytest.mark.parametrize(
    ("line", "outcome"),
    [
        ("P0,o-1,ann", "already"),
        ("P0,o-1,", "already"),  # naming nobody: the order's retry, whoever it was for
        ("P0,o-1,bob", "refused"),
        ("P1,o-2,", "already"),
        ("P1,o-2,ann", "refused"),  # redeemed for nobody: not ann's redemption
        ("F0,o-3,bob", "refused"),
        ("P0,o-9,ann", "refused"),  # another order
    ],
)
def test_a_line_of_the_same_order_for_another_customer_is_refused_as_the_single_redeem_is(
    db: Database, line: str, outcome: str
) -> None:
    # A file once counted any line of the redemption's order as "already", whoever it
    # named; the single redeem answers 409 to another customer. One rule for both.
    _redeemed_before(db)
    code, order_id, customer_id = line.split(",")
    assert _single(db, code, order_id, customer_id) == outcome
    report = redeem(db, f"code,order_id,customer_id\n{line}\n")
    assert (report.already, report.rejected) == ((1, 0) if outcome == "already" else (0, 1))
    if outcome == "refused" and order_id != "o-9":
        assert reasons(report) == {2: "already redeemed by this order, for another customer"}
    assert redemptions(db) == 3


@pytest.mark.parametrize("batch_size", [5_000, 1])
def test_repeats_in_one_file_follow_the_same_rule(db: Database, batch_size: int) -> None:
    # The repeat's redemption is the file's own first line: in its batch, or one before.
    _redeemed_before(db)
    body = (
        "code,order_id,customer_id\n"
        "P2,o-4,ann\n"  # 2: redeemed
        "P2,o-4,bob\n"  # 3: the same order for another customer
        "P2,o-4,\n"  # 4: the same order naming nobody: already
        "P2,o-4,ann\n"  # 5: already
        "P0,o-1,bob\n"  # 6: redeemed before the file, for ann
        "P0,o-1,ann\n"  # 7: already
    )
    report = redeem(db, body, batch_size=batch_size)
    assert (report.redeemed, report.already, report.rejected) == (1, 3, 2)
    said = reasons(report)
    assert said.keys() == {3, 6}
    assert all(
        r.startswith("already redeemed by this order, for another customer") for r in said.values()
    )
    assert redemptions(db) == 4
