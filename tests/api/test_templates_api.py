"""Templates through the API, as a marketer and an integrator meet them: what is refused
when saved, what fails for a customer (a 422 problem with the reason, the field and the
line, never a 5xx), what missing data gives (nothing, as in Liquid), and every construct
a macro can sit in (one code per group per message, wherever it is evaluated)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from promocodes.db import Database
from tests.api.conftest import client_for
from tests.factories import group_with_codes

CODE = "PREVIEW-AUTUMN-15-B84B"  # a new code from 'Autumn 15%' in a preview
LAST = "PREVIEW-AUTUMN-15-LAST"  # the code a customer holds from it
FULL = {
    "first_name": "Ann",
    "phone": "+49 30 1234567",
    "attributes": {
        "city": "Berlin",
        "vip": True,
        "age": 40,
        "n": 5,
        "address": {"city": "Paris"},
        "tags": ["a", "b"],
    },
}
BARE: dict[str, object] = {}  # no name, no phone, no attributes


@dataclass(frozen=True)
class Case:
    template: str
    full: str | tuple[str, int]  # the output for Ann, or (reason, line) of the failure
    bare: str | tuple[str, int] | None = None  # for a customer lacking everything (None: same)


M = "{{ client.promocode('Autumn 15%') }}"
LAST_M = "{{ client.last_promocode('Autumn 15%') }}"
CASES = {
    # --- missing data renders empty ------------------------------------------------------
    "attribute": Case("{{ client.attributes.city }}", "Berlin", ""),
    "nested attribute": Case("{{ client.attributes.address.city }}", "Paris", ""),
    "item syntax": Case("{{ client.attributes['city'] }}", "Berlin", ""),
    "branch on a flag": Case(
        "{% if client.attributes.vip %}VIP{% else %}regular{% endif %}", "VIP", "regular"
    ),
    "comparison": Case("{% if client.attributes.age > 18 %}adult{% endif %}", "adult", ""),
    "default on a null field": Case("{{ client.first_name | default('friend') }}", "Ann", "friend"),
    "default on a missing attribute": Case("{{ client.attributes.zip | default('-') }}", "-"),
    "null field": Case("[{{ client.phone }}]", "[+49 30 1234567]", "[]"),
    "filter on missing": Case("[{{ client.attributes.city | upper }}]", "[BERLIN]", "[]"),
    "concatenated": Case("{{ client.attributes.city ~ '!' }}", "Berlin!", "!"),
    "loop over missing": Case(
        "{% for t in client.attributes.tags %}{{ t }},{% endfor %}", "a,b,", ""
    ),
    "length of missing": Case("{{ client.attributes.tags | length }}", "2", "0"),
    "number with default": Case("{{ client.attributes.n | default(0) + 1 }}", "6", "1"),
    "unknown field renders empty": Case("[{{ client.frist_name }}]", "[]"),
    # --- the macros in every construct ---------------------------------------------------
    "twice": Case(f"{M} {M}", f"{CODE} {CODE}"),
    "for loop": Case(f"{{% for i in range(3) %}}{M};{{% endfor %}}", f"{CODE};" * 3),
    "nested loops": Case(
        f"{{% for i in range(2) %}}{{% for j in range(2) %}}{M}{{% endfor %}}{{% endfor %}}",
        CODE * 4,
    ),
    "loop variables": Case(
        f"{{% for i in range(2) %}}{{{{ loop.index }}}}:{M} {{% endfor %}}", f"1:{CODE} 2:{CODE} "
    ),
    "macro": Case(
        f"{{% macro code() %}}{M}{{% endmacro %}}{{{{ code() }}}}/{{{{ code() }}}}",
        f"{CODE}/{CODE}",
    ),
    "macro with a loop": Case(
        f"{{% macro codes(n) %}}{{% for i in range(n) %}}{M}{{% endfor %}}{{% endmacro %}}"
        "{{ codes(2) }}",
        CODE * 2,
    ),
    "call block": Case(
        "{% macro box() %}[{{ caller() }}]{% endmacro %}"
        f"{{% call box() %}}{M}{{% endcall %}}",
        f"[{CODE}]",
    ),
    "set": Case("{% set c = client.promocode('Autumn 15%') %}{{ c }}={{ c }}", f"{CODE}={CODE}"),
    "set block": Case(f"{{% set b %}}{M}{{% endset %}}{{{{ b }}}}", CODE),
    "block": Case(f"{{% block offer %}}{M}{{% endblock %}}", CODE),
    "with": Case("{% with c = client.promocode('Autumn 15%') %}{{ c }}{% endwith %}", CODE),
    "filter": Case("{{ client.promocode('Autumn 15%') | lower }}", CODE.lower()),
    "filter block": Case(f"{{% filter lower %}}{M}{{% endfilter %}}", CODE.lower()),
    "in a condition": Case(f"{{% if client.attributes.vip %}}{M}{{% endif %}}", CODE, ""),
    # --- last_promocode ------------------------------------------------------------------
    "last": Case(LAST_M, LAST, ""),
    "last with default": Case(
        "{{ client.last_promocode('Autumn 15%') | default('none') }}", LAST, "none"
    ),
    "last after new": Case(f"{M} {LAST_M}", f"{CODE} {CODE}"),
    "last before new": Case(f"{LAST_M} {M}", f"{LAST} {CODE}", f" {CODE}"),
    "reminder or new": Case(
        f"{{% if client.last_promocode('Autumn 15%') %}}again {LAST_M}{{% else %}}new {M}"
        "{% endif %}",
        f"again {LAST}",
        f"new {CODE}",
    ),
    "last in a loop after new": Case(
        f"{M}{{% for i in range(2) %}} {LAST_M}{{% endfor %}}", f"{CODE} {CODE} {CODE}"
    ),
    # --- failing for a customer: 422, with the reason and the line -------------------------
    "division by zero": Case("{{ 1/0 }}", ("template-error", 1)),
    "on line 3": Case("Hi\n{{ client.first_name }}\n{{ 1/0 }}", ("template-error", 3)),
    "arithmetic on missing": Case("{{ client.attributes.n + 1 }}", "6", ("template-error", 1)),
    "python internals": Case("{{ client.__class__ }}", ("security", 1)),
    "string internals": Case("{{ ''.__class__.__mro__ }}", ("security", 1)),
    "huge string": Case("{{ 'x' * 2000000 }}", ("template-limit", 1)),
    "huge range": Case("{% for i in range(100000) %}{% endfor %}", ("template-limit", 1)),
    "many big strings": Case(
        "{% set l = [" + ", ".join(["'a' * 999999"] * 12) + "] %}{{ l | length }}",
        ("template-limit", 1),
    ),
    "split into many": Case("{{ ('a ' * 400000).split() | length }}", ("template-limit", 1)),
    "runaway recursion": Case(
        "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", ("template-limit", 1)
    ),
    "syntax error": Case("Hi\n{{ client.first_name", ("template-error", 2)),
    "include": Case("{% include 'x' %}", ("template-error", 1)),
}


@pytest.fixture
def api(db: Database) -> TestClient:
    group_with_codes(db, "Autumn 15%", [f"AUT{i}" for i in range(20)])
    client = client_for(db)
    client.__enter__()
    assert client.put("/api/v1/customers/ann", json=FULL).status_code in (200, 201)
    assert client.put("/api/v1/customers/bare", json=BARE).status_code in (200, 201)
    gid = client.get("/api/v1/groups").json()["items"][0]["id"]
    issued = client.post(f"/api/v1/groups/{gid}/issue", json={"customer_id": "ann"})
    assert issued.status_code == 200, issued.text
    return client


def test_the_table_holds_at_least_40_templates() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", list(CASES))
def test_template_through_the_api(api: TestClient, name: str) -> None:
    case = CASES[name]
    for customer, expected in (
        ("ann", case.full),
        ("bare", case.full if case.bare is None else case.bare),
    ):
        answer = api.post(
            "/api/v1/templates/preview",
            json={"subject": "Hi", "body_text": case.template, "customer_id": customer},
        )
        assert answer.status_code < 500, answer.text
        if isinstance(expected, str):
            assert answer.status_code == 200, (customer, answer.text)
            assert answer.json()["body_text"] == expected, customer
        else:
            reason, line = expected
            assert answer.status_code == 422, (customer, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")
            problem = answer.json()
            assert problem["type"] == reason, (customer, problem)
            (error,) = problem["errors"]
            assert (error["field"], error["line"], error["reason"]) == ("body_text", line, reason)
            assert f"body_text line {line}" in problem["detail"]


REFUSED = {
    "{{ client.frist_name }}": "unknown customer field 'frist_name'; did you mean 'first_name'?",
    "{{ client.promocode('Autum 15%') }}": (
        "unknown promo code group 'Autum 15%'; did you mean 'Autumn 15%'?"
    ),
    "{{ client.__class__ }}": "'__class__': names starting with _ are not available",
    "{{ client.promocode(group) }}": "the group name must be a literal in single quotes",
}


@pytest.mark.parametrize("template", list(REFUSED))
def test_names_that_cannot_exist_are_refused_when_saved(api: TestClient, template: str) -> None:
    checked = api.post("/api/v1/templates/validate", json={"body_text": template}).json()
    assert checked["valid"] is False
    assert any(REFUSED[template] in e["message"] for e in checked["errors"]), checked
    assert checked["errors"][0]["line"] == 1


def test_preview_notes_say_what_is_a_placeholder_and_why_a_macro_is_empty(api: TestClient) -> None:
    body = f"{M} {LAST_M}"
    sample = api.post("/api/v1/templates/preview", json={"body_text": LAST_M}).json()
    assert sample["body_text"] == LAST
    assert any("sample customer" in n for n in sample["notes"])
    bare = api.post(
        "/api/v1/templates/preview", json={"body_text": LAST_M, "customer_id": "bare"}
    ).json()
    assert bare["body_text"] == ""
    assert any("has no code from 'Autumn 15%' yet" in n for n in bare["notes"])
    ann = api.post("/api/v1/templates/preview", json={"body_text": body, "customer_id": "ann"})
    assert any(CODE in n for n in ann.json()["notes"])
