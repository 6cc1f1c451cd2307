"""A plain-Python evaluation of filter trees: the specification the SQL must agree with.

Written from the semantics documented in ``promocodes/segments/filters.py``, without
looking at how the SQL gets there: one customer at a time, counting in loops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, TypeAdapter

from promocodes.segments.tree import (
    And,
    AttributeFilter,
    FieldFilter,
    Filter,
    IssuedCount,
    IssuedFromGroup,
    Not,
    Or,
)

_TIME: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)


@dataclass(frozen=True)
class Person:
    external_id: str
    created_at: datetime
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Given:
    """One issuance: to ``customer`` (external id) from ``group_id``."""

    customer: str
    group_id: int
    issued_at: datetime
    kind: str = "initial"
    voided: bool = False
    redeemed: bool = False


def evaluate(tree: Filter, people: list[Person], issuances: list[Given]) -> set[str]:
    return {p.external_id for p in people if matches(tree, p, issuances)}


def matches(tree: Filter, person: Person, issuances: list[Given]) -> bool:
    if isinstance(tree, And):
        return all(matches(f, person, issuances) for f in tree.filters)
    if isinstance(tree, Or):
        return any(matches(f, person, issuances) for f in tree.filters)
    if isinstance(tree, Not):
        return not matches(tree.filter, person, issuances)
    live = [i for i in issuances if i.customer == person.external_id and not i.voided]
    if isinstance(tree, IssuedCount):
        return _count_matches(tree, len([i for i in live if _counted(tree, i)]))
    if isinstance(tree, IssuedFromGroup):
        return any(
            i.group_id == tree.group_id and (tree.redeemed is None or i.redeemed == tree.redeemed)
            for i in live
        )
    if isinstance(tree, FieldFilter):
        value = getattr(person, tree.field)
        if tree.field == "created_at":
            return _compare(value, tree.op, _times(tree.value))
        if tree.ignore_case and isinstance(value, str) and isinstance(tree.value, str):
            # The letters both backends fold (SQLite's LIKE folds A-Z only).
            return _compare(_fold_ascii(value), tree.op, _fold_ascii(tree.value))
        return _compare(value, tree.op, tree.value)
    assert isinstance(tree, AttributeFilter)
    return _compare(person.attributes.get(tree.name), tree.op, tree.value)


def _fold_ascii(text: str) -> str:
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _counted(f: IssuedCount, i: Given) -> bool:
    return (
        (f.group_id is None or i.group_id == f.group_id)
        and (f.kind is None or i.kind == f.kind)
        and (f.issued_after is None or i.issued_at >= f.issued_after)
        and (f.issued_before is None or i.issued_at < f.issued_before)
    )


def _count_matches(f: IssuedCount, n: int) -> bool:
    if f.op == "between":
        assert isinstance(f.value, tuple)
        return f.value[0] <= n <= f.value[1]
    v = f.value
    assert isinstance(v, int)
    return {
        "eq": n == v,
        "ne": n != v,
        "lt": n < v,
        "lte": n <= v,
        "gt": n > v,
        "gte": n >= v,
    }[f.op]


def _times(value: Any) -> Any:
    if isinstance(value, list):
        return [_TIME.validate_python(v) for v in value]
    if value is None or isinstance(value, bool):  # exists takes true/false
        return value
    return _TIME.validate_python(value)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, datetime):
        return "time"
    return "other"  # lists and objects: only ``exists`` and ``ne`` see them


def _eq(have: Any, want: Any) -> bool:
    return have is not None and _kind(have) == _kind(want) and have == want


def _compare(have: Any, op: str, want: Any) -> bool:
    """``have`` is the customer's value (None: missing or JSON null)."""
    if op == "exists":
        return (have is not None) == (want is not False)
    if have is None:
        return False
    if op == "eq":
        return _eq(have, want)
    if op == "ne":
        return not _eq(have, want)
    if op == "in":
        return any(_eq(have, w) for w in want)
    if op in ("gt", "lt"):
        if _kind(have) != _kind(want):
            return False
        return bool(have > want) if op == "gt" else bool(have < want)
    if not isinstance(have, str):
        return False
    if op == "contains":
        return want in have
    if op == "starts_with":
        return have.startswith(want)
    assert op == "ends_with"
    return have.endswith(want)
