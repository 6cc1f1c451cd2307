"""A pattern in the OpenAPI document means to a client what it means to the validator.

JSON Schema reads a pattern as ECMA-262, Pydantic with Rust's regex engine, and the two
disagree on ``\\s``: U+FEFF is whitespace to the first only, U+0085 (NEL) to the second
only. The test-send address, ``[^@\\s\\x00]``, so refused an address its schema allowed
(found by the contract run: a 422 to a schema-valid request) and took one it forbade.
Spelled out, the characters mean the same to both (and to Python's ``re``).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from promocodes.app import create_app
from promocodes.config import Settings
from promocodes.messaging import schemas

# ``\s``, ``\d``, ``\w``, ``\b`` and their negations, not after an escaped backslash.
SHORTHAND = re.compile(r"(?<!\\)(?:\\\\)*\\[sSdDwWbB]")
# Whitespace to ECMA-262 or to Rust's regex (the union), between two parts of an address.
WHITESPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    document: dict[str, Any] = create_app(Settings(database_url="sqlite://")).openapi()
    return document


def _address_pattern(doc: dict[str, Any]) -> str:
    pattern: str = doc["components"]["schemas"]["TestSendIn"]["properties"]["email"]["pattern"]
    return pattern


def _patterns(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        return found + [p for value in node.values() for p in _patterns(value)]
    if isinstance(node, list):
        return [p for value in node for p in _patterns(value)]
    return []


def test_no_pattern_uses_a_class_the_engines_read_differently(doc: dict[str, Any]) -> None:
    patterns = _patterns(doc)
    assert len(patterns) > 20
    assert [p for p in patterns if SHORTHAND.search(p)] == []


@pytest.mark.parametrize("space", list(WHITESPACE), ids=lambda c: f"U+{ord(c):04X}")
def test_a_test_send_address_with_whitespace_is_refused_by_schema_and_validator(
    doc: dict[str, Any], space: str
) -> None:
    address = f"ann{space}lee@example.com"
    # Escapes and ranges only: Python's re reads the pattern as ECMA-262 does.
    assert re.search(_address_pattern(doc), address) is None
    with pytest.raises(ValidationError):
        schemas.TestSendIn.model_validate({"email": address})
    assert schemas.TestSendIn.model_validate({"email": "ann.lee@example.com"}).email


def test_an_address_of_any_other_characters_is_allowed_by_both(doc: dict[str, Any]) -> None:
    address = "\x1cann\u00e9\U0001f600@ex\u0101mple.com"
    assert re.search(_address_pattern(doc), address) is not None
    assert schemas.TestSendIn.model_validate({"email": address}).email == address
