"""Typed factory functions: tests read like scenarios, not setup code."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from promocodes.codes import service, uploads
from promocodes.codes.importer import read_text
from promocodes.codes.models import CodeGroup
from promocodes.codes.schemas import Counts, GroupCreate, UploadReport
from promocodes.config import Settings
from promocodes.customers.models import Customer
from promocodes.db import Database

# Every channel configured, so a test may start a mailing on any channel; the messages
# are delivered (or not) under the test's own settings.
SENDING = Settings(smtp_host="127.0.0.1", webhook_url="http://127.0.0.1:9/hook")


def make_group(
    session: Session, name: str = "Summer 10%", *, valid_until: datetime | None = None, **kw: Any
) -> CodeGroup:
    return service.create_group(session, GroupCreate(name=name, valid_until=valid_until, **kw))


def upload(
    session: Session,
    group_id: int,
    codes: Iterable[str] | str,
    *,
    dry_run: bool = False,
    batch_size: int = 20_000,
) -> UploadReport:
    text = codes if isinstance(codes, str) else "\n".join(codes)
    return uploads.upload_codes(
        session, group_id, read_text(text), source="cli", dry_run=dry_run, batch_size=batch_size
    )


def group_with_codes(db: Database, name: str, codes: Iterable[str]) -> int:
    with db.write() as s:
        group = make_group(s, name)
        upload(s, group.id, codes)
        return group.id


def counts(db: Database, group_id: int) -> Counts:
    from promocodes.codes import repository

    with db.read() as s:
        return repository.counts(s, [group_id])[group_id]


def assert_counters_exact(db: Database, *group_ids: int) -> None:
    with db.read() as s:
        assert service.verify_counters(s, group_ids) == {}


def make_customer(session: Session, customer_id: str = "alice", **fields: Any) -> Customer:
    from promocodes.customers import service as customers
    from promocodes.customers.schemas import CustomerIn

    customer, _ = customers.upsert(session, CustomerIn(customer_id=customer_id, **fields))
    return customer


def customers(db: Database, count: int, prefix: str = "c") -> list[str]:
    """Create ``count`` customers with ids ``{prefix}0..``; returns their external ids."""
    ids = [f"{prefix}{i}" for i in range(count)]
    with db.write() as s:
        for external_id in ids:
            make_customer(s, external_id)
    return ids


def issue(
    db: Database, customer_id: str, group_id: int, key: str, kind: str = "initial"
) -> str | None:
    from promocodes.codes import issuance
    from promocodes.customers import service as customers

    with db.write() as s:
        customer = customers.get(s, customer_id)
        fn = issuance.issue_initial if kind == "initial" else issuance.issue_repeat
        return fn(s, customer, group_id, key=key, source="api").code
