"""The size budget of a filter tree: checked on the raw JSON, on trees built in Python and
again when a saved tree is evaluated; every refusal names the part and the figures."""

from __future__ import annotations

import time
from typing import Any

import pytest

from promocodes.db import Database
from promocodes.errors import ValidationFailed
from promocodes.segments import service
from promocodes.segments.limits import MAX_COST, MAX_HISTORY, MAX_IN_VALUES, MAX_NODES, NODE_COST
from promocodes.segments.models import Segment
from promocodes.segments.tree import AttributeFilter, Or, parse_filter


def in_list(size: int, name: str = "city") -> dict[str, Any]:
    return {"type": "attribute", "name": name, "op": "in", "value": list(range(size))}


def test_the_budget_keeps_one_full_list_and_every_plain_tree() -> None:
    # One full list and 180 short ones under an and: 182 conditions, exactly the budget.
    full = {"type": "and", "filters": [in_list(MAX_IN_VALUES)] + [in_list(1)] * 180}
    assert NODE_COST * 182 + MAX_IN_VALUES + 180 == MAX_COST
    assert parse_filter(full)
    assert parse_filter({"type": "or", "filters": [in_list(1)] * (MAX_NODES - 1)})
    with pytest.raises(ValidationFailed) as caught:
        parse_filter({**full, "filters": [*full["filters"], in_list(1)]})
    # The list that tipped it over is short: the largest one is named, the part to cut.
    assert caught.value.detail.startswith("filters[0].value: the segment is too large")
    assert "3,011 size points (183 conditions, 1,181 listed values)" in caught.value.detail
    assert "this list of 1,000 values is the largest part" in caught.value.detail


def test_a_huge_tree_is_refused_before_its_values_are_read() -> None:
    huge = {"type": "or", "filters": [in_list(MAX_IN_VALUES)] * 199}
    started = time.perf_counter()
    with pytest.raises(ValidationFailed, match=r"filters\[2\]\.value: .* 3,040 size points"):
        parse_filter(huge)
    assert time.perf_counter() - started < 0.05


def test_trees_built_in_python_and_saved_trees_meet_the_budget(db: Database) -> None:
    long = AttributeFilter(type="attribute", name="city", op="in", value=list(range(1_000)))
    tree = Or(type="or", filters=[long] * 4)
    with db.read() as s, pytest.raises(ValidationFailed, match=r"^filters\[2\]\.value: "):
        service.count(s, tree)
    # A tree saved before the budget existed still loads (the list of segments shows it)
    # but is refused, quickly and by path, when it is evaluated.
    with db.write() as s:
        s.add(Segment(name="Old", filter={"type": "or", "filters": [in_list(1_000)] * 199}))
    with db.read() as s:
        [segment] = service.list_segments(s)
        loaded = service.to_out(segment).filter
        assert isinstance(loaded, Or) and len(loaded.filters) == 199
        started = time.perf_counter()
        with pytest.raises(ValidationFailed, match=r"^filters\[2\]\.value: "):
            service.segment_customers(s, segment.id, cursor=None)
        assert time.perf_counter() - started < 1.0


HISTORY = [
    {"type": "issued_from_group", "group_id": 1, "redeemed": False},
    {"type": "issued_count", "op": "gte", "value": 2},
    {"type": "reached_limit", "group_id": 1},
]


def test_conditions_on_issued_codes_are_few() -> None:
    # Each reads the issuance history (bench/segments.py: largest_legal_history): their
    # number, not their size, is what bounds the time of a count.
    assert len(HISTORY) == MAX_HISTORY
    assert parse_filter({"type": "or", "filters": [*HISTORY, in_list(MAX_IN_VALUES)]})
    one_more = {"type": "not", "filter": {"type": "issued_from_group", "group_id": 2}}
    with pytest.raises(ValidationFailed) as caught:
        parse_filter({"type": "and", "filters": [in_list(1), *HISTORY, one_more]})
    assert caught.value.detail == (
        f"filters[4].filter: a segment has at most {MAX_HISTORY} conditions on issued promo "
        "codes (each one reads the whole history of issued codes); split the segment or "
        "combine these conditions into fewer"
    )
