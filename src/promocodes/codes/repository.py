"""SQL of groups, their counters, their uploads and their stock alerts. Services call
these inside their transaction; nothing here commits. (Code rows: ``code_repository``;
claims, issuances and voids: ``claim_repository``.)"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from promocodes.codes.benefit import BENEFIT_COLUMNS
from promocodes.codes.models import (
    AVAILABLE,
    BLOCKED,
    COUNTER_STRIPES,
    Alert,
    AlertState,
    Code,
    CodeGroup,
    GroupCounter,
    Upload,
)
from promocodes.codes.schemas import Counts, GroupOut
from promocodes.db import Driver, RawSQL
from promocodes.models import UTCDateTime

COUNTER_FIELDS = ("total", "available", "issued", "redeemed", "blocked")
# The same counters as ``Counts`` names them (``available`` is shown as ``active``).
_COUNT_NAMES = ("total", "active", "issued", "redeemed", "blocked")


# --- groups -----------------------------------------------------------------------------


def add_group(session: Session, group: CodeGroup) -> CodeGroup:
    session.add(group)
    session.flush()
    # All stripes exist from the start, so counter changes are plain UPDATEs (no upsert
    # race between two first claimers).
    session.add_all(GroupCounter(group_id=group.id, slot=s) for s in range(COUNTER_STRIPES))
    session.flush()
    return group


def get_group(session: Session, group_id: int, *, live: bool = True) -> CodeGroup | None:
    group = session.get(CodeGroup, group_id)
    if group is None or (live and group.archived_at is not None):
        return None
    return group


# What ``GroupOut`` shows, read in one statement on the driver (the API's ``GET`` of a
# group): every field of it that is a column of the group (derived, so a new field cannot
# be forgotten here), the benefit's columns, and the stripes summed.
_SHOWN = tuple(f for f in GroupOut.model_fields if f in CodeGroup.__table__.c)
_TIMES = frozenset(f for f in _SHOWN if isinstance(getattr(CodeGroup, f).type, UTCDateTime))
_ROW_COLUMNS = (*_SHOWN, *BENEFIT_COLUMNS)
_SHOWN_GROUP = RawSQL.of(
    f"SELECT {', '.join(f'g.{c}' for c in _ROW_COLUMNS)}, "  # noqa: S608 - names from the model
    + ", ".join(f"COALESCE(SUM(s.{f}), 0)" for f in COUNTER_FIELDS)
    + " FROM code_groups g LEFT JOIN group_counters s ON s.group_id = g.id"
    " WHERE g.id = :id AND g.archived_at IS NULL GROUP BY g.id"
)


def shown_group(tx: Driver, group_id: int) -> dict[str, Any] | None:
    """A live group's shown columns and summed counters by name (as the ORM would
    type them: aware UTC times, booleans, the benefit's value as a 2-place Decimal),
    or None when there is no such live group."""
    row = tx.first(_SHOWN_GROUP, {"id": group_id})
    if row is None:
        return None
    values = dict(zip(_ROW_COLUMNS, row, strict=False))
    for name in _TIMES:
        values[name] = tx.read_time(values[name])
    values["redeem_unissued"] = bool(values["redeem_unissued"])
    if isinstance(values["benefit_value"], float | int):  # SQLite keeps NUMERIC as a number
        values["benefit_value"] = Decimal(f"{values['benefit_value']:.2f}")
    totals = row[len(_ROW_COLUMNS) :]
    values.update(zip(_COUNT_NAMES, totals, strict=True))
    return values


def lock_group(session: Session, group_id: int, *, key_share: bool = False) -> CodeGroup | None:
    """The live group, locked until the transaction ends (on PostgreSQL; SQLite has one
    writer at a time).

    Codes carry no foreign key to their group (codes/models.py), so locks keep the
    promise: an upload takes ``key_share`` (FOR KEY SHARE: blocks only the group's
    deletion, not other uploads, claims or edits), and a delete takes FOR UPDATE, which
    waits for those uploads and keeps new ones out.
    """
    group = session.scalar(
        select(CodeGroup)
        .where(CodeGroup.id == group_id)
        .with_for_update(key_share=key_share)
        .execution_options(populate_existing=True)
    )
    if group is None or group.archived_at is not None:
        return None
    return group


def find_live_group(session: Session, key: str) -> CodeGroup | None:
    return session.scalar(
        select(CodeGroup).where(CodeGroup.name_key == key, CodeGroup.archived_at.is_(None))
    )


def archived_name_keys(session: Session) -> set[str]:
    """The name keys of archived groups (a template naming one is told so)."""
    stmt = select(CodeGroup.name_key).where(CodeGroup.archived_at.is_not(None)).distinct()
    return set(session.scalars(stmt))


def all_group_ids(session: Session) -> list[int]:
    """Every group's id, archived ones included."""
    return list(session.scalars(select(CodeGroup.id).order_by(CodeGroup.id)))


def all_live_groups(session: Session) -> list[CodeGroup]:
    return list(session.scalars(select(CodeGroup).where(CodeGroup.archived_at.is_(None))))


def list_live_groups(
    session: Session,
    *,
    after_id: int | None,
    limit: int,
    search: str | None = None,
    archived: bool = False,
) -> list[CodeGroup]:
    """A page of live groups by id; with ``archived``, of archived ones instead."""
    gone = CodeGroup.archived_at.is_not(None) if archived else CodeGroup.archived_at.is_(None)
    stmt = select(CodeGroup).where(gone)
    if after_id is not None:
        stmt = stmt.where(CodeGroup.id > after_id)
    if search:
        pattern = (
            "%"
            + search.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            + "%"
        )
        stmt = stmt.where(CodeGroup.name_key.like(pattern, escape="\\"))
    return list(session.scalars(stmt.order_by(CodeGroup.id).limit(limit)))


def has_issuances(session: Session, group_id: int) -> bool:
    """Whether any code of the group was ever issued, voided issuances included. Walks
    the group's codes (ix_codes_group_status) and probes issuances by code."""
    return bool(
        session.scalar(
            text(
                "SELECT EXISTS (SELECT 1 FROM codes c JOIN issuances i ON i.code_id = c.id "
                "WHERE c.group_id = :group_id)"
            ),
            {"group_id": group_id},
        )
    )


def delete_group_with_codes(session: Session, group_id: int) -> None:
    # Waits for uploads in flight into this group (they hold it FOR KEY SHARE) and keeps
    # new ones out, so the DELETE of codes below sees every code the group will ever get.
    session.execute(select(CodeGroup.id).where(CodeGroup.id == group_id).with_for_update())
    session.execute(delete(Code).where(Code.group_id == group_id))
    session.execute(delete(Upload).where(Upload.group_id == group_id))
    session.execute(delete(GroupCounter).where(GroupCounter.group_id == group_id))
    session.execute(delete(CodeGroup).where(CodeGroup.id == group_id))


# --- counters ---------------------------------------------------------------------------


def counts(session: Session, group_ids: Sequence[int]) -> dict[int, Counts]:
    """Sum each group's stripes: a handful of rows per group, never the codes."""
    if not group_ids:
        return {}
    rows = session.execute(
        select(
            GroupCounter.group_id,
            *(func.sum(getattr(GroupCounter, f)) for f in COUNTER_FIELDS),
        )
        .where(GroupCounter.group_id.in_(group_ids))
        .group_by(GroupCounter.group_id)
    )
    out = {gid: Counts() for gid in group_ids}
    for gid, *totals in rows:
        out[gid] = Counts(**dict(zip(_COUNT_NAMES, totals, strict=True)))
    return out


_BUMP = text(
    "UPDATE group_counters SET total = total + :total, available = available + :available, "
    "issued = issued + :issued, redeemed = redeemed + :redeemed, blocked = blocked + :blocked "
    "WHERE group_id = :group_id AND slot = :slot"
)


def bump_counters(
    session: Session,
    group_id: int,
    *,
    slot: int | None = None,
    total: int = 0,
    available: int = 0,
    issued: int = 0,
    redeemed: int = 0,
    blocked: int = 0,
) -> None:
    """Apply counter deltas to one stripe (random unless given), in the caller's
    transaction. A prebuilt statement: this runs once per claim."""
    if not (total or available or issued or redeemed or blocked):
        return
    session.execute(
        _BUMP,
        {
            "group_id": group_id,
            "slot": random.randrange(COUNTER_STRIPES) if slot is None else slot,
            "total": total,
            "available": available,
            "issued": issued,
            "redeemed": redeemed,
            "blocked": blocked,
        },
    )


def recount(session: Session, group_id: int) -> Counts:
    """Counts derived from the code rows themselves: the truth the counters must equal.
    A full scan; for checks and tests, never for a request path."""
    c = Code
    row = session.execute(
        select(
            func.count(),
            func.count().filter(c.status == AVAILABLE),
            func.count(c.issued_at),
            func.count(c.redeemed_at),
            func.count().filter(c.status == BLOCKED),
        ).where(c.group_id == group_id)
    ).one()
    return Counts(total=row[0], active=row[1], issued=row[2], redeemed=row[3], blocked=row[4])


def group_names(session: Session, group_ids: Iterable[int]) -> dict[int, str]:
    ids = list(set(group_ids))
    if not ids:
        return {}
    rows = session.execute(select(CodeGroup.id, CodeGroup.name).where(CodeGroup.id.in_(ids)))
    return {gid: name for gid, name in rows}


# --- uploads ----------------------------------------------------------------------------


def list_uploads(session: Session, group_id: int | None, limit: int = 100) -> list[Upload]:
    stmt = select(Upload)
    if group_id is not None:
        stmt = stmt.where(Upload.group_id == group_id)
    return list(session.scalars(stmt.order_by(Upload.id.desc()).limit(limit)))


def count_uploads(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Upload)) or 0


def get_upload(session: Session, upload_id: int) -> Upload | None:
    return session.get(Upload, upload_id)


def add_upload(session: Session, upload: Upload) -> Upload:
    session.add(upload)
    session.flush()
    return upload


def running_uploads(session: Session) -> list[Upload]:
    return list(session.scalars(select(Upload).where(Upload.status == "running")))


# --- stock alerts -----------------------------------------------------------------------


AlertRow = TypeVar("AlertRow", Alert, AlertState)


def add(session: Session, row: AlertRow) -> AlertRow:
    session.add(row)
    session.flush()
    return row


def remove(session: Session, row: AlertState) -> None:
    session.delete(row)
    session.flush()


def alert_states(session: Session) -> list[AlertState]:
    return list(session.scalars(select(AlertState)))


def get_alert(session: Session, alert_id: int) -> Alert | None:
    return session.get(Alert, alert_id)


def undelivered_alerts(session: Session, limit: int) -> list[Alert]:
    stmt = select(Alert).where(Alert.delivered_at.is_(None)).order_by(Alert.id).limit(limit)
    return list(session.scalars(stmt))


def recent_alerts(session: Session, limit: int) -> list[Alert]:
    return list(session.scalars(select(Alert).order_by(Alert.id.desc()).limit(limit)))


def alerts_with_groups(
    session: Session, *, group_id: int | None, kind: str | None, open_only: bool, limit: int
) -> list[tuple[Alert, str, bool]]:
    """(alert, its group's name, whether the group is archived), newest first."""
    stmt = select(Alert, CodeGroup.name, CodeGroup.archived_at.is_not(None)).join(
        CodeGroup, CodeGroup.id == Alert.group_id
    )
    if group_id is not None:
        stmt = stmt.where(Alert.group_id == group_id)
    if kind is not None:
        stmt = stmt.where(Alert.kind == kind)
    if open_only:
        stmt = stmt.where(Alert.acknowledged_at.is_(None))
    rows = session.execute(stmt.order_by(Alert.id.desc()).limit(limit))
    return [(a, name, bool(archived)) for a, name, archived in rows]


def expired_available(session: Session, group_ids: Sequence[int], now: datetime) -> dict[int, int]:
    """group id -> its available codes whose own expiry has passed (still counted as
    active, never issued): an index range over the expired ones only."""
    if not group_ids:
        return {}
    rows = session.execute(
        select(Code.group_id, func.count())
        .where(
            Code.group_id.in_(list(group_ids)),
            Code.status == AVAILABLE,
            Code.valid_until <= now,
        )
        .group_by(Code.group_id)
    )
    return {gid: int(n) for gid, n in rows}
