"""Text the databases can store: no NUL characters (PostgreSQL refuses them) and no lone
surrogates (not encodable as UTF-8). Every free-text input goes through ``Text``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator


def check_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (it has a lone surrogate)") from None
    return value


def check_json(value: Any) -> Any:
    """The same rule for every string (keys included) inside a JSON value."""
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(str(key))
            check_json(item)
    elif isinstance(value, list):
        for item in value:
            check_json(item)
    return value


Text = Annotated[str, AfterValidator(check_text)]
# For path parameters and headers, where a validator cannot run: the same rule as a pattern.
NO_NUL_PATTERN = r"^[^\x00]*$"
