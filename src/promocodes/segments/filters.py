"""A filter tree compiled to ONE SQL expression over ``customers`` (pure: builds SQL, never
runs it): ``select(Customer).where(to_sql(tree, dialect))``; ``count_sql`` is the one
query counting them.

Semantics — the same on SQLite, on PostgreSQL and in the reference evaluation the tests
compare both with:

- Every leaf is two-valued (true or false, never SQL NULL), so ``not`` is the exact
  complement of its filter: ``not`` of "city is Berlin" includes customers with no city.
- ``issued_count`` counts a customer's issuances that are not voided, optionally only of
  one group and one kind, in the half-open window ``issued_after <= issued_at <
  issued_before`` (after inclusive, before exclusive, either may be left out), so
  consecutive windows never count an issuance twice. Customers with none count 0:
  ``eq 0`` and ``lt 1`` include them. ``between [a, b]`` is inclusive at both ends.
- ``issued_from_group``: there is a non-voided issuance (any kind) from the group; with
  ``redeemed`` true/false, one whose code's status is / is not ``redeemed`` (a customer
  holding one redeemed and one unredeemed code of the group matches both).
- ``field`` and ``attribute``: a missing field, a missing attribute and an attribute whose
  JSON value is null are all "missing"; missing matches nothing but ``exists false``.
  ``ne v`` means "present and not equal to v" (missing does not match; ``not eq`` does).
- Attributes compare as typed JSON values: a string only equals a string, a number a
  number (``30 == 30.0``), a boolean a boolean (``"30"`` ≠ ``30``, ``true`` ≠ ``1``).
  ``contains``/``starts_with``/``ends_with`` match string values only; ``gt``/``lt`` with
  a number compare numbers numerically, with a string compare strings.
- Text comparisons are case-sensitive and by code point everywhere (``COLLATE "C"`` on
  PostgreSQL, whose locale order would differ; SQLite's LIKE ignores ASCII case, so
  SQLite uses ``instr``/``substr`` and PostgreSQL ``LIKE`` with ``%``/``_`` escaped).

Shape of the SQL: issuance filters are subqueries over ``issuances`` (never a loop over
customers). A count range that excludes 0 is "id in (customers whose count is in range)";
one that includes 0 is its complement, "id not in (customers whose count is outside)",
so customers without issuances need no row at all. SQLite evaluates ``IN`` / ``NOT IN``
by building the subquery's set once; on PostgreSQL ``NOT IN`` falls back to a quadratic
plan once the set outgrows ``work_mem``, so there the same sets are ``EXISTS`` /
``NOT EXISTS``, which the planner turns into semi/anti joins. ``and``/``or`` put the
filters on the customer's own columns first: SQLite evaluates the terms in the order
given, so the cheap test rules most rows out before any set is probed.

Counting: when the whole tree is one issuance filter (or its ``not``), ``count_sql``
counts the set straight from ``issuances`` — one row per customer — and subtracts it
from the number of customers for a complement, instead of joining a million customers
to it. That is exact because ``issuances.customer_id`` is a NOT NULL foreign key to
``customers``: every id in the set is a customer.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, distinct, false, func, not_, or_, select, true

from promocodes.codes.models import INITIAL, REDEEMED, Code, CodeGroup, Issuance
from promocodes.customers.models import Customer
from promocodes.segments.predicates import attribute_predicate, field_predicate
from promocodes.segments.tree import (
    And,
    AttributeFilter,
    FieldFilter,
    Filter,
    IssuedCount,
    IssuedFromGroup,
    Not,
    Or,
    ReachedLimit,
    limits_problem,
    walk,
)

Bool = ColumnElement[bool]


def to_sql(tree: Filter, dialect: str) -> Bool:
    """The WHERE clause selecting the customers ``tree`` describes, for ``dialect``."""
    return _compiler(tree, dialect).node(tree)


def count_sql(tree: Filter, dialect: str) -> Select[int]:
    """One query whose single value is the number of customers ``tree`` selects."""
    compiler = _compiler(tree, dialect)
    negated, inner = False, tree
    while isinstance(inner, Not):
        negated, inner = not negated, inner.filter
    members = compiler.members(inner) if isinstance(inner, IssuedCount | IssuedFromGroup) else None
    if not isinstance(members, _Members):  # the general case: count the matching rows
        return select(func.count()).select_from(Customer).where(compiler.node(tree))
    if members.grouped:  # one row per customer already
        in_set = select(func.count()).select_from(members.ids.subquery())
    else:
        in_set = members.ids.with_only_columns(func.count(distinct(Issuance.customer_id)))
    if members.negated == negated:
        return in_set
    everyone = select(func.count()).select_from(Customer).scalar_subquery()
    return select(everyone - in_set.scalar_subquery())


def _compiler(tree: Filter, dialect: str) -> _Compiler:
    if dialect not in ("sqlite", "postgresql"):
        raise ValueError(f"segments support sqlite and postgresql, not {dialect}")
    # Trees built in Python skip the API's validation, and a saved tree may predate
    # today's limits: either is refused here, before any SQL is built.
    problem = limits_problem(tree)
    if problem is not None:
        raise problem
    return _Compiler(dialect == "postgresql")


@dataclass(frozen=True, slots=True)
class _Members:
    """The customers whose ids ``ids`` selects (``grouped``: one row per customer, else
    maybe several) — or, ``negated``, every other customer."""

    ids: Select[int]
    grouped: bool = False
    negated: bool = False


def _touches_issuances(f: Filter) -> bool:
    return any(isinstance(n, IssuedCount | IssuedFromGroup | ReachedLimit) for _, _, n in walk(f))


def _at_limit(f: ReachedLimit) -> _Members:
    """Customers whose standing initial codes from the group reach its limit, read when
    the query runs (a changed limit changes the segment; no limit: no one)."""
    limit = select(CodeGroup.customer_limit).where(CodeGroup.id == f.group_id).scalar_subquery()
    held = (
        select(Issuance.customer_id)
        .where(
            Issuance.group_id == f.group_id,
            Issuance.kind == INITIAL,
            Issuance.voided_at.is_(None),
        )
        .group_by(Issuance.customer_id)
        .having(func.count() >= limit)
    )
    return _Members(held, grouped=True)


class _Compiler:
    def __init__(self, postgres: bool) -> None:
        self.pg = postgres

    def node(self, f: Filter) -> Bool:
        match f:
            case And() | Or():
                # Own columns first (stable): see the module doc.
                parts = [self.node(c) for c in sorted(f.filters, key=_touches_issuances)]
                if isinstance(f, And):
                    return and_(true(), *parts)
                return or_(false(), *parts)
            case Not():
                return not_(self.node(f.filter))
            case ReachedLimit():
                return self.member_of(_at_limit(f))
            case IssuedCount() | IssuedFromGroup():
                members = self.members(f)
                if isinstance(members, bool):
                    return true() if members else false()
                return self.member_of(members)
            case FieldFilter():
                return field_predicate(f, self.pg)
            case AttributeFilter():
                return attribute_predicate(f, self.pg)
        raise TypeError(f"not a filter: {f!r}")

    def member_of(self, m: _Members) -> Bool:
        """``customers.id`` is (not) among the ids (see the module doc for the forms)."""
        if not self.pg:
            found: Bool = Customer.id.in_(m.ids)
        elif m.grouped:  # correlate outside the GROUP BY: a semi/anti join on the groups
            sub = m.ids.subquery()
            found = select(sub.c.customer_id).where(sub.c.customer_id == Customer.id).exists()
        else:
            found = m.ids.where(Issuance.customer_id == Customer.id).exists()
        return not_(found) if m.negated else found

    def members(self, f: IssuedCount | IssuedFromGroup) -> _Members | bool:
        """The filter's customers as a set of ids, or True/False when it is everyone or
        no one."""
        ids = select(Issuance.customer_id).where(Issuance.voided_at.is_(None))
        if isinstance(f, IssuedFromGroup):
            ids = ids.where(Issuance.group_id == f.group_id)
            if f.redeemed is not None:
                redeemed = Code.status == REDEEMED
                ids = ids.join(Code, Code.id == Issuance.code_id).where(
                    redeemed if f.redeemed else not_(redeemed)
                )
            return _Members(ids)
        if f.group_id is not None:
            ids = ids.where(Issuance.group_id == f.group_id)
        if f.kind is not None:
            ids = ids.where(Issuance.kind == f.kind)
        if f.issued_after is not None:
            ids = ids.where(Issuance.issued_at >= f.issued_after)
        if f.issued_before is not None:
            ids = ids.where(Issuance.issued_at < f.issued_before)
        n = func.count()
        grouped = ids.group_by(Issuance.customer_id)
        if f.op == "ne":
            assert isinstance(f.value, int)
            if f.value == 0:
                return _Members(ids)
            return _Members(grouped.having(n == f.value), grouped=True, negated=True)
        low, high = f.bounds()
        if high is not None and low > high:
            return False
        if low <= 0:  # 0 is in range: everyone but those whose count is above it
            if high is None:
                return True
            if high == 0:
                return _Members(ids, negated=True)
            return _Members(grouped.having(n > high), grouped=True, negated=True)
        if low == 1 and high is None:
            return _Members(ids)
        having = n >= low if high is None else n.between(low, high)
        return _Members(grouped.having(having), grouped=True)
