"""The segment filter tree: its JSON shape, validation and paths. Pure: no database.

A tree is a Pydantic discriminated union on ``type``::

    and / or      {"type": "and", "filters": [...]}      (an empty and = everyone,
                                                           an empty or = no one)
    not           {"type": "not", "filter": {...}}
    issued_count  {"type": "issued_count", "op": "gte", "value": 2, "group_id": 7,
                   "kind": "initial", "issued_after": "...Z", "issued_before": null}
    issued_from_group {"type": "issued_from_group", "group_id": 7, "redeemed": false}
    reached_limit {"type": "reached_limit", "group_id": 7}
    field         {"type": "field", "field": "email", "op": "ends_with", "value": "@x.io"}
    attribute     {"type": "attribute", "name": "city", "op": "eq", "value": "Berlin"}

Value rules (the semantics themselves are documented in ``filters.py``):
- ``issued_count``: ``value`` is a whole number ≥ 0, or ``[a, b]`` with a ≤ b for
  ``between``; times must carry a time zone and ``issued_after < issued_before``.
- ``field`` / ``attribute``: ``eq``/``ne`` take one scalar, ``in`` a non-empty list of
  them, ``contains``/``starts_with``/``ends_with`` a non-empty string, ``gt``/``lt`` a
  string or a number (never a boolean), ``exists`` ``true`` (the default) or ``false``.
  ``created_at`` takes ISO 8601 times with a time zone and no substring operators; the
  other fields take strings only.

Errors name the path of the offending node from the root of the tree, e.g.
``filters[1].filter.value: ...``. The limits on nesting and size (``limits.py``) are
checked on the raw JSON before anything else, so one request can never build an
unbounded query nor make validation itself expensive.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal, cast

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from promocodes.errors import ValidationFailed
from promocodes.segments.limits import (
    LIMITS,
    MAX_DEPTH,
    MAX_IN_VALUES,
    MAX_NODES,
    Part,
    enforce,
    raw_parts,
)
from promocodes.text import Rfc3339

__all__ = ["MAX_DEPTH", "MAX_IN_VALUES", "MAX_NODES"]

StrictInt = Annotated[int, Field(strict=True)]
Count = Annotated[int, Field(strict=True, ge=0, le=2_147_483_647)]
GroupId = Annotated[int, Field(strict=True, ge=1, le=2_147_483_647)]
# bool first: in smart mode an exact type match wins, so true stays a bool, 1 an int.
Scalar = Annotated[bool, Field(strict=True)] | StrictInt | float | str
Value = Scalar | list[Scalar] | None

CountOp = Literal["eq", "ne", "lt", "lte", "gt", "gte", "between"]
ValueOp = Literal["eq", "ne", "contains", "starts_with", "ends_with", "in", "exists", "gt", "lt"]
TEXT_OPS = ("contains", "starts_with", "ends_with")
FieldName = Literal["email", "phone", "first_name", "last_name", "created_at"]

_TIME = TypeAdapter(AwareDatetime)


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class And(_Node):
    type: Literal["and"]
    filters: list[Filter]


class Or(_Node):
    type: Literal["or"]
    filters: list[Filter]


class Not(_Node):
    type: Literal["not"]
    filter: Filter


def _count_value(value: Any, info: ValidationInfo) -> Any:
    """One clear message for a value that does not fit the operator (instead of one per
    member of the union)."""
    op = info.data.get("op")
    if op == "between":
        if not (isinstance(value, list | tuple) and len(value) == 2 and all(map(_count, value))):
            raise ValueError("must be [low, high], two whole numbers >= 0, for between")
        if value[0] > value[1]:
            raise ValueError("must be [low, high] with low <= high")
    elif op is not None and not _count(value):
        raise ValueError(f"must be one whole number >= 0 for {op}")
    return value


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class IssuedCount(_Node):
    type: Literal["issued_count"]
    op: CountOp
    value: Annotated[Count | tuple[Count, Count], BeforeValidator(_count_value)]
    group_id: GroupId | None = None
    kind: Literal["initial", "repeat"] | None = None
    # Times as RFC 3339 text only (not numbers read as seconds since 1970).
    issued_after: Annotated[AwareDatetime | None, Rfc3339] = None
    issued_before: Annotated[AwareDatetime | None, Rfc3339] = None

    @field_validator("issued_before")
    @classmethod
    def _window(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        after = info.data.get("issued_after")
        if value is not None and after is not None and after >= value:
            raise ValueError("must be later than issued_after")
        return value

    def bounds(self) -> tuple[int, int | None]:
        """The counts that match ``op value`` as the inclusive range [low, high]
        (high None: unbounded; low > high: none). Not defined for ``ne``."""
        if isinstance(self.value, tuple):
            return self.value
        v = self.value
        match self.op:
            case "eq":
                return v, v
            case "lt":
                return 0, v - 1
            case "lte":
                return 0, v
            case "gt":
                return v + 1, None
            case "gte":
                return v, None
        raise ValueError(f"{self.op} is not a range")


class IssuedFromGroup(_Node):
    type: Literal["issued_from_group"]
    group_id: GroupId
    redeemed: Annotated[bool, Field(strict=True)] | None = None


class ReachedLimit(_Node):
    """Customers holding as many initial codes from the group as its per-customer limit
    allows (no one while the group has no limit)."""

    type: Literal["reached_limit"]
    group_id: GroupId


def _scalar_problem(value: Any, op: str, timed: bool) -> str | None:
    """Why ``value`` cannot be compared with ``op`` (None when it can)."""
    if timed:
        if not isinstance(value, str):
            return "must be an ISO 8601 time with a time zone"
        try:
            _TIME.validate_python(value)
        except ValidationError:
            return f"{value!r} is not an ISO 8601 time with a time zone"
        return None
    if not isinstance(value, str | int | float):  # bool is an int
        return "must be a string, a number or a boolean"
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if op in TEXT_OPS:
        if not isinstance(value, str):
            return f"must be a string for {op}"
        if not value:
            return f"must not be empty for {op}"
    if op in ("gt", "lt") and isinstance(value, bool):
        return f"must be a string or a number for {op}"
    return None


def _check_value(value: Any, op: str, timed: bool, text_only: bool) -> Any:
    if op == "exists":
        if value is not None and not isinstance(value, bool):
            raise ValueError("must be true or false (or left out) for exists")
        return value
    if timed and op in TEXT_OPS:
        raise ValueError(f"{op} does not apply to created_at")
    if op == "in":
        if not isinstance(value, list) or not value:
            raise ValueError("must be a non-empty list for in")
        if len(value) > MAX_IN_VALUES:
            raise ValueError(f"lists at most {MAX_IN_VALUES} values")
        items = value
    else:
        if value is None or isinstance(value, list):
            raise ValueError(f"must be a single value for {op}")
        items = [value]
    for item in items:
        problem = _scalar_problem(item, op, timed)
        if problem is None and text_only and not isinstance(item, str):
            problem = "must be a string"
        if problem:
            raise ValueError(problem)
    return value


def _field_value(value: Any, info: ValidationInfo) -> Any:
    field, op = info.data.get("field"), info.data.get("op")
    if field is None or op is None:
        return value
    timed = field == "created_at"
    return _check_value(value, op, timed=timed, text_only=not timed)


def _attribute_value(value: Any, info: ValidationInfo) -> Any:
    op = info.data.get("op")
    return value if op is None else _check_value(value, op, timed=False, text_only=False)


def _ignore_case(value: Any, info: ValidationInfo) -> Any:
    op = info.data.get("op")
    if value is not None and op is not None and op not in TEXT_OPS:
        raise ValueError(f"applies to {', '.join(TEXT_OPS)} only, not {op}")
    return value


class FieldFilter(_Node):
    type: Literal["field"]
    field: FieldName
    op: ValueOp
    # validate_default: a missing value must be checked against the op too ("exists"
    # needs none, "contains" does) instead of reaching the SQL compiler as None.
    value: Annotated[Value, BeforeValidator(_field_value)] = Field(
        default=None, validate_default=True
    )
    # Substring operators compare exactly unless this is true. None (not False) when
    # unset, so stored trees and API answers leave it out (dump_filter drops None).
    ignore_case: Annotated[bool | None, AfterValidator(_ignore_case)] = None


def _attribute_name(name: str) -> str:
    # The SQLite JSON path quotes the key ($."name") and cannot escape a quote inside it.
    if not name or len(name) > 200:
        raise ValueError("must be 1 to 200 characters")
    if any(ch in '"\\' or ord(ch) < 32 for ch in name):
        raise ValueError("must not contain quotes, backslashes or control characters")
    return name


class AttributeFilter(_Node):
    type: Literal["attribute"]
    name: Annotated[str, AfterValidator(_attribute_name)]
    op: ValueOp
    value: Annotated[Value, BeforeValidator(_attribute_value)] = Field(
        default=None, validate_default=True
    )


Filter = Annotated[
    And | Or | Not | IssuedCount | IssuedFromGroup | ReachedLimit | FieldFilter | AttributeFilter,
    Field(discriminator="type"),
]
Leaf = IssuedCount | IssuedFromGroup | ReachedLimit | FieldFilter | AttributeFilter
for _model in (And, Or, Not):
    _model.model_rebuild()


def walk(tree: Filter, path: str = "") -> Iterator[tuple[str, int, Filter]]:
    """Every node with its path and depth (the root is at depth 1), parents first."""
    stack: list[tuple[str, int, Filter]] = [(path, 1, tree)]
    while stack:
        here, depth, node = stack.pop()
        yield here, depth, node
        if isinstance(node, And | Or):
            prefix = f"{here}." if here else ""
            for i in reversed(range(len(node.filters))):
                stack.append((f"{prefix}filters[{i}]", depth + 1, node.filters[i]))
        elif isinstance(node, Not):
            stack.append((f"{here}.filter" if here else "filter", depth + 1, node.filter))


def _parts(tree: Filter) -> Iterator[Part]:
    for path, depth, node in walk(tree):
        value = getattr(node, "value", None)
        yield path, depth, len(value) if isinstance(value, list | tuple) else 0, node.type


def check_limits(tree: Filter) -> Filter:
    """Refuse a tree over the limits of ``limits.py`` (a PydanticCustomError naming the
    path): for trees built in Python, which skip the check on their JSON."""
    enforce(_parts(tree))
    return tree


def _check_raw_limits(raw: Any) -> Any:
    # A tree built in Python (SegmentCreate(filter=parse_filter(...))) arrives as nodes.
    enforce(_parts(cast(Filter, raw)) if isinstance(raw, _Node) else raw_parts(raw))
    return raw


# The type API shapes use: the limits checked on the raw JSON first (cheap, and before
# any value is validated), then the tree validated.
FilterTree = Annotated[Filter, BeforeValidator(_check_raw_limits)]
_ADAPTER: TypeAdapter[Filter] = TypeAdapter(FilterTree)
# Saved trees were checked when saved; loading one must not fail because a limit changed
# since (evaluating it checks the limits again, see ``filters.py``).
_STORED: TypeAdapter[Filter] = TypeAdapter(Filter)

_TAGS = frozenset({"and", "or", "not", "issued_count", "issued_from_group", "field", "attribute"})


def error_path(loc: tuple[int | str, ...]) -> str:
    """A Pydantic error location as a filter path: ``('filters', 1, 'issued_count',
    'group_id')`` → ``filters[1].group_id``. The union tag Pydantic inserts after each
    node is dropped, and so is anything below a leaf field (union member names)."""
    parts: list[str] = []
    expect_tag = True
    for item in loc:
        if isinstance(item, int):
            if parts:
                parts[-1] += f"[{item}]"
            expect_tag = True
        elif expect_tag and item in _TAGS:
            expect_tag = False
        elif item in ("filters", "filter"):
            parts.append(item)
            expect_tag = item == "filter"
        else:
            parts.append(item)
            break
    return ".".join(parts)


def describe(exc: ValidationError) -> ValidationFailed:
    """A Pydantic error as the domain's ValidationFailed, every message with its path."""
    messages: list[str] = []
    for err in exc.errors(include_url=False):
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == LIMITS:  # the path inside the tree is in the error's context
            path = (err.get("ctx") or {}).get("path") or "filter"
        else:
            path = error_path(tuple(err["loc"])) or "filter"
        msg = f"{path}: {msg}"
        if msg not in messages:
            messages.append(msg)
    return ValidationFailed("; ".join(messages), errors=messages)


def parse_filter(raw: Any) -> Filter:
    """Validate a decoded JSON filter tree; ValidationFailed names each bad path."""
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        raise describe(exc) from None


def load_filter(raw: Any) -> Filter:
    """A saved tree, validated but not checked against today's limits."""
    try:
        return _STORED.validate_python(raw)
    except ValidationError as exc:
        raise describe(exc) from None


def limits_problem(tree: Filter) -> ValidationFailed | None:
    """The limit a tree breaks, as the domain's error naming its path, or None."""
    try:
        check_limits(tree)
    except PydanticCustomError as exc:
        path = (exc.context or {}).get("path") or "filter"
        return ValidationFailed(f"{path}: {exc.message()}", errors=[f"{path}: {exc.message()}"])
    return None


def dump_filter(tree: Filter) -> dict[str, Any]:
    """The JSON form of a tree as stored and returned (unset options left out)."""
    dumped: dict[str, Any] = _ADAPTER.dump_python(tree, mode="json", exclude_none=True)
    return dumped
