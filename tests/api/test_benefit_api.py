"""A group's benefit on both backends: every field checked on its own, set and cleared
through the API, printed by ``client.benefit('G')`` in a mailing without taking a code,
and a template naming an unknown group refused with a did-you-mean."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from promocodes.codes.benefit import Benefit, public_text
from promocodes.db import Database
from promocodes.errors import ValidationFailed
from promocodes.messaging.rendering import MessageTemplate
from promocodes.messaging.templates import require_valid
from tests.api.test_groups_api import _problem
from tests.factories import counts, group_with_codes, make_group
from tests.messaging.test_mailings import EVERYONE, bodies, mailing, people, segment, send_and_work


@pytest.mark.parametrize(
    ("benefit", "field", "words"),
    [
        ({"type": "cashback"}, "benefit.type", "Input should be"),
        ({}, "benefit.type", "Field required"),
        ({"type": "percent"}, "benefit.value", "needs a value"),
        ({"type": "percent", "value": 0}, "benefit.value", "greater than 0"),
        ({"type": "percent", "value": -5}, "benefit.value", "greater than 0"),
        ({"type": "percent", "value": 101}, "benefit.value", "at most 100"),
        ({"type": "percent", "value": "ten"}, "benefit.value", "decimal"),
        ({"type": "amount", "value": 5.001, "currency": "EUR"}, "benefit.value", "decimal"),
        ({"type": "amount", "value": 1e12, "currency": "EUR"}, "benefit.value", "digits"),
        ({"type": "amount", "value": "NaN", "currency": "EUR"}, "benefit.value", ""),
        ({"type": "gift", "value": 5}, "benefit.value", "has no value"),
        ({"type": "amount", "value": 5}, "benefit.currency", "needs a currency"),
        ({"type": "amount", "value": 5, "currency": "EURO"}, "benefit.currency", "three"),
        ({"type": "amount", "value": 5, "currency": "E1R"}, "benefit.currency", "three"),
        ({"type": "amount", "value": 5, "currency": 978}, "benefit.currency", ""),
        ({"type": "percent", "value": 5, "currency": "EUR"}, "benefit.currency", "only an amount"),
        ({"type": "other"}, "benefit.text", "needs a text"),
        ({"type": "gift", "text": "x" * 201}, "benefit.text", "at most 200"),
        ({"type": "gift", "text": "two\nlines"}, "benefit.text", "one line"),
        ({"type": "gift", "text": "nul\x00"}, "benefit.text", "NUL"),
        ({"type": "gift", "colour": "red"}, "benefit.colour", "Extra inputs"),
        ("10%", "benefit", "valid dictionary"),
    ],
)
def test_every_benefit_field_is_checked_on_its_own(
    api: TestClient, db: Database, benefit: Any, field: str, words: str
) -> None:
    r = api.post("/api/v1/groups", json={"name": "B", "benefit": benefit})
    problem = _problem(r, 422, "validation-error")
    assert any(e["field"] == field and words in e["message"] for e in problem["errors"]), problem
    assert api.get("/api/v1/groups").json()["items"] == []


@pytest.mark.parametrize(
    ("limit", "action", "field"),
    [
        (0, "repeat", "customer_limit"),
        (-1, "repeat", "customer_limit"),
        (2**31, "repeat", "customer_limit"),
        ("many", "repeat", "customer_limit"),
        (2, "refuse", "limit_action"),
        (2, None, "limit_action"),
    ],
)
def test_limit_fields_are_checked(
    api: TestClient, db: Database, limit: object, action: object, field: str
) -> None:
    r = api.post(
        "/api/v1/groups", json={"name": "L", "customer_limit": limit, "limit_action": action}
    )
    problem = _problem(r, 422, "validation-error")
    assert any(e["field"] == field for e in problem["errors"]), problem


def test_benefit_set_changed_and_cleared(api: TestClient, db: Database) -> None:
    r = api.post(
        "/api/v1/groups",
        json={"name": "B", "benefit": {"type": "amount", "value": "7.50", "currency": "eur"}},
    )
    assert r.status_code == 201, r.text
    gid = r.json()["id"]
    assert r.json()["benefit"] == {"type": "amount", "value": 7.5, "currency": "EUR", "text": None}
    other = api.patch(f"/api/v1/groups/{gid}", json={"description": "kept"}).json()
    assert other["benefit"]["value"] == 7.5  # fields left out keep their value
    changed = api.patch(f"/api/v1/groups/{gid}", json={"benefit": {"type": "free_shipping"}})
    assert changed.json()["benefit"] == {
        "type": "free_shipping",
        "value": None,
        "currency": None,
        "text": None,
    }
    assert api.patch(f"/api/v1/groups/{gid}", json={"benefit": None}).json()["benefit"] is None


@pytest.mark.parametrize(
    ("benefit", "text"),
    [
        (None, ""),
        (Benefit(type="percent", value=15), "15% off"),
        (Benefit(type="percent", value="12.50"), "12.5% off"),
        (Benefit(type="amount", value=5, currency="usd"), "5 USD off"),
        (Benefit(type="amount", value="4.99", currency="EUR"), "4.99 EUR off"),
        (Benefit(type="free_shipping"), "Free shipping"),
        (Benefit(type="gift"), "A gift"),
        (Benefit(type="gift", text=" A tote bag "), "A tote bag"),
        (Benefit(type="other", text="Double points"), "Double points"),
    ],
)
def test_public_text_defaults_from_type_and_value(benefit: Benefit | None, text: str) -> None:
    assert public_text(benefit) == text


def test_a_mailing_prints_the_benefit_and_takes_no_code_for_it(db: Database) -> None:
    gid = group_with_codes(db, "Autumn 15%", [f"A{i}" for i in range(10)])
    with db.write() as s:
        make_group(s, "Shipping", benefit=Benefit(type="free_shipping"))
    people(db, 3)
    everyone = segment(db, "All", EVERYONE)
    body = "{{ client.benefit('autumn 15%') }}|{{ client.benefit('Shipping') }}"
    m = mailing(db, everyone, body)
    send_and_work(db, m)
    sent = bodies(db, m)
    assert {msg.body_text for msg in sent.values()} == {"|Free shipping"}
    assert counts(db, gid).active == 10  # no code was taken
    from promocodes.codes import service
    from promocodes.codes.schemas import GroupUpdate

    with db.write() as s:
        service.update_group(s, gid, GroupUpdate(benefit=Benefit(type="percent", value=15)))
    m2 = mailing(
        db,
        everyone,
        "{{ client.benefit('Autumn 15%') }}: {{ client.promocode('Autumn 15%') }}",
        name="M2",
    )
    send_and_work(db, m2)
    texts = [msg.body_text or "" for msg in bodies(db, m2).values()]
    assert len(texts) == 3 and all(t.startswith("15% off: A") for t in texts)
    assert counts(db, gid).active == 7


def test_an_unknown_group_in_benefit_is_refused_at_save(db: Database) -> None:
    group_with_codes(db, "Autumn 15%", ["X1"])
    with db.read() as s, pytest.raises(ValidationFailed) as caught:
        require_valid(s, MessageTemplate("", "{{ client.benefit('Autum 15%') }}"))
    assert "unknown promo code group 'Autum 15%'" in caught.value.detail
    assert "Autumn 15%" in caught.value.detail  # did you mean
    with db.read() as s, pytest.raises(ValidationFailed) as literal:
        require_valid(s, MessageTemplate("", "{{ client.benefit(client.first_name) }}"))
    assert "literal" in literal.value.detail
    with db.read() as s, pytest.raises(ValidationFailed) as curly:
        require_valid(s, MessageTemplate("", "{{ client.benefit(‘Autumn 15%’) }}"))
    assert "straight single quotes" in curly.value.detail
