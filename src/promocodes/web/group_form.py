"""A group's form in the web UI: its fields as text, to the schema's types and back, and
the schema's and the service's refusals by the field they are about."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from promocodes.codes.benefit import Benefit
from promocodes.codes.schemas import REFILL_FIELDS, GroupOut
from promocodes.errors import DomainError, GroupNameTaken, ValidationFailed
from promocodes.web import formats, kit

FIELDS = (
    "name",
    "description",
    "valid_from",
    "valid_until",
    "low_stock_threshold",
    "redeem_unissued",
    *REFILL_FIELDS,
    "benefit_type",
    "benefit_value",
    "benefit_currency",
    "benefit_text",
    "customer_limit",
    "limit_action",
)
# The form fields of the group's benefit, which the schema takes as one object.
BENEFIT_FIELDS = ("benefit_type", "benefit_value", "benefit_currency", "benefit_text")


def values_of(form: FormData) -> dict[str, str]:
    return {name: kit.field(form, name) for name in FIELDS}


def data_of(values: Mapping[str, str], errors: dict[str, str]) -> dict[str, Any]:
    """Form text to the schema's types; problems go to ``errors`` by field."""
    data: dict[str, Any] = {"name": values["name"]}
    data["description"] = values["description"].strip() or None
    for name in ("valid_from", "valid_until"):
        try:
            data[name] = kit.parse_datetime(values[name])
        except ValueError as exc:
            errors[name] = str(exc)
    try:
        data["low_stock_threshold"] = kit.parse_int(values["low_stock_threshold"])
    except ValueError as exc:
        errors["low_stock_threshold"] = str(exc)
    data["redeem_unissued"] = values["redeem_unissued"] == "1"  # an unticked box is absent
    data["refill_pattern"] = values["refill_pattern"].strip() or None
    for name in ("refill_below", "refill_count"):
        try:
            data[name] = kit.parse_int(values[name])
        except ValueError as exc:
            errors[name] = str(exc)
    try:
        data["customer_limit"] = kit.parse_int(values["customer_limit"])
    except ValueError as exc:
        errors["customer_limit"] = str(exc)
    data["limit_action"] = values["limit_action"] or "repeat"
    data["benefit"] = _benefit(values)
    return data


def _benefit(values: Mapping[str, str]) -> dict[str, str | None] | None:
    """The benefit fields as the schema takes them (it checks them); None without a type.
    Each field keeps its own name in the errors (``_errors``)."""
    if not values["benefit_type"].strip():
        return None
    return {name.removeprefix("benefit_"): values[name].strip() or None for name in BENEFIT_FIELDS}


def form_errors(exc: ValidationError) -> dict[str, str]:
    """The schema's errors in words (``kit.errors_of``), the benefit's by their own boxes."""
    found = kit.errors_of(exc, FIELDS)
    found.update({k: v for k, v in _errors(exc).items() if k.startswith("benefit_")})
    return found


def _errors(exc: ValidationError) -> dict[str, str]:
    """The schema's errors by form field: ``benefit.value`` is the ``benefit_value`` box."""
    out: dict[str, str] = {}
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        name = "_".join(loc[:2]) if loc[:1] == ["benefit"] and len(loc) > 1 else "".join(loc[:1])
        out.setdefault(name, err["msg"].removeprefix("Value error, "))
    return out


def domain_errors(exc: DomainError, errors: dict[str, str]) -> None:
    if isinstance(exc, GroupNameTaken):
        errors["name"] = exc.detail
    elif isinstance(exc, ValidationFailed) and "valid_until" in exc.detail:
        errors["valid_until"] = exc.detail
    else:
        errors[""] = exc.detail


def form_values(group: GroupOut) -> dict[str, str]:
    """The group as its edit form shows it (also what "unchanged" means on save)."""
    return {
        "name": group.name,
        "description": group.description or "",
        "valid_from": formats.fmt_input_dt(group.valid_from),
        "valid_until": formats.fmt_input_dt(group.valid_until),
        "low_stock_threshold": ""
        if group.low_stock_threshold is None
        else str(group.low_stock_threshold),
        "redeem_unissued": "1" if group.redeem_unissued else "",
        "refill_pattern": group.refill_pattern or "",
        "refill_below": "" if group.refill_below is None else str(group.refill_below),
        "refill_count": "" if group.refill_count is None else str(group.refill_count),
        "customer_limit": "" if group.customer_limit is None else str(group.customer_limit),
        "limit_action": group.limit_action,
        **_benefit_values(group.benefit),
    }


def _benefit_values(benefit: Benefit | None) -> dict[str, str]:
    if benefit is None:
        return dict.fromkeys(BENEFIT_FIELDS, "")
    value = "" if benefit.value is None else f"{benefit.value.normalize():f}"
    return {
        "benefit_type": benefit.type,
        "benefit_value": value,
        "benefit_currency": benefit.currency or "",
        "benefit_text": benefit.text or "",
    }
