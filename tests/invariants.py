"""Checks of the money invariants, shared by the concurrency and crash tests.

Each returns a list of human-readable problems; an empty list means the invariant holds.
"""

from __future__ import annotations

from sqlalchemy import func, select

from promocodes.codes import service
from promocodes.codes.models import AVAILABLE, INITIAL, Code, Issuance
from promocodes.db import Database


def issuance_problems(db: Database, group_id: int) -> list[str]:
    """No code stands issued twice, none stands issued while in stock, counters exact. A
    voided issuance is history only: its code may be back in stock or issued again."""
    problems: list[str] = []
    with db.read() as s:
        shared = s.execute(
            select(Issuance.code_id, func.count(func.distinct(Issuance.customer_id)))
            .where(
                Issuance.group_id == group_id,
                Issuance.kind == INITIAL,
                Issuance.voided_at.is_(None),
            )
            .group_by(Issuance.code_id)
            .having(func.count() > 1)
        ).all()
        problems += [f"code id {cid} issued initially {n} times" for cid, n in shared]
        orphans = s.scalar(
            select(func.count())
            .select_from(Issuance)
            .join(Code, Code.id == Issuance.code_id)
            .where(
                Issuance.group_id == group_id,
                Issuance.voided_at.is_(None),
                Code.status == AVAILABLE,
            )
        )
        if orphans:
            problems.append(f"{orphans} issuances point at codes still marked available")
        issued_rows = s.scalar(
            select(func.count()).where(Code.group_id == group_id, Code.issued_at.is_not(None))
        )
        initial = s.scalar(
            select(func.count(func.distinct(Issuance.code_id))).where(
                Issuance.group_id == group_id,
                Issuance.kind == INITIAL,
                Issuance.voided_at.is_(None),
            )
        )
        if issued_rows != initial:
            problems.append(f"{issued_rows} codes marked issued but {initial} initial issuances")
        bad = service.verify_counters(s, [group_id])
        problems += [f"counters differ from rows in {', '.join(f)}" for f in bad.values()]
    return problems


def mailing_problems(db: Database, mailing_id: int) -> list[str]:
    """Every recipient of the mailing has exactly one message and nobody else has one;
    each code a message carries was issued to that message's customer under the message's
    key (at most one initial code per group) and appears in the message."""
    from promocodes.messaging.models import MailingRecipient, Message

    problems: list[str] = []
    with db.read() as s:
        recipients = set(
            s.scalars(
                select(MailingRecipient.customer_id).where(
                    MailingRecipient.mailing_id == mailing_id
                )
            )
        )
        per_customer = dict(
            s.execute(
                select(Message.customer_id, func.count())
                .where(Message.mailing_id == mailing_id)
                .group_by(Message.customer_id)
            ).all()
        )
        missing = recipients - per_customer.keys()
        extra = per_customer.keys() - recipients
        twice = [cid for cid, n in per_customer.items() if n > 1]
        if missing:
            problems.append(f"{len(missing)} recipients have no message, e.g. {min(missing)}")
        if extra:
            problems.append(f"{len(extra)} customers got a message but are not recipients")
        if twice:
            problems.append(f"{len(twice)} recipients have more than one message")
        rows = s.execute(
            select(
                Message.key,
                Message.customer_id,
                Message.subject,
                Message.body_text,
                Message.body_html,
                Issuance.customer_id,
                Issuance.kind,
                Issuance.group_id,
                Code.code,
            )
            .join(Issuance, Issuance.key == Message.key)
            .join(Code, Code.id == Issuance.code_id)
            .where(Message.mailing_id == mailing_id)
        ).all()
        initial_per_group: dict[tuple[str, int], int] = {}
        for key, customer, subject, text, html, owner, kind, group, code in rows:
            if owner != customer:
                problems.append(f"message {key}: code {code} was issued to customer {owner}")
            if not any(code in (part or "") for part in (subject, text, html)):
                problems.append(f"message {key}: its code {code} is not in the message")
            if kind == INITIAL:
                initial_per_group[key, group] = initial_per_group.get((key, group), 0) + 1
        doubled = [k for k, n in initial_per_group.items() if n > 1]
        if doubled:
            problems.append(f"{len(doubled)} messages took more than one code from a group")
    return problems


def delivery_problems(db: Database, group_id: int) -> list[str]:
    """After delivery has settled: every code of the group is either back in stock or
    held (one standing initial issuance) by one customer whose message was delivered —
    or may have been (a failed message marked ``maybe_delivered`` keeps its code, so the
    code never risks reaching two people) — plus ``issuance_problems``."""
    from promocodes.messaging.models import Message

    problems = issuance_problems(db, group_id)
    with db.read() as s:
        held = s.execute(
            select(Code.code, Message.status, Message.maybe_delivered)
            .join(Issuance, Issuance.code_id == Code.id)
            .outerjoin(Message, Message.key == Issuance.key)
            .where(
                Code.group_id == group_id,
                Issuance.kind == INITIAL,
                Issuance.voided_at.is_(None),
            )
        ).all()
    for code, status, maybe in held:
        if status is None:
            problems.append(f"code {code} is held under a key no message has")
        elif status != "sent" and not (status == "failed" and maybe):
            problems.append(f"code {code} is held by a customer whose message is {status}")
    return problems
