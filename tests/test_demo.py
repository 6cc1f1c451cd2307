"""The demo data (``promocodes demo``): the promised shape, consistent counters, the same
data every time, and no mixing with a database that already holds data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from promocodes.codes import repository
from promocodes.codes.models import INITIAL, REPEAT, Alert, Code, CodeGroup, Issuance, Redemption
from promocodes.customers.models import Customer
from promocodes.db import Database
from promocodes.demo import FLASH, KIDS, SHIPPING, WELCOME, NotEmpty, build
from promocodes.messaging import mailings
from promocodes.messaging.models import Message
from promocodes.models import utcnow
from promocodes.segments import service as segments
from promocodes.segments.tree import IssuedCount, IssuedFromGroup, walk
from tests.factories import group_with_codes, make_customer
from tests.invariants import issuance_problems

SCALE = 0.05  # 500 customers, ~2,300 codes: the same story, small enough for every run


def issuances(db: Database, source: str, kind: str) -> int:
    with db.read() as s:
        return (
            s.scalar(select(func.count()).where(Issuance.source == source, Issuance.kind == kind))
            or 0
        )


def test_the_demo_has_the_promised_shape(db: Database) -> None:
    result = build(db, scale=SCALE)
    with db.read() as s:
        groups = {g.name: g for g in s.scalars(select(CodeGroup))}
        counts = repository.counts(s, [g.id for g in groups.values()])
        n_codes = s.scalar(select(func.count()).select_from(Code))
        n_customers = s.scalar(select(func.count()).select_from(Customer))
        with_attributes = s.scalar(
            select(func.count()).where(Customer.attributes["city"].as_string().is_not(None))
        )
        alerts = {(a.group_id, a.kind) for a in s.scalars(select(Alert))}

    assert len(groups) == 5 and KIDS in groups and "'" in KIDS
    assert n_codes == result.codes == sum(c.total for c in counts.values()) > 2_000
    assert n_customers == with_attributes == result.customers == 500

    shipping = groups[SHIPPING]
    left = counts[shipping.id]
    assert 0 < left.active <= (shipping.low_stock_threshold or 0)
    assert left.active < left.total * 0.05, "nearly exhausted"
    assert (shipping.id, "low-stock") in alerts

    flash = groups[FLASH]
    assert flash.valid_until is not None
    assert utcnow() < flash.valid_until < utcnow() + timedelta(days=7)
    assert (flash.id, "expiring-soon") in alerts

    # Issued by every channel, initially and again.
    assert issuances(db, "mailing", INITIAL) > 0 and issuances(db, "mailing", REPEAT) > 0
    assert issuances(db, "campaign", INITIAL) > 0 and issuances(db, "campaign", REPEAT) > 0
    assert issuances(db, "api", INITIAL) == result.api_issued > 0
    with db.read() as s:
        redeemed = s.scalar(select(func.count()).select_from(Redemption))
        campaign_sent = s.scalar(
            select(func.count()).where(Message.campaign_id.is_not(None), Message.status == "sent")
        )
        sent = [mailings.to_out(s, m) for m in mailings.list_mailings(s)]
    assert redeemed == result.redemptions > 0
    assert campaign_sent == result.events > 0
    statuses = sorted(m.status for m in sent)
    assert statuses == ["draft", "sent", "sent", "sent", "sent"]
    assert all(m.sent == m.total > 0 for m in sent if m.status == "sent")
    assert counts[groups[WELCOME].id].blocked == 5

    # Saved segments use both promo code filters, and every one selects someone.
    with db.read() as s:
        saved = segments.list_segments(s)
        kinds = {type(node) for seg in saved for _, _, node in walk(segments.tree_of(seg))}
        sizes = {seg.name: segments.count(s, segments.tree_of(seg)) for seg in saved}
    assert {IssuedCount, IssuedFromGroup} <= kinds
    assert len(sizes) == 8 and all(sizes.values()), sizes

    for group in groups.values():
        assert issuance_problems(db, group.id) == [], group.name


def test_the_demo_is_the_same_every_time(db: Database) -> None:
    from tests.conftest import reset

    def snapshot() -> tuple[object, ...]:
        with db.read() as s:
            people = s.execute(
                select(Customer.external_id, Customer.email, Customer.attributes)
                .order_by(Customer.id)
                .limit(50)
            ).all()
            codes = list(s.scalars(select(Code.code).order_by(Code.id).limit(200)))
            given = s.execute(
                select(Customer.external_id, Code.code)
                .join(Issuance, Issuance.customer_id == Customer.id)
                .join(Code, Code.id == Issuance.code_id)
                .where(Issuance.source == "api")
                .order_by(Customer.external_id)
            ).all()
        return (
            [(e, m, json.dumps(a, sort_keys=True)) for e, m, a in people],
            codes,
            [tuple(r) for r in given],
        )

    build(db, scale=SCALE)
    first = snapshot()
    reset(db)
    build(db, scale=SCALE)
    assert snapshot() == first


def test_it_refuses_a_database_that_holds_data(db: Database) -> None:
    group_with_codes(db, "Ours", ["OURS1", "OURS2"])
    with pytest.raises(NotEmpty, match=r"already holds data \(1 groups\).*--force"):
        build(db, scale=SCALE)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(CodeGroup)) == 1

    with db.write() as s:
        make_customer(s, "someone")
    with pytest.raises(NotEmpty, match="1 groups, 1 customers"):
        build(db, scale=SCALE)


def test_force_adds_a_second_demo_beside_the_first(db: Database) -> None:
    build(db, scale=SCALE)
    second = build(db, scale=SCALE, force=True)
    with db.read() as s:
        names = set(s.scalars(select(CodeGroup.name)))
    assert {WELCOME, f"{WELCOME} (2)", f"{KIDS} (2)"} <= names
    assert second.codes > 2_000 and second.redemptions > 0
    for gid in second.groups.values():
        assert issuance_problems(db, gid) == []


def test_the_command_at_full_size_then_refuses_to_run_again(tmp_path: Path) -> None:
    """The CLI as a user runs it: the full demo on a fresh SQLite file (~15 s)."""
    exe = Path(sys.executable).parent / "promocodes"
    env = {**os.environ, "PROMOCODES_DATABASE_URL": f"sqlite:///{tmp_path}/demo.db"}
    done = subprocess.run([str(exe), "demo"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "10,000 customers" in done.stdout and "5 groups with " in done.stdout
    assert "API key pc_" in done.stdout
    db = Database(env["PROMOCODES_DATABASE_URL"])
    try:
        with db.read() as s:
            assert (s.scalar(select(func.count()).select_from(Code)) or 0) >= 40_000
            assert s.scalar(select(func.count()).select_from(Customer)) == 10_000
    finally:
        db.dispose()

    again = subprocess.run([str(exe), "demo"], env=env, capture_output=True, text=True)
    assert again.returncode == 1
    assert again.stderr.strip().startswith("Error: the database already holds data (5 groups")
    assert len(again.stderr.strip().splitlines()) == 1, again.stderr

    # A reader that stops early (``| head -1``) is no error: nothing on stderr, exit 1 as
    # the export is incomplete. (It printed "Error: [Errno 32] Broken pipe".)
    export = subprocess.Popen(
        [str(exe), "segments", "export", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert export.stdout is not None and export.stderr is not None
    assert export.stdout.readline().startswith(b"customer_id,email,")
    export.stdout.close()
    assert export.stderr.read() == b""
    assert export.wait(timeout=60) == 1


def test_force_never_touches_customers_already_there(db: Database) -> None:
    from promocodes.customers import service as customers
    from promocodes.customers.schemas import CustomerIn

    with db.write() as s:
        customers.upsert(s, CustomerIn(customer_id="C00001", email="real@shop.example"))
    result = build(db, scale=SCALE, force=True)
    with db.read() as s:
        real = s.scalar(select(Customer).where(Customer.external_id == "C00001"))
        assert real is not None
        demo_ids = list(
            s.scalars(select(Customer.external_id).where(Customer.external_id != "C00001"))
        )
    assert real.email == "real@shop.example"
    assert len(demo_ids) == result.customers > 0
    assert all(i.startswith("C2-") for i in demo_ids)
