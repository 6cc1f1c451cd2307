"""The OpenAPI links (``promocodes/apilinks.py``): what an answer creates or issues leads to
the operations on it. Checked in the document itself, without a server: each link names
an operation that exists, fills a path parameter that operation has, from a field its
answer has; every operation on a created thing is the target of a link from where the
thing is created (a route added on a group without its link fails here); and
schemathesis, which follows the links in the contract run, accepts them all."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import schemathesis

from promocodes.app import create_app
from promocodes.config import Settings

Doc = dict[str, Any]

# Each path parameter, and the operations whose answer creates its value.
CREATED_BY = {
    "group_id": ["POST /api/v1/groups"],
    "segment_id": ["POST /api/v1/segments"],
    "mailing_id": ["POST /api/v1/mailings"],
    "campaign_id": ["POST /api/v1/campaigns"],
    "code": ["POST /api/v1/groups/{group_id}/issue"],
    "upload_id": [
        "POST /api/v1/groups/{group_id}/codes",
        "POST /api/v1/groups/{group_id}/generate",
    ],
}


@pytest.fixture(scope="module")
def doc() -> Doc:
    document: Doc = create_app(Settings(database_url="sqlite://")).openapi()
    return document


def _operations(doc: Doc) -> dict[str, dict[str, Any]]:
    """Every operation by its label, ``METHOD /path``."""
    return {
        f"{method.upper()} {path}": op
        for path, item in doc["paths"].items()
        for method, op in item.items()
    }


def _path_parameters(op: dict[str, Any]) -> set[str]:
    return {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}


def _has_field(doc: Doc, schema: dict[str, Any], field: str) -> bool:
    """Whether an answer of ``schema`` can carry ``field`` (``$ref`` and ``anyOf`` followed)."""
    if "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    branches = schema.get("anyOf", [schema])
    return any(
        field in b.get("properties", {}) or ("anyOf" in b and _has_field(doc, b, field))
        for b in branches
    )


def _json_body(op: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = (
        op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    )
    return schema


def link_problems(doc: Doc) -> list[str]:
    """What is wrong with the document's links: each named as ``source [status] name``."""
    operations = _operations(doc)
    by_id = {op["operationId"]: op for op in operations.values()}
    problems = []
    for label, op in operations.items():
        for status, response in op.get("responses", {}).items():
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            for name, link in response.get("links", {}).items():
                where = f"{label} [{status}] {name}"
                target = by_id.get(link.get("operationId"))
                if target is None:
                    problems.append(f"{where}: no operation {link.get('operationId')!r}")
                    continue
                given = link.get("parameters", {})
                if missing := _path_parameters(target) - set(given):
                    problems.append(f"{where}: leaves path parameters {sorted(missing)} unset")
                for parameter in given:
                    if parameter not in _path_parameters(target):
                        problems.append(f"{where}: no path parameter {parameter!r} there")
                body = link.get("requestBody", {})
                for parameter in body:
                    if not _has_field(doc, _json_body(target), parameter):
                        problems.append(f"{where}: no body field {parameter!r} there")
                for expression in [*given.values(), *body.values()]:
                    field = expression.removeprefix("$response.body#/")
                    if field == expression or not _has_field(doc, schema, field):
                        problems.append(f"{where}: the answer has no {expression!r}")
    return problems


def test_every_link_names_an_operation_with_its_parameter(doc: Doc) -> None:
    assert sum(len(r.get("links", {})) for r in _responses(doc)) >= 40
    assert link_problems(doc) == []


def test_every_operation_on_a_created_thing_is_linked_from_its_creation(doc: Doc) -> None:
    operations = _operations(doc)
    unlinked = []
    for parameter, creators in CREATED_BY.items():
        for creator in creators:
            linked = {
                link["operationId"]
                for status, response in operations[creator]["responses"].items()
                if status.startswith("2")
                for link in response.get("links", {}).values()
                if parameter in link.get("parameters", {})
            }
            unlinked += [
                f"{creator} -> {label}"
                for label, op in operations.items()
                if parameter in _path_parameters(op) and op["operationId"] not in linked
            ]
    assert unlinked == []


def test_a_link_to_a_missing_operation_or_parameter_is_a_problem(doc: Doc) -> None:
    """The check above can fail: a route renamed (its operationId changes), or its
    parameter or body field renamed, under an unchanged link."""
    broken = copy.deepcopy(doc)
    group = broken["paths"]["/api/v1/groups/{group_id}"]
    group["get"]["operationId"] = "show_group_api_v1_groups__group_id__get"
    for p in group["patch"]["parameters"]:
        if p["name"] == "group_id":
            p["name"] = "id"
    del broken["components"]["schemas"]["MailingCreate"]["properties"]["segment_id"]
    source = "POST /api/v1/groups [201]"
    assert link_problems(broken) == [
        f"{source} get_group_api_v1_groups__group_id__get: "
        "no operation 'get_group_api_v1_groups__group_id__get'",
        f"{source} update_group_api_v1_groups__group_id__patch: "
        "leaves path parameters ['id'] unset",
        f"{source} update_group_api_v1_groups__group_id__patch: no path parameter 'group_id' there",
        "POST /api/v1/segments [201] create_mailing_api_v1_mailings_post: "
        "no body field 'segment_id' there",
    ]


def test_schemathesis_accepts_every_link(doc: Doc) -> None:
    """The contract run's tool builds its state machine from them; a link it cannot use
    would stop the stateful phase with an error."""
    schema = schemathesis.openapi.from_dict(copy.deepcopy(doc))  # it adds links of its own
    schema.as_state_machine()  # raises on an invalid link
    declared = sum(len(r.get("links", {})) for r in _responses(doc))
    assert schema.statistic.transitions.total >= declared


def _responses(doc: Doc) -> list[dict[str, Any]]:
    return [r for op in _operations(doc).values() for r in op.get("responses", {}).values()]
