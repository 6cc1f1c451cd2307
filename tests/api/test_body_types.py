"""HTTP: a JSON body's field has the type its schema says, or the body is refused (422).

Pydantic alone converted what the schema refuses: a number (``0``, ``1.5e9``) or a
string of digits as seconds since 1970 for a ``date-time``, ``true`` or ``"5"`` for an
integer, ``"yes"`` or ``0`` for a boolean. So a group valid from 1970, a mailing
scheduled for 2017 or a campaign switched off by ``"no"`` was stored from a body the
schema refuses (found by the contract run's negative-data check). And the other way
round: text refused for a NUL character must say so in the schema (a pattern), or a
schema-valid body is refused.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.test_groups_api import _problem

NOT_TIMES: list[Any] = [0, 1_700_000_000, 1.5e9, "1700000000", True]
NOT_INTEGERS: list[Any] = [True, False, "5", "1", [5]]
NOT_BOOLEANS: list[Any] = ["true", "yes", "no", 1, 0, "1"]


def _refused(response: Any, field: str) -> None:
    body = _problem(response, 422, "validation-error")
    assert [e["field"] for e in body["errors"]] == [field], body


def _segment(api: TestClient) -> int:
    seg = api.post(
        "/api/v1/segments",
        json={"name": "All", "filter": {"type": "field", "field": "email", "op": "exists"}},
    )
    assert seg.status_code == 201, seg.text
    return int(seg.json()["id"])


@pytest.mark.parametrize("field", ["valid_from", "valid_until"])
def test_a_group_time_must_be_a_string(api: TestClient, field: str) -> None:
    gid = api.post("/api/v1/groups", json={"name": "Kept"}).json()["id"]
    for value in NOT_TIMES:
        _refused(api.post("/api/v1/groups", json={"name": "New", field: value}), field)
        _refused(api.patch(f"/api/v1/groups/{gid}", json={field: value}), field)
    assert [g["name"] for g in api.get("/api/v1/groups").json()["items"]] == ["Kept"]
    assert api.get(f"/api/v1/groups/{gid}").json()[field] is None
    good = api.patch(f"/api/v1/groups/{gid}", json={field: "2030-01-31T12:00:00Z"})
    assert good.status_code == 200 and good.json()[field] == "2030-01-31T12:00:00Z", good.text


def test_a_mailing_send_at_must_be_a_string(api: TestClient) -> None:
    draft = {"name": "M", "segment_id": _segment(api), "body_text": "Hi"}
    mid = api.post("/api/v1/mailings", json=draft).json()["id"]
    for value in NOT_TIMES:
        _refused(api.post("/api/v1/mailings", json={**draft, "send_at": value}), "send_at")
        _refused(api.patch(f"/api/v1/mailings/{mid}", json={"send_at": value}), "send_at")
    assert api.get(f"/api/v1/mailings/{mid}").json()["send_at"] is None
    good = api.patch(f"/api/v1/mailings/{mid}", json={"send_at": "2030-01-31T12:00:00Z"})
    assert good.status_code == 200 and good.json()["send_at"] == "2030-01-31T12:00:00Z", good.text


def test_integers_must_be_integers(api: TestClient) -> None:
    gid = api.post("/api/v1/groups", json={"name": "Kept"}).json()["id"]
    refill = {"refill_pattern": "R####", "refill_below": 3, "refill_count": 5}
    for value in NOT_INTEGERS:
        for field in ("customer_limit", "low_stock_threshold", "refill_below", "refill_count"):
            body = {**refill, field: value}
            _refused(api.post("/api/v1/groups", json={"name": "New", **body}), field)
            _refused(api.patch(f"/api/v1/groups/{gid}", json=body), field)
        gen = api.post(f"/api/v1/groups/{gid}/generate", json={"pattern": "X####", "count": value})
        _refused(gen, "count")
    seg = _segment(api)
    draft = {"name": "M", "segment_id": seg, "body_text": "Hi"}
    mid = api.post("/api/v1/mailings", json=draft).json()["id"]
    for value in NOT_INTEGERS:
        for field in ("segment_id", "chunk_size"):
            _refused(api.post("/api/v1/mailings", json={**draft, field: value}), field)
        _refused(api.patch(f"/api/v1/mailings/{mid}", json={"segment_id": value}), "segment_id")
    group = api.get(f"/api/v1/groups/{gid}").json()
    assert [group["customer_limit"], group["low_stock_threshold"], group["total"]] == [
        None,
        None,
        0,
    ]
    assert [m["id"] for m in api.get("/api/v1/mailings").json()] == [mid]


def test_flags_must_be_booleans(api: TestClient) -> None:
    made = api.post("/api/v1/campaigns", json={"name": "C", "event": "signup", "body_text": "Hi"})
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    new = {"name": "D", "event": "signup", "body_text": "Hi"}
    mid = api.post(
        "/api/v1/mailings", json={"name": "M", "segment_id": _segment(api), "body_text": "Hi"}
    ).json()["id"]
    for value in NOT_BOOLEANS:
        for field in ("active", "creates_customers"):
            _refused(api.post("/api/v1/campaigns", json={**new, field: value}), field)
            _refused(api.patch(f"/api/v1/campaigns/{cid}", json={field: value}), field)
        sent = api.post(f"/api/v1/mailings/{mid}/send", json={"allow_partial": value})
        _refused(sent, "allow_partial")
    kept = api.get(f"/api/v1/campaigns/{cid}").json()
    assert (kept["active"], kept["creates_customers"]) == (True, False)
    assert api.get(f"/api/v1/mailings/{mid}").json()["status"] == "draft"


def _nul_allowed(schema: dict[str, Any], defs: dict[str, Any], seen: frozenset[str]) -> list[str]:
    """Free-text strings (no format, no enum) inside ``schema`` whose pattern does not
    keep NUL out."""
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        return [] if name in seen else _nul_allowed(defs[name], defs, seen | {name})
    found: list[str] = []
    for key in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(key, []):
            found += _nul_allowed(part, defs, seen)
    free = "enum" not in schema and "const" not in schema and "format" not in schema
    if schema.get("type") == "string" and free:
        # A pattern of the field's own (an email's) must keep NUL out too: it names it.
        pattern = schema.get("pattern", "")
        if "\\x00" not in pattern or re.search(pattern, "a\x00b"):
            found.append(schema.get("title", "?"))
    for name, prop in schema.get("properties", {}).items():
        found += [f"{name}.{x}" for x in _nul_allowed(prop, defs, seen)]
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            found += _nul_allowed(schema[key], defs, seen)
    return found


def test_body_text_that_refuses_nul_says_so_in_the_schema(api: TestClient) -> None:
    """Every JSON body's free text states NO_NUL_PATTERN (its validator refuses NUL),
    except in the operations schemathesis.toml lets answer 422 to schema-valid bodies."""
    config = tomllib.loads(Path(__file__).with_name("schemathesis.toml").read_text())
    listed = [re.compile(op["include-name-regex"]) for op in config["operations"]]
    spec = api.get("/openapi.json").json()
    defs = spec["components"]["schemas"]
    silent: dict[str, list[str]] = {}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            name = f"{method.upper()} {path}"
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is None or any(r.search(name) for r in listed):
                continue
            if found := _nul_allowed(body["schema"], defs, frozenset()):
                silent[name] = found
    assert silent == {}
    refused = api.post("/api/v1/codes/NONE/redeem", json={"order_id": "a\x00b"})
    _refused(refused, "order_id")


def test_a_path_id_states_its_range_in_the_schema(api: TestClient) -> None:
    """An id's range is the schema's ``minimum`` and ``maximum``: with the digits check
    placed before it, the range came out as unknown ``ge``/``le`` keys, so id 0 was
    schema-valid and its 422 failed the contract."""
    spec = api.get("/openapi.json").json()
    ids = [
        (f"{method.upper()} {path}", p["schema"])
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        for p in operation.get("parameters", [])
        if p["in"] == "path" and p["schema"].get("type") == "integer"
    ]
    assert len(ids) > 20
    wrong = [name for name, s in ids if (s.get("minimum"), s.get("maximum")) != (1, 2_147_483_647)]
    assert wrong == []
    assert [name for name, s in ids if {"ge", "le"} & set(s)] == []
    _problem(api.get("/api/v1/groups/0"), 422, "validation-error")
    _problem(api.get("/api/v1/groups/1_0"), 422, "validation-error")
