"""Saved segments, preview, paging, validation errors with paths, limits and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from tests.factories import group_with_codes, issue, make_customer
from typer.testing import CliRunner

from promocodes.cli import app
from promocodes.codes import service as groups
from promocodes.db import Database
from promocodes.errors import ValidationFailed
from promocodes.messaging import mailings
from promocodes.segments import service
from promocodes.segments.filters import to_sql
from promocodes.segments.schemas import SegmentCreate, SegmentUpdate
from promocodes.segments.tree import MAX_DEPTH, MAX_NODES, And, FieldFilter, Not, parse_filter

EXAMPLE = "@example.com"
BY_DOMAIN: dict[str, Any] = {"type": "field", "field": "email", "op": "ends_with", "value": EXAMPLE}


def received(group_id: int, **extra: Any) -> dict[str, Any]:
    return {"type": "issued_from_group", "group_id": group_id, **extra}


def people(db: Database, count: int) -> None:
    with db.write() as s:
        for i in range(count):
            make_customer(s, f"p{i}", email=f"p{i}{EXAMPLE}" if i % 2 == 0 else f"p{i}@x.io")


def nested(depth: int) -> dict[str, Any]:
    tree: dict[str, Any] = BY_DOMAIN
    for _ in range(depth - 1):
        tree = {"type": "not", "filter": tree}
    return tree


def test_create_get_list_update_delete(db: Database) -> None:
    gid = group_with_codes(db, "Summer", ["S-1"])
    with db.write() as s:
        made = service.create(s, SegmentCreate(name="  Example people ", filter=BY_DOMAIN))
        service.create(s, SegmentCreate(name="Got summer", filter=received(gid)))
    with db.read() as s:
        out = service.to_out(service.get(s, made.id))
        assert out.name == "Example people"
        assert out.filter == parse_filter(BY_DOMAIN)
        assert [x.name for x in service.list_segments(s)] == ["Example people", "Got summer"]
    with db.write() as s:
        service.update(s, made.id, SegmentUpdate(filter=received(gid, redeemed=False)))
        renamed = service.update(s, made.id, SegmentUpdate(name="Unredeemed summer"))
        assert renamed.updated_at >= renamed.created_at
    with db.read() as s:
        out = service.to_out(service.get(s, made.id))
        assert out.name == "Unredeemed summer"
        assert out.filter == parse_filter(received(gid, redeemed=False))
    with db.write() as s:
        mailings.delete_segment(s, made.id)
    with db.read() as s, pytest.raises(service.SegmentNotFound, match=f"segment {made.id} "):
        service.get(s, made.id)


def test_names_are_unique(db: Database) -> None:
    with db.write() as s:
        first = service.create(s, SegmentCreate(name="VIP", filter=BY_DOMAIN))
        other = service.create(s, SegmentCreate(name="Others", filter=BY_DOMAIN))
    with db.write() as s, pytest.raises(service.SegmentNameTaken, match="'VIP' already exists"):
        service.create(s, SegmentCreate(name=" VIP", filter=BY_DOMAIN))
    with db.write() as s, pytest.raises(service.SegmentNameTaken):
        service.update(s, other.id, SegmentUpdate(name="VIP"))
    with db.write() as s:  # renaming to its own name is no conflict
        assert service.update(s, first.id, SegmentUpdate(name="VIP")).name == "VIP"
    for bad in ({"name": "", "filter": BY_DOMAIN}, {"name": "x", "filter": {"type": "x"}}):
        with pytest.raises(ValidationError):
            SegmentCreate.model_validate(bad)
    with pytest.raises(ValidationError, match="cannot be removed"):
        SegmentUpdate.model_validate({"filter": None})


def test_unknown_and_archived_groups_are_named_by_path(db: Database) -> None:
    live = group_with_codes(db, "Live", ["L-1"])
    old = group_with_codes(db, "Old", ["O-1"])
    people(db, 1)
    issue(db, "p0", old, "m-1")
    with db.write() as s:
        assert groups.delete_group(s, old).outcome == "archived"
    tree = {
        "type": "and",
        "filters": [
            received(live),
            {"type": "not", "filter": received(old)},
            {
                "type": "or",
                "filters": [{"type": "issued_count", "op": "gte", "value": 1, "group_id": 999}],
            },
        ],
    }
    with db.write() as s, pytest.raises(ValidationFailed) as caught:
        service.create(s, SegmentCreate(name="Bad", filter=tree))
    assert caught.value.detail == (
        f"filters[1].filter.group_id: group {old} does not exist or is archived; "
        "filters[2].filters[0].group_id: group 999 does not exist or is archived"
    )
    with db.read() as s, pytest.raises(ValidationFailed, match=r"^group_id: group 999 "):
        service.preview(s, parse_filter(received(999)))
    # Saved before the group was archived, a segment still evaluates: history counts.
    with db.read() as s:
        assert service.count(s, parse_filter(received(old))) == 1


def test_preview_counts_and_samples_the_first_customers(db: Database) -> None:
    people(db, 7)
    with db.read() as s:
        result = service.preview(s, parse_filter(BY_DOMAIN), sample_size=2)
        assert result.count == 4
        assert [c.customer_id for c in result.sample] == ["p0", "p2"]
        assert service.preview(s, parse_filter(BY_DOMAIN), sample_size=0).sample == []
        assert [c.customer_id for c in service.sample(s, parse_filter(BY_DOMAIN), 10)] == [
            "p0",
            "p2",
            "p4",
            "p6",
        ]


def test_customers_page_walks_the_segment_once(db: Database) -> None:
    people(db, 9)
    with db.write() as s:
        segment = service.create(s, SegmentCreate(name="Example", filter=BY_DOMAIN))
    seen: list[str] = []
    cursor = None
    with db.read() as s:
        while True:
            page = service.segment_customers(s, segment.id, cursor=cursor, limit=2)
            seen += [c.customer_id for c in page.customers]
            cursor = page.next_cursor
            if cursor is None:
                break
        with pytest.raises(ValidationFailed, match="cursor"):
            service.customers_page(s, parse_filter(BY_DOMAIN), cursor="nope!", limit=2)
        with pytest.raises(ValidationFailed, match="limit"):
            service.customers_page(s, parse_filter(BY_DOMAIN), cursor=None, limit=0)
    assert seen == ["p0", "p2", "p4", "p6", "p8"]


def test_depth_limit_names_the_path() -> None:
    assert parse_filter(nested(MAX_DEPTH))
    with pytest.raises(ValidationFailed) as caught:
        parse_filter(nested(MAX_DEPTH + 1))
    path = ".".join(["filter"] * MAX_DEPTH)
    assert caught.value.detail == f"{path}: filters nest deeper than {MAX_DEPTH} levels"
    with pytest.raises(ValidationError, match="nest deeper than 10 levels"):
        SegmentCreate.model_validate({"name": "deep", "filter": nested(MAX_DEPTH + 1)})
    # Trees built in Python, skipping validation, meet the same limit.
    deep: Any = FieldFilter(type="field", field="email", op="exists")
    for _ in range(MAX_DEPTH):
        deep = Not(type="not", filter=deep)
    with pytest.raises(ValidationFailed, match="deeper than"):
        to_sql(deep, "sqlite")
    leaf = FieldFilter(type="field", field="email", op="exists")
    wide = And(type="and", filters=[leaf] * MAX_NODES)  # and the root: one too many
    with pytest.raises(ValidationFailed, match=rf"filters\[{MAX_NODES - 1}\]: a segment has at"):
        to_sql(wide, "postgresql")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"type": "nope"}, "filter: Input tag 'nope' found"),
        (
            {
                "type": "and",
                "filters": [BY_DOMAIN, {"type": "field", "field": "age", "op": "eq", "value": "1"}],
            },
            "filters[1].field: Input should be 'email', ",
        ),
        (
            {"type": "not", "filter": {"type": "issued_count", "op": "between", "value": [3, 1]}},
            "filter.value: must be [low, high] with low <= high",
        ),
        ({"type": "issued_count", "op": "gte", "value": 1.5}, "value: must be one whole number"),
        (
            {
                "type": "issued_count",
                "op": "gte",
                "value": 1,
                "issued_after": "2026-01-01T00:00:00",
            },
            "issued_after: Input should have timezone info",
        ),
        (
            {
                "type": "issued_count",
                "op": "gte",
                "value": 1,
                "issued_after": "2026-01-02T00:00:00Z",
                "issued_before": "2026-01-01T00:00:00Z",
            },
            "issued_before: must be later than issued_after",
        ),
        ({"type": "issued_from_group", "group_id": 0}, "group_id: Input should be greater than"),
        (
            {"type": "field", "field": "created_at", "op": "starts_with", "value": "2026"},
            "value: starts_with does not apply to created_at",
        ),
        ({"type": "field", "field": "email", "op": "eq", "value": 5}, "value: must be a string"),
        (
            {"type": "attribute", "name": "a", "op": "gt", "value": True},
            "value: must be a string or a number",
        ),
        (
            {"type": "attribute", "name": "a", "op": "contains", "value": ""},
            "value: must not be empty",
        ),
        (
            {"type": "attribute", "name": "a", "op": "in", "value": []},
            "value: must be a non-empty list",
        ),
        ({"type": "attribute", "name": 'a"b', "op": "exists"}, "name: must not contain quotes"),
        (
            {"type": "attribute", "name": "a", "op": "eq", "value": [1]},
            "value: must be a single value",
        ),
        ({"type": "attribute", "name": "a", "op": "eq", "value": "x", "x": 1}, "x: Extra inputs"),
    ],
)
def test_invalid_filters_name_the_path(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_filter(raw)
    assert caught.value.detail.startswith(message), caught.value.detail


def test_cli_preview(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMOCODES_DATABASE_URL", db.url)
    people(db, 5)
    file = tmp_path / "segment.json"
    file.write_text(json.dumps(BY_DOMAIN))
    result = CliRunner().invoke(app, ["segments", "preview", str(file), "--sample", "2"])
    assert result.exit_code == 0, result.output
    assert "3 customers match" in result.output
    assert "p0" in result.output and "p2" in result.output and "p4" not in result.output
    file.write_text(json.dumps(received(42)))
    failed = CliRunner().invoke(app, ["segments", "preview", str(file)])
    assert (
        failed.exit_code == 1
        and "group_id: group 42 does not exist or is archived" in failed.output
    )
    file.write_text("{not json")
    broken = CliRunner().invoke(app, ["segments", "preview", str(file)])
    assert broken.exit_code == 1 and "is not valid JSON" in broken.output
