"""The outbox, read: pages of a mailing's or a campaign's messages in id order with a
status filter, the CSV export (formula-safe, audited), on the web UI and the CLI."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from promocodes.cli import app
from promocodes.customers.models import Customer
from promocodes.db import Database
from promocodes.errors import ValidationFailed
from promocodes.messaging import outbox
from promocodes.messaging.models import Campaign, Message
from promocodes.pagination import status_filter
from tests.audit.common import entries, only
from tests.messaging.test_mailings import EVERYONE, mailing, people, segment

FORMULA = '=HYPERLINK("http://evil.example","click")'


def store(
    db: Database,
    mailing_id: int | None,
    statuses: list[str],
    *,
    campaign_id: int | None = None,
    subject: str = "S",
) -> list[int]:
    """Messages with these statuses, in this order (ids ascending), to customers p0, p1, …"""
    with db.write() as s:
        ids = dict(s.query(Customer.external_id, Customer.id).all())
        made = [
            Message(
                key=f"k-{mailing_id}-{campaign_id}-{i}-{random.random()}",
                mailing_id=mailing_id,
                campaign_id=campaign_id,
                customer_id=ids[f"p{i % len(ids)}"],
                channel="outbox",
                recipient=f"p{i % len(ids)}@example.com",
                subject=subject,
                body_text=f"body {i}",
                status=status,
                skip_reason="group-exhausted" if status == "skipped" else None,
            )
            for i, status in enumerate(statuses)
        ]
        for m in made:
            s.add(m)
            s.flush()  # one at a time: the ids follow the list's order
        return [m.id for m in made]


def walk(db: Database, source: outbox.Source, status: str | None, limit: int) -> list[int]:
    seen: list[int] = []
    after: int | None = None
    while True:
        with db.read() as s:
            rows = outbox.page(s, source, domain="x", status=status, after_id=after, limit=limit)
        assert len(rows) <= limit
        seen += [r.id for r in rows]
        if len(rows) < limit:
            return seen
        after = rows[-1].id


def test_pages_merge_the_statuses_in_id_order(db: Database) -> None:
    people(db, 3)
    seg = segment(db, "All", EVERYONE)
    mine, other = mailing(db, seg, "x"), mailing(db, seg, "y")
    rng = random.Random(7)
    statuses = [rng.choice(outbox.STATUSES) for _ in range(40)]
    ids: list[int] = []
    for n, status in enumerate(statuses):  # another mailing's messages in between
        ids += store(db, mine, [status])
        if n % 3 == 0:
            store(db, other, [rng.choice(outbox.STATUSES)])
    source = outbox.Source("mailing", mine)
    # Pages of 7 across four statuses: a page that concatenated the statuses' ranges, or
    # kept fewer than ``limit`` of each, would skip or reorder ids here.
    assert walk(db, source, None, 7) == ids
    for status in outbox.STATUSES:
        assert walk(db, source, status, 3) == [
            i for i, st in zip(ids, statuses, strict=True) if st == status
        ]
    with db.read() as s:
        (first,) = outbox.page(s, source, domain="x", limit=1)
    assert (first.customer_id, first.recipient, first.body_text) == (
        "p0",
        "p0@example.com",
        "body 0",
    )


def test_a_campaigns_messages_are_its_own(db: Database) -> None:
    people(db, 2)
    with db.write() as s:
        campaign = Campaign(
            name="Welcome", event="signup", channel="outbox", subject="Hi", body_text="x"
        )
        s.add(campaign)
        s.flush()
        cid = campaign.id
    seg = segment(db, "All", EVERYONE)
    store(db, mailing(db, seg, "x"), ["sent", "sent"])
    ids = store(db, None, ["sent", "failed", "queued"], campaign_id=cid)
    assert walk(db, outbox.Source("campaign", cid), None, 2) == ids
    assert walk(db, outbox.Source("campaign", cid), "failed", 2) == ids[1:2]


def test_a_status_that_does_not_exist_is_refused() -> None:
    check = status_filter
    assert check("", outbox.STATUSES) is None and check("sent", outbox.STATUSES) == "sent"
    with pytest.raises(
        ValidationFailed, match="status must be one of queued, sent, failed, skipped"
    ):
        check("delivered", outbox.STATUSES)


def test_cli_export(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMOCODES_DATABASE_URL", db.url)
    people(db, 2)
    mid = mailing(db, segment(db, "All", EVERYONE), "x")
    store(db, mid, ["sent", "skipped"], subject=FORMULA)
    run = CliRunner().invoke
    target = tmp_path / "out.csv"
    done = run(app, ["outbox", "export", "--mailing", str(mid), "-o", str(target)])
    assert done.exit_code == 0, done.output
    rows = list(csv.reader(target.open(newline="")))
    assert len(rows) == 3 and rows[1][outbox.EXPORT_COLUMNS.index("subject")] == "'" + FORMULA
    assert only(db, "export.messages").actor_kind == "cli"
    stdout = run(app, ["outbox", "export", "--mailing", str(mid), "--status", "skipped"])
    assert stdout.exit_code == 0 and len(list(csv.reader(io.StringIO(stdout.output)))) == 2
    neither = run(app, ["outbox", "export"])
    assert neither.exit_code == 1 and "either --mailing or --campaign" in neither.output
    bad = run(app, ["outbox", "export", "--mailing", str(mid), "--status", "gone"])
    assert bad.exit_code == 1 and "status must be one of" in bad.output
    unknown = run(app, ["outbox", "export", "--campaign", "999"])
    assert unknown.exit_code == 1 and "campaign 999 does not exist" in unknown.output
    assert len(entries(db, "export.messages")) == 2
