"""Each filter and operator on a small named cast, on SQLite and PostgreSQL.

The cast (T0 = 2026-01-01 00:00 UTC; "summer" and "winter" are groups):
- ann  ann@example.com, Ann; city Berlin, tier gold, age 31; created T0-10d.
       summer initial at T0, summer repeat at T0+1d, winter initial at T0-1d (redeemed).
- bob  bob@Example.com, +4930123, Bob Builder; city "berlin", age 30.0, vip true; created T0.
       summer initial at T0+1d (redeemed), summer initial at T0+2d (voided).
- cid  no email, Cid; city Paris, tier silver, age "30", note "100%_sure"; created T0+10d.
       winter initial at T0, voided: counts as nothing.
- dora dora@ex_ample.com; city null, tags ["Berlin"], vip false; created T0+20d.
       winter initial at T0+5d, winter initial at T0+6d (redeemed).
- eve  nothing at all; created T0+30d.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.segments.reference import Given, Person
from tests.segments.world import agrees, build, make_groups

from promocodes.db import Database
from promocodes.errors import ValidationFailed
from promocodes.segments.tree import dump_filter, parse_filter

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


class Cast:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.summer, self.winter = make_groups(db, "Summer", "Winter")
        s, w = self.summer, self.winter
        self.people = [
            Person(
                "ann",
                T0 - 10 * DAY,
                email="ann@example.com",
                first_name="Ann",
                attributes={"city": "Berlin", "tier": "gold", "age": 31},
            ),
            Person(
                "bob",
                T0,
                email="bob@Example.com",
                phone="+4930123",
                first_name="Bob",
                last_name="Builder",
                attributes={"city": "berlin", "age": 30.0, "vip": True},
            ),
            Person(
                "cid",
                T0 + 10 * DAY,
                first_name="Cid",
                attributes={"city": "Paris", "tier": "silver", "age": "30", "note": "100%_sure"},
            ),
            Person(
                "dora",
                T0 + 20 * DAY,
                email="dora@ex_ample.com",
                attributes={"city": None, "tags": ["Berlin"], "vip": False},
            ),
            Person("eve", T0 + 30 * DAY),
        ]
        self.given = [
            Given("ann", s, T0),
            Given("ann", s, T0 + DAY, kind="repeat"),
            Given("ann", w, T0 - DAY, redeemed=True),
            Given("bob", s, T0 + DAY, redeemed=True),
            Given("bob", s, T0 + 2 * DAY, voided=True),
            Given("cid", w, T0, voided=True),
            Given("dora", w, T0 + 5 * DAY),
            Given("dora", w, T0 + 6 * DAY, redeemed=True),
        ]
        build(db, self.people, self.given)

    def __call__(self, tree: dict[str, Any]) -> set[str]:
        return agrees(self.db, tree, self.people, self.given)


@pytest.fixture
def cast(db: Database) -> Iterator[Cast]:
    yield Cast(db)


def count(op: str, value: Any, **options: Any) -> dict[str, Any]:
    return {"type": "issued_count", "op": op, "value": value, **options}


def field(name: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"type": "field", "field": name, "op": op, "value": value}


def attr(name: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"type": "attribute", "name": name, "op": op, "value": value}


def not_(tree: dict[str, Any]) -> dict[str, Any]:
    return {"type": "not", "filter": tree}


def test_issued_count_operators_count_live_issuances_and_zero(cast: Cast) -> None:
    # Live counts: ann 3, bob 1, cid 0 (voided only), dora 2, eve 0.
    assert cast(count("gte", 1)) == {"ann", "bob", "dora"}
    assert cast(count("eq", 0)) == {"cid", "eve"}
    assert cast(count("lt", 1)) == {"cid", "eve"}
    assert cast(count("lte", 1)) == {"bob", "cid", "eve"}
    assert cast(count("eq", 2)) == {"dora"}
    assert cast(count("ne", 2)) == {"ann", "bob", "cid", "eve"}
    assert cast(count("ne", 0)) == {"ann", "bob", "dora"}
    assert cast(count("gt", 2)) == {"ann"}
    assert cast(count("gt", 0)) == {"ann", "bob", "dora"}
    assert cast(count("gte", 0)) == {"ann", "bob", "cid", "dora", "eve"}
    assert cast(count("lt", 0)) == set()
    assert cast(count("between", [1, 2])) == {"bob", "dora"}
    assert cast(count("between", [0, 1])) == {"bob", "cid", "eve"}
    assert cast(count("between", [0, 0])) == {"cid", "eve"}
    assert cast(count("between", [3, 3])) == {"ann"}


def test_issued_count_by_group_and_kind(cast: Cast) -> None:
    assert cast(count("eq", 2, group_id=cast.summer)) == {"ann"}
    assert cast(count("eq", 1, group_id=cast.summer, kind="initial")) == {"ann", "bob"}
    assert cast(count("gte", 1, kind="repeat")) == {"ann"}
    assert cast(count("eq", 0, group_id=cast.winter)) == {"bob", "cid", "eve"}
    assert cast(count("lt", 2, group_id=cast.winter)) == {"ann", "bob", "cid", "eve"}


def test_time_window_includes_after_and_excludes_before(cast: Cast) -> None:
    # Issuances at exactly T0: ann's summer initial (and cid's voided one).
    assert cast(count("gte", 2, issued_after=iso(T0))) == {"ann", "dora"}
    assert cast(count("gte", 1, issued_before=iso(T0))) == {"ann"}  # only T0-1d
    window = {"issued_after": iso(T0), "issued_before": iso(T0 + DAY)}
    assert cast(count("eq", 1, **window)) == {"ann"}  # T0 in, T0+1d out
    assert cast(count("eq", 0, **window)) == {"bob", "cid", "dora", "eve"}
    # Microseconds count: a window ending just after T0+1d takes in ann's repeat and bob's.
    just_after = {"issued_after": iso(T0), "issued_before": iso(T0 + DAY + timedelta(0, 0, 1))}
    assert cast(count("eq", 2, **just_after)) == {"ann"}
    assert cast(count("eq", 1, **just_after)) == {"bob"}


def test_issued_from_group_and_redeemed(cast: Cast) -> None:
    s, w = cast.summer, cast.winter
    assert cast({"type": "issued_from_group", "group_id": s}) == {"ann", "bob"}
    assert cast({"type": "issued_from_group", "group_id": w}) == {"ann", "dora"}
    assert cast({"type": "issued_from_group", "group_id": s, "redeemed": True}) == {"bob"}
    assert cast({"type": "issued_from_group", "group_id": s, "redeemed": False}) == {"ann"}
    assert cast({"type": "issued_from_group", "group_id": w, "redeemed": True}) == {"ann", "dora"}
    assert cast({"type": "issued_from_group", "group_id": w, "redeemed": False}) == {"dora"}
    assert cast(not_({"type": "issued_from_group", "group_id": s})) == {"cid", "dora", "eve"}


def test_text_fields_are_exact_and_case_sensitive(cast: Cast) -> None:
    assert cast(field("email", "eq", "ann@example.com")) == {"ann"}
    assert cast(field("email", "ne", "ann@example.com")) == {"bob", "dora"}  # missing: no
    assert cast(not_(field("email", "eq", "ann@example.com"))) == {"bob", "cid", "dora", "eve"}
    assert cast(field("email", "ends_with", "@example.com")) == {"ann"}  # not bob's Example
    assert cast(field("email", "starts_with", "b")) == {"bob"}
    assert cast(field("email", "contains", "EXAMPLE")) == set()
    assert cast(field("email", "in", ["ann@example.com", "zed@x.io"])) == {"ann"}
    assert cast(field("email", "exists")) == {"ann", "bob", "dora"}
    assert cast(field("email", "exists", False)) == {"cid", "eve"}
    assert cast(field("phone", "exists")) == {"bob"}
    assert cast(field("last_name", "eq", "Builder")) == {"bob"}
    # Code-point order: every capital letter sorts before every small one.
    assert cast(field("first_name", "gt", "B")) == {"bob", "cid"}
    assert cast(field("first_name", "lt", "a")) == {"ann", "bob", "cid"}


def test_ignore_case_folds_letters_and_keeps_wildcards_literal(cast: Cast) -> None:
    def folded(name: str, op: str, value: str) -> dict[str, Any]:
        return {**field(name, op, value), "ignore_case": True}

    assert cast(folded("email", "contains", "EXAMPLE")) == {"ann", "bob"}
    assert cast(folded("email", "ends_with", "@EXAMPLE.COM")) == {"ann", "bob"}
    assert cast(folded("email", "starts_with", "BO")) == {"bob"}
    assert cast(folded("first_name", "contains", "ann")) == {"ann"}
    assert cast(folded("email", "contains", "X_A")) == {"dora"}
    assert cast(folded("email", "contains", "%")) == set()
    assert cast(folded("email", "ends_with", "_AMPLE.COM")) == {"dora"}
    assert cast(not_(folded("email", "contains", "example"))) == {"cid", "dora", "eve"}
    assert cast({**field("email", "contains", "EXAMPLE"), "ignore_case": False}) == set()


def test_ignore_case_is_for_substrings_and_left_out_when_unset() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_filter({**field("email", "eq", "a@b.c"), "ignore_case": True})
    assert "ignore_case" in str(caught.value) and "not eq" in str(caught.value)
    assert "ignore_case" not in dump_filter(parse_filter(field("email", "contains", "a")))
    kept = dump_filter(parse_filter({**field("email", "contains", "a"), "ignore_case": True}))
    assert kept["ignore_case"] is True


def test_like_wildcards_in_values_are_literal(cast: Cast) -> None:
    assert cast(field("email", "contains", "_")) == {"dora"}
    assert cast(field("email", "contains", "x_a")) == {"dora"}
    assert cast(field("email", "contains", "%")) == set()
    assert cast(field("email", "ends_with", "_ample.com")) == {"dora"}
    assert cast(attr("note", "starts_with", "100%")) == {"cid"}
    assert cast(attr("note", "contains", "1_0")) == set()  # "_" would match the first "0"
    assert cast(attr("note", "contains", "%_")) == {"cid"}


def test_created_at(cast: Cast) -> None:
    assert cast(field("created_at", "gt", iso(T0))) == {"cid", "dora", "eve"}
    assert cast(field("created_at", "lt", iso(T0))) == {"ann"}
    assert cast(field("created_at", "eq", "2026-01-01T01:00:00+01:00")) == {"bob"}
    assert cast(field("created_at", "ne", iso(T0))) == {"ann", "cid", "dora", "eve"}
    assert cast(field("created_at", "in", [iso(T0), iso(T0 + 10 * DAY)])) == {"bob", "cid"}
    assert len(cast(field("created_at", "exists"))) == 5


def test_attribute_strings(cast: Cast) -> None:
    assert cast(attr("city", "eq", "Berlin")) == {"ann"}  # not "berlin", not ["Berlin"]
    assert cast(attr("city", "ne", "Berlin")) == {"bob", "cid"}  # null and missing: no
    assert cast(not_(attr("city", "eq", "Berlin"))) == {"bob", "cid", "dora", "eve"}
    assert cast(attr("city", "exists")) == {"ann", "bob", "cid"}  # JSON null is missing
    assert cast(attr("city", "exists", False)) == {"dora", "eve"}
    assert cast(attr("city", "in", ["Berlin", "Paris"])) == {"ann", "cid"}
    assert cast(attr("city", "contains", "erl")) == {"ann", "bob"}
    assert cast(attr("city", "starts_with", "B")) == {"ann"}
    assert cast(attr("city", "ends_with", "in")) == {"ann", "bob"}
    assert cast(attr("city", "gt", "Paris")) == {"bob"}  # "berlin" > "Paris" by code point
    assert cast(attr("tags", "exists")) == {"dora"}
    assert cast(attr("tags", "eq", "Berlin")) == set()


def test_attribute_types_are_kept_apart(cast: Cast) -> None:
    assert cast(attr("age", "eq", 30)) == {"bob"}  # 30.0 equals 30; "30" does not
    assert cast(attr("age", "eq", "30")) == {"cid"}
    assert cast(attr("age", "gt", 30)) == {"ann"}
    assert cast(attr("age", "lt", 30.5)) == {"bob"}
    assert cast(attr("age", "gt", "3")) == {"cid"}  # strings compare with strings only
    assert cast(attr("age", "in", [31, "30"])) == {"ann", "cid"}
    assert cast(attr("age", "contains", "3")) == {"cid"}
    assert cast(attr("vip", "eq", True)) == {"bob"}
    assert cast(attr("vip", "eq", False)) == {"dora"}
    assert cast(attr("vip", "eq", 1)) == set()
    assert cast(attr("vip", "ne", True)) == {"dora"}
    assert cast(attr("vip", "in", [True, False])) == {"bob", "dora"}


def test_combinators(cast: Cast) -> None:
    everyone = {"ann", "bob", "cid", "dora", "eve"}
    assert cast({"type": "and", "filters": []}) == everyone
    assert cast({"type": "or", "filters": []}) == set()
    assert cast(not_({"type": "or", "filters": []})) == everyone
    tree = {
        "type": "and",
        "filters": [
            count("lte", 2),
            {
                "type": "or",
                "filters": [attr("city", "exists"), field("email", "contains", "dora")],
            },
        ],
    }
    assert cast(tree) == {"bob", "cid", "dora"}
    assert cast(not_(tree)) == {"ann", "eve"}
    assert cast(not_(not_(count("eq", 0)))) == {"cid", "eve"}
