"""Checks of the money invariants, shared by the concurrency and crash tests.

Each returns a list of human-readable problems; an empty list means the invariant holds.
"""

from __future__ import annotations

from sqlalchemy import func, select

from promocodes.codes import service
from promocodes.codes.models import AVAILABLE, INITIAL, Code, Issuance
from promocodes.db import Database


def issuance_problems(db: Database, group_id: int) -> list[str]:
    problems: list[str] = []
    with db.read() as s:
        shared = s.execute(
            select(Issuance.code_id, func.count(func.distinct(Issuance.customer_id)))
            .where(Issuance.group_id == group_id, Issuance.kind == INITIAL)
            .group_by(Issuance.code_id)
            .having(func.count() > 1)
        ).all()
        problems += [f"code id {cid} issued initially {n} times" for cid, n in shared]
        orphans = s.scalar(
            select(func.count())
            .select_from(Issuance)
            .join(Code, Code.id == Issuance.code_id)
            .where(Issuance.group_id == group_id, Code.status == AVAILABLE)
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
