"""Groups: create, read, edit, delete — the rules of SPEC §1.

Services take a session from the caller's transaction and only ``flush()``; the caller
(``Database.write()``) commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from promocodes.audit.service import SYSTEM, Actor, Target, record
from promocodes.codes import repository as repo
from promocodes.codes.benefit import benefit_columns, benefit_of, public_text
from promocodes.codes.models import CodeGroup, closed_at, name_key
from promocodes.codes.schemas import REFILL_FIELDS, Counts, GroupCreate, GroupOut, GroupUpdate
from promocodes.db import Driver
from promocodes.errors import GroupNameTaken, GroupNotFound, ValidationFailed
from promocodes.models import utcnow


def to_out(session: Session, group: CodeGroup) -> GroupOut:
    return with_counts(session, [group])[0]


def shown(tx: Driver, group_id: int) -> GroupOut:
    """A live group as ``to_out`` shows it, read on the driver in one statement: the
    API's hottest read, where the Session and the ORM cost several times the query."""
    values = repo.shown_group(tx, group_id)
    if values is None:
        raise GroupNotFound(f"group {group_id} does not exist")
    return GroupOut.model_validate({**values, "benefit": benefit_of(SimpleNamespace(**values))})


def counts(session: Session, group_ids: Sequence[int]) -> dict[int, Counts]:
    """Each group's counts, from its counter stripes (never the codes)."""
    return repo.counts(session, group_ids)


@dataclass(frozen=True, slots=True)
class Usable:
    """What a group can hand out at a moment: its codes that may be issued then (not
    blocked, not past their own expiry), or none and why (``closed``: the group expired
    or is not valid yet)."""

    count: int
    closed: str | None


def usable(session: Session, groups: Sequence[CodeGroup], now: datetime) -> dict[int, Usable]:
    """Each group's usable codes at ``now``: two statements, however many groups (the
    per-code expiry is looked at only for groups that have codes with one)."""
    counted = repo.counts(session, [g.id for g in groups])
    with_expiry = [g.id for g in groups if g.has_code_expiry]
    expired = repo.expired_available(session, with_expiry, now)
    out = {}
    for g in groups:
        closed = closed_at(g, now)
        count = 0 if closed else counted[g.id].active - expired.get(g.id, 0)
        out[g.id] = Usable(max(count, 0), closed.detail if closed else None)
    return out


def with_counts(session: Session, groups: Sequence[CodeGroup]) -> list[GroupOut]:
    counts = repo.counts(session, [g.id for g in groups])
    return [
        GroupOut.model_validate(g).model_copy(
            update={**counts[g.id].model_dump(), "benefit": benefit_of(g)}
        )
        for g in groups
    ]


def live_groups(session: Session) -> dict[str, CodeGroup]:
    """The live (not archived) groups by name key: what a template macro names."""
    return {g.name_key: g for g in repo.all_live_groups(session)}


def benefit_texts(session: Session) -> dict[str, str]:
    """What ``client.benefit('G')`` prints for each live group, by name key."""
    return {key: public_text(benefit_of(g)) for key, g in live_groups(session).items()}


def archived_name_keys(session: Session) -> set[str]:
    return repo.archived_name_keys(session)


def get_group(session: Session, group_id: int) -> CodeGroup:
    group = repo.get_group(session, group_id)
    if group is None:
        raise GroupNotFound(f"group {group_id} does not exist")
    return group


def get_any_group(session: Session, group_id: int) -> CodeGroup:
    """A group, archived or not: an archived group stays readable (its history)."""
    group = repo.get_group(session, group_id, live=False)
    if group is None:
        raise GroupNotFound(f"group {group_id} does not exist")
    return group


def resolve_group(session: Session, ref: str) -> CodeGroup:
    """A live group by id or by its name (as the CLI's GROUP argument)."""
    if ref.strip().isdigit():
        group = repo.get_group(session, int(ref))
        if group is not None:
            return group
    group = repo.find_live_group(session, name_key(ref))
    if group is None:
        raise GroupNotFound(f"no group with id or name {ref!r}")
    return group


def _ensure_name_free(session: Session, name: str, *, except_id: int | None = None) -> None:
    other = repo.find_live_group(session, name_key(name))
    if other is not None and other.id != except_id:
        raise GroupNameTaken(
            f"a group named {other.name!r} already exists (names are compared ignoring case "
            "and surrounding spaces)",
            group_id=other.id,
        )


def create_group(session: Session, data: GroupCreate) -> CodeGroup:
    _ensure_name_free(session, data.name)
    group = CodeGroup(
        name=data.name,
        name_key=name_key(data.name),
        description=data.description,
        valid_from=data.valid_from,
        valid_until=data.valid_until,
        low_stock_threshold=data.low_stock_threshold,
        redeem_unissued=data.redeem_unissued,
        refill_pattern=data.refill_pattern,
        refill_below=data.refill_below,
        refill_count=data.refill_count,
        customer_limit=data.customer_limit,
        limit_action=data.limit_action,
        **benefit_columns(data.benefit),
    )
    try:
        # The partial unique index is the last line of defence against a concurrent
        # create with the same name slipping between the check and the insert.
        with session.begin_nested():
            repo.add_group(session, group)
    except IntegrityError as exc:
        raise GroupNameTaken(f"a group named {data.name!r} already exists") from exc
    return group


def update_group(session: Session, group_id: int, data: GroupUpdate) -> CodeGroup:
    group = get_group(session, group_id)
    fields = data.model_fields_set
    if not fields:
        return group  # nothing asked, nothing changed: updated_at stays
    if "name" in fields:
        assert data.name is not None  # GroupUpdate refuses a null name
        _ensure_name_free(session, data.name, except_id=group.id)
        group.name = data.name
        group.name_key = name_key(data.name)
    for field in (
        "description",
        "valid_from",
        "valid_until",
        "low_stock_threshold",
        "redeem_unissued",
        "customer_limit",
        "limit_action",
    ):
        if field in fields:
            setattr(group, field, getattr(data, field))
    if fields & set(REFILL_FIELDS):  # the three change together (the schema checked them)
        for field in REFILL_FIELDS:
            setattr(group, field, getattr(data, field))
    if "benefit" in fields:
        for column, value in benefit_columns(data.benefit).items():
            setattr(group, column, value)
    if group.valid_from and group.valid_until and group.valid_from >= group.valid_until:
        raise ValidationFailed("valid_until must be later than valid_from")
    group.updated_at = utcnow()
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise GroupNameTaken(f"a group named {group.name!r} already exists") from exc
    return group


def list_groups(
    session: Session,
    *,
    after_id: int | None = None,
    limit: int = 50,
    search: str | None = None,
    archived: bool = False,
) -> list[GroupOut]:
    groups = repo.list_live_groups(
        session, after_id=after_id, limit=limit, search=search, archived=archived
    )
    return with_counts(session, groups)


@dataclass(frozen=True, slots=True)
class DeleteResult:
    group_id: int
    outcome: Literal["archived", "removed"]


def delete_outcome(session: Session, group: CodeGroup) -> Literal["archived", "removed"]:
    """What deleting would do: archive when any code was ever issued or redeemed (its
    history lives on customer profiles), otherwise remove the group with its codes.
    Voided issuances are history too (shown as voided on profiles) but leave no trace in
    the counters, hence the look at the rows when the counters say "never issued"."""
    counts = repo.counts(session, [group.id])[group.id]
    if counts.issued or counts.redeemed or repo.has_issuances(session, group.id):
        return "archived"
    return "removed"


def delete_group(session: Session, group_id: int, *, actor: Actor = SYSTEM) -> DeleteResult:
    # Locked before deciding: issues and uploads in flight finish first (an issuance
    # takes the group FOR KEY SHARE through its foreign key, an upload explicitly), so
    # the counters and rows read below already include them.
    group = repo.lock_group(session, group_id)
    if group is None:
        raise GroupNotFound(f"group {group_id} does not exist")
    outcome = delete_outcome(session, group)
    counts = repo.counts(session, [group.id])[group.id]
    record(
        session,
        actor,
        "group.archived" if outcome == "archived" else "group.deleted",
        Target("group", group.id, group.name),
        counts.model_dump(),
    )
    if outcome == "archived":
        # The live-name unique index ignores archived groups, so the name is free again.
        group.archived_at = utcnow()
        group.updated_at = group.archived_at
        session.flush()
    else:
        repo.delete_group_with_codes(session, group.id)
    return DeleteResult(group_id=group_id, outcome=outcome)


def verify_counters(session: Session, group_ids: Iterable[int]) -> dict[int, tuple[str, ...]]:
    """Groups whose counters differ from their rows, with the fields that differ.
    Empty when every counter is exact."""
    ids = list(group_ids)
    stored = repo.counts(session, ids)
    bad: dict[int, tuple[str, ...]] = {}
    for gid in ids:
        actual = repo.recount(session, gid)
        diff = tuple(
            f for f in type(actual).model_fields if getattr(actual, f) != getattr(stored[gid], f)
        )
        if diff:
            bad[gid] = diff
    return bad


def verify_all_counters(session: Session) -> tuple[int, dict[int, tuple[str, ...]]]:
    """``verify_counters`` over every group, archived ones included: how many groups
    were checked, and those whose counters differ."""
    ids = repo.all_group_ids(session)
    return len(ids), verify_counters(session, ids)


def all_live(session: Session) -> list[GroupOut]:
    """Every live group with its counts (for ``/metrics``: a few rows per group)."""
    return with_counts(session, repo.all_live_groups(session))
