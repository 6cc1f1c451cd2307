"""Mailings end to end on both backends: the seed's example, lazy branches, previews,
stock checks, cancel, and the report."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from promocodes.codes.models import Issuance
from promocodes.config import Settings
from promocodes.customers import service as customers
from promocodes.customers.schemas import CustomerIn
from promocodes.db import Database
from promocodes.errors import ValidationFailed
from promocodes.messaging import mailings
from promocodes.messaging.models import Message
from promocodes.messaging.schemas import MailingCreate
from promocodes.segments import service as segments
from promocodes.segments.schemas import SegmentCreate
from promocodes.worker import run_until
from tests.factories import SENDING, assert_counters_exact, counts, group_with_codes
from tests.invariants import issuance_problems


def people(db: Database, n: int, **attributes: Any) -> None:
    with db.write() as s:
        customers.import_customers(
            s,
            (
                (
                    i,
                    CustomerIn(
                        customer_id=f"p{i}",
                        email=f"p{i}@example.com",
                        first_name=f"P{i}",
                        attributes={**attributes, "n": i, "first": i < 300},
                    ),
                )
                for i in range(n)
            ),
        )


def segment(db: Database, name: str, tree: dict[str, Any]) -> int:
    with db.write() as s:
        return segments.create(s, SegmentCreate.model_validate({"name": name, "filter": tree})).id


EVERYONE = {"type": "field", "field": "email", "op": "ends_with", "value": "@example.com"}


def mailing(db: Database, segment_id: int, body: str, **fields: Any) -> int:
    with db.write() as s:
        data = MailingCreate(
            name=fields.pop("name", "M"),
            segment_id=segment_id,
            subject=fields.pop("subject", "Hi {{ client.first_name }}"),
            body_text=body,
            **fields,
        )
        return mailings.create(s, data).id


def send_and_work(db: Database, mailing_id: int, **kw: Any) -> None:
    with db.write() as s:
        mailings.send(s, mailing_id, settings=SENDING, **kw)
    run_until(db, Settings(database_url=db.url), timeout=120)


def bodies(db: Database, mailing_id: int) -> dict[str, Message]:
    from promocodes.customers.models import Customer

    with db.read() as s:
        rows = s.execute(
            select(Customer.external_id, Message)
            .join(Message, Message.customer_id == Customer.id)
            .where(Message.mailing_id == mailing_id)
        ).all()
    return {cid: m for cid, m in rows}


def test_the_seed_example(db: Database) -> None:
    gid = group_with_codes(db, "G", [f"G{i:04d}" for i in range(1000)])
    people(db, 400)
    first300 = segment(
        db, "First 300", {"type": "attribute", "name": "first", "op": "eq", "value": True}
    )
    everyone = segment(db, "All", EVERYONE)
    m1 = mailing(db, first300, "Your code: {{ client.promocode('G') }}")
    send_and_work(db, m1)
    sent = bodies(db, m1)
    assert len(sent) == 300 and {m.status for m in sent.values()} == {"sent"}
    codes = {m.body_text.removeprefix("Your code: ") for m in sent.values() if m.body_text}
    assert len(codes) == 300
    c = counts(db, gid)
    assert (c.active, c.issued) == (700, 300)
    with db.read() as s:
        out = mailings.to_out(s, mailings.get(s, m1))
        assert (out.status, out.total, out.rendered, out.sent) == ("sent", 300, 300, 300)
        p7 = customers.get(s, "p7")
        from promocodes.codes import lookup

        (h,) = lookup.customer_history(s, p7)
        assert (h.kind, h.source, h.source_ref) == ("initial", "mailing", str(m1))
        assert sent["p7"].body_text == f"Your code: {h.code}"

    m2 = mailing(db, everyone, "Reminder: [{{ client.last_promocode('G') }}]", name="M2")
    send_and_work(db, m2)
    reminders = bodies(db, m2)
    assert len(reminders) == 400
    for cid, message in reminders.items():
        earlier = sent.get(cid)
        expected = (
            earlier.body_text.removeprefix("Your code: ") if earlier and earlier.body_text else ""
        )
        assert message.body_text == f"Reminder: [{expected}]"
    with db.read() as s:
        repeats = s.scalar(select(func.count()).where(Issuance.kind == "repeat"))
    assert repeats == 300
    assert counts(db, gid).active == 700  # repeats consume nothing
    assert issuance_problems(db, gid) == []


def test_a_branch_not_taken_consumes_no_code(db: Database) -> None:
    gid = group_with_codes(db, "VIP", [f"V{i}" for i in range(50)])
    people(db, 20)
    everyone = segment(db, "All", EVERYONE)
    body = (
        "{% if client.attributes.n < 5 %}Gift: {{ client.promocode('VIP') }}"
        "{% else %}Thanks{% endif %}"
    )
    m = mailing(db, everyone, body)
    with db.read() as s:
        preview = mailings.preview_message(s, mailings.get(s, m), "p1")
        assert "PREVIEW" in (preview.body_text or "")
    assert counts(db, gid).active == 50  # preview consumed nothing
    send_and_work(db, m)
    c = counts(db, gid)
    assert (c.active, c.issued) == (45, 5)
    assert_counters_exact(db, gid)
    assert bodies(db, m)["p10"].body_text == "Thanks"


def test_short_stock_is_refused_unless_partial_then_skipped_with_reason(db: Database) -> None:
    gid = group_with_codes(db, "Few", ["F1", "F2", "F3"])
    people(db, 5)
    everyone = segment(db, "All", EVERYONE)
    m = mailing(db, everyone, "{{ client.promocode('Few') }}")
    with db.read() as s:
        checked = mailings.stock_check(s, mailings.get(s, m))
    (check,) = checked.groups
    assert (check.needed, check.active, check.enough, check.drawing) == (5, 3, False, 5)
    assert (checked.recipients, checked.sample, checked.estimated) == (5, 5, False)
    with pytest.raises(mailings.StockShort, match="3 usable codes for 5"), db.write() as s:
        mailings.send(s, m, settings=SENDING)
    send_and_work(db, m, allow_partial=True)
    with db.read() as s:
        out = mailings.to_out(s, mailings.get(s, m))
    assert (out.rendered, out.skipped, out.skipped_reasons) == (3, 2, {"group-exhausted": 2})
    assert counts(db, gid).active == 0
    assert issuance_problems(db, gid) == []


def test_invalid_templates_are_refused_with_line_numbers(db: Database) -> None:
    group_with_codes(db, "Real", ["R1"])
    people(db, 1)
    everyone = segment(db, "All", EVERYONE)
    with pytest.raises(ValidationFailed) as caught:
        mailing(db, everyone, "Hello\n{{ client.promocode('Reel') }}")
    errors = caught.value.extra["errors"]
    assert errors[0]["field"] == "body_text" and errors[0]["line"] == 2
    assert "Real" in errors[0]["message"]
    with pytest.raises(ValidationFailed):
        mailing(db, everyone, "{% if %}")


def test_cancel_stops_new_chunks(db: Database) -> None:
    group_with_codes(db, "G", [f"C{i}" for i in range(100)])
    people(db, 40)
    everyone = segment(db, "All", EVERYONE)
    m = mailing(db, everyone, "{{ client.promocode('G') }}", chunk_size=10)
    with db.write() as s:
        mailings.send(s, m, settings=SENDING)
        mailings.cancel(s, m)
    run_until(db, Settings(database_url=db.url), timeout=60)
    with db.read() as s:
        out = mailings.to_out(s, mailings.get(s, m))
    assert out.status == "cancelled" and out.rendered == 0
