"""Random customers, histories and filter trees: the SQL (on SQLite and on PostgreSQL)
selects exactly the customers the plain-Python reference evaluation selects."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from tests.conftest import reset
from tests.segments.reference import Given, Person, evaluate
from tests.segments.world import build, make_groups

from promocodes.customers.models import Customer
from promocodes.db import Database
from promocodes.segments import service
from promocodes.segments.filters import to_sql
from promocodes.segments.limits import HISTORY_TYPES, MAX_HISTORY
from promocodes.segments.tree import TEXT_OPS, parse_filter

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# Few distinct instants, so windows often fall exactly on an issuance (boundaries).
TIMES = [T0 + timedelta(hours=h) for h in (-24, 0, 1, 24)]
GROUPS = 3

TEXTS = ["Berlin", "berlin", "Ber", "lin", "a%b", "a_b", "ab", "", "Zoë", "30", "é"]
NUMBERS: list[Any] = [0, 1, 30, 30.0, 30.5, -2, 31]
SCALARS = st.sampled_from([*TEXTS, *NUMBERS, True, False])
EMAILS = [None, "a@example.com", "b@Example.com", "c@ex_ample.com", "d%e@x.io", "é@x.io"]
NAMES = [None, "", "Ann", "ann", "Änne", "Zoë", "Bob"]
KEYS = ["city", "age", "vip"]
PIECES = ["a", "@example.com", "_", "%", "e", "Ann", "x.io", "é", "b@"]

# --- worlds -----------------------------------------------------------------------------

attribute_values = st.one_of(
    SCALARS, st.none(), st.just(["Berlin"]), st.just({"a": 1}), st.sampled_from(NUMBERS)
)
people = st.lists(
    st.builds(
        lambda i, t, email, first, phone, attrs: Person(
            f"p{i}", t, email=email, first_name=first, phone=phone, attributes=attrs
        ),
        st.just(0),
        st.sampled_from(TIMES),
        st.sampled_from(EMAILS),
        st.sampled_from(NAMES),
        st.sampled_from([None, "+49", "030 1"]),
        st.dictionaries(st.sampled_from(KEYS), attribute_values, max_size=3),
    ),
    # Not too small: with few examples, hypothesis would mostly try tiny worlds.
    min_size=3,
    max_size=10,
).map(lambda ps: [replace(p, external_id=f"p{i}") for i, p in enumerate(ps)])


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[Person], list[Given]]:
    cast = draw(people)
    history = draw(
        st.lists(
            st.builds(
                Given,
                st.sampled_from([p.external_id for p in cast]),
                st.integers(0, GROUPS - 1),  # an index into the groups, bound later
                st.sampled_from(TIMES),
                kind=st.sampled_from(["initial", "repeat"]),
                voided=st.booleans(),
                redeemed=st.booleans(),
            ),
            min_size=2,
            max_size=20,
        )
    )
    return cast, history


# --- trees (as JSON, with group indexes bound to ids later) -----------------------------


def _iso(t: datetime) -> str:
    return t.isoformat()


@st.composite
def issued_count(draw: st.DrawFn) -> dict[str, Any]:
    op = draw(st.sampled_from(["eq", "ne", "lt", "lte", "gt", "gte", "between"]))
    if op == "between":
        value: Any = sorted(draw(st.lists(st.integers(0, 3), min_size=2, max_size=2)))
    else:
        value = draw(st.integers(0, 3))
    tree: dict[str, Any] = {"type": "issued_count", "op": op, "value": value}
    for key, strategy in (
        ("group_id", st.integers(0, GROUPS - 1)),
        ("kind", st.sampled_from(["initial", "repeat"])),
        ("issued_after", st.sampled_from(TIMES)),
        ("issued_before", st.sampled_from(TIMES)),
    ):
        if draw(st.booleans()):
            tree[key] = draw(strategy)
    after, before = tree.get("issued_after"), tree.get("issued_before")
    if after and before and after >= before:
        del tree["issued_before"]
    for key in ("issued_after", "issued_before"):
        if key in tree:
            tree[key] = _iso(tree[key])
    return tree


issued_from_group = st.builds(
    lambda g, r: {"type": "issued_from_group", "group_id": g, "redeemed": r},
    st.integers(0, GROUPS - 1),
    st.sampled_from([None, True, False]),
)


@st.composite
def comparison(draw: st.DrawFn, scalars: st.SearchStrategy[Any], timed: bool) -> dict[str, Any]:
    ops = ["eq", "ne", "in", "exists", "gt", "lt"] + ([] if timed else list(TEXT_OPS))
    op = draw(st.sampled_from(ops))
    if op == "exists":
        return {"op": op, "value": draw(st.sampled_from([None, True, False]))}
    if op == "in":
        return {"op": op, "value": draw(st.lists(scalars, min_size=1, max_size=3))}
    if op in TEXT_OPS:
        return {"op": op, "value": draw(st.sampled_from(PIECES + [t for t in TEXTS if t]))}
    if op in ("gt", "lt"):
        scalars = scalars.filter(lambda v: not isinstance(v, bool))
    return {"op": op, "value": draw(scalars)}


field_filter = st.one_of(
    st.builds(
        # ignore_case on substring operators only (elsewhere it is refused). The texts
        # hold no pair of non-ASCII letters that differ only in case, so the reference's
        # A-Z folding is what both backends do here.
        lambda name, cmp, fold: {
            "type": "field",
            "field": name,
            **cmp,
            **({"ignore_case": True} if fold and cmp["op"] in TEXT_OPS else {}),
        },
        st.sampled_from(["email", "phone", "first_name", "last_name"]),
        comparison(st.sampled_from([t for t in TEXTS + EMAILS + NAMES if t is not None]), False),
        st.booleans(),
    ),
    st.builds(
        lambda cmp: {"type": "field", "field": "created_at", **cmp},
        comparison(st.sampled_from([_iso(t) for t in TIMES]), True),
    ),
)
attribute_filter = st.builds(
    lambda name, cmp: {"type": "attribute", "name": name, **cmp},
    st.sampled_from([*KEYS, "missing"]),
    comparison(SCALARS, False),
)
leaves = st.one_of(issued_count(), issued_from_group, field_filter, attribute_filter)
trees = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.builds(lambda fs: {"type": "and", "filters": fs}, st.lists(children, max_size=3)),
        st.builds(lambda fs: {"type": "or", "filters": fs}, st.lists(children, max_size=3)),
        st.builds(lambda f: {"type": "not", "filter": f}, children),
    ),
    max_leaves=6,
).filter(lambda tree: _history_conditions(tree) <= MAX_HISTORY)


def _history_conditions(tree: Any) -> int:
    """How many conditions on issued codes a raw tree holds (``limits.MAX_HISTORY``)."""
    if isinstance(tree, list):
        return sum(_history_conditions(t) for t in tree)
    if not isinstance(tree, dict):
        return 0
    own = tree.get("type") in HISTORY_TYPES
    return (
        own + _history_conditions(tree.get("filters", [])) + _history_conditions(tree.get("filter"))
    )


def bind_groups(tree: Any, ids: list[int]) -> Any:
    if isinstance(tree, list):
        return [bind_groups(t, ids) for t in tree]
    if not isinstance(tree, dict):
        return tree
    bound = {k: bind_groups(v, ids) for k, v in tree.items()}
    if bound.get("type") in ("issued_count", "issued_from_group") and "group_id" in bound:
        bound["group_id"] = ids[bound["group_id"]]
    return bound


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# A world takes a while to build, a tree a moment to check: many trees per world, half of
# them single filters (each operator seen on its own, not masked by an and/or around it).
@given(world=worlds(), raw_trees=st.lists(st.one_of(leaves, trees), min_size=8, max_size=16))
def test_sql_selects_what_the_reference_selects(
    db: Database, world: tuple[list[Person], list[Given]], raw_trees: list[dict[str, Any]]
) -> None:
    reset(db)
    group_ids = make_groups(db, *(f"G{i}" for i in range(GROUPS)))
    cast, history = world
    history = [replace(g, group_id=group_ids[g.group_id]) for g in history]
    build(db, cast, history)
    for raw in raw_trees:
        tree = parse_filter(bind_groups(raw, group_ids))
        with db.read() as s:
            got = set(s.scalars(select(Customer.external_id).where(to_sql(tree, db.dialect))))
            counted = service.count(s, tree)  # shortcuts for single issuance filters
        assert got == evaluate(tree, cast, history), raw
        assert counted == len(got), raw
