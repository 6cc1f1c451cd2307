"""Predicates on a customer's own data: the ``field`` and ``attribute`` filters.

Every predicate is two-valued (never SQL NULL) — ``filters.py`` relies on it for ``not``.
The pattern is "guard AND comparison": the guard (the value is present, of the right JSON
type) is true or false, and the comparison is not NULL wherever the guard holds; since
``false AND NULL`` is false in SQL, the whole is never NULL. The semantics are documented
in ``filters.py``.

``in`` is ONE membership test against ONE bound parameter, whatever the length of the
list: ``= ANY(:array)`` on PostgreSQL (hashed by the executor for long lists), ``IN
(SELECT value FROM json_each(:json))`` on SQLite (an ephemeral index built once). A
parameter or an OR branch per value would mean thousands of bound variables and an
expression deeper than SQLite accepts, and compiling it took seconds.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

from pydantic import AwareDatetime, TypeAdapter
from sqlalchemy import ColumnElement, Text, and_, any_, bindparam, cast, func, literal, not_, or_
from sqlalchemy import select as select_
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.sql.expression import type_coerce

from promocodes.customers.models import Customer
from promocodes.models import sqlite_timestamp
from promocodes.segments.tree import AttributeFilter, FieldFilter

Bool = ColumnElement[bool]
_TIME: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)

# json_type (SQLite) / jsonb_typeof (PostgreSQL) names of each kind of filter value.
_SQLITE_TYPES: Final = {
    "text": ("text",),
    "number": ("integer", "real"),
    "boolean": ("true", "false"),
}
_PG_TYPES: Final = {"text": ("string",), "number": ("number",), "boolean": ("boolean",)}


def by_code_point(text: ColumnElement[Any], pg: bool) -> ColumnElement[Any]:
    """``text`` ordered by code point: PostgreSQL's default collation follows the locale
    (and so would differ between servers); SQLite's BINARY already is code point order."""
    return text.collate("C") if pg else text


def text_match(
    text: ColumnElement[Any], op: str, value: str, pg: bool, *, ignore_case: bool = False
) -> Bool:
    """contains / starts_with / ends_with, wildcards in ``value`` literal; case-sensitive
    unless ``ignore_case``: PostgreSQL's ILIKE folds every letter its locale knows,
    SQLite's LIKE folds A-Z only (other letters still match in their own case)."""
    if pg or ignore_case:
        escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = {"contains": "%{}%", "starts_with": "{}%", "ends_with": "%{}"}[op]
        if pg and ignore_case:
            return text.ilike(pattern.format(escaped), escape="\\")
        # SQLite's own LIKE already ignores the case of A-Z (SQLAlchemy's ilike would wrap
        # both sides in lower(), which folds no other letter and copies every value).
        return text.like(pattern.format(escaped), escape="\\")
    # SQLite's LIKE ignores ASCII case; instr/substr compare characters exactly and need
    # no escaping at all.
    if op == "contains":
        return func.instr(text, value) > 0
    if op == "starts_with":
        return func.substr(text, 1, len(value)) == value
    return func.substr(text, -len(value)) == value


def field_predicate(f: FieldFilter, pg: bool) -> Bool:
    column: ColumnElement[Any] = getattr(Customer, f.field)
    present = column.is_not(None)
    if f.op == "exists":
        return present if f.value is not False else column.is_(None)
    timed = f.field == "created_at"

    def convert(v: Any) -> Any:
        return _TIME.validate_python(v) if timed else v

    if f.op == "in":
        assert isinstance(f.value, list)
        values = [convert(v) for v in f.value]
        if pg:
            element = column.type if timed else Text()
            return and_(present, column == any_(bindparam(None, values, ARRAY(element))))
        # SQLite stores times as text in one fixed format (models.UTCDateTime).
        texts = [sqlite_timestamp(v) for v in values] if timed else values
        return and_(present, column.in_(json_values(texts)))
    value = convert(f.value)
    match f.op:
        case "eq":
            return and_(present, column == value)
        case "ne":
            return and_(present, column != value)
        case "gt" | "lt":
            ordered = column if timed else by_code_point(column, pg)
            return and_(present, ordered > value if f.op == "gt" else ordered < value)
    assert isinstance(value, str)  # the substring operators (tree.py refuses the rest)
    return and_(present, text_match(column, f.op, value, pg, ignore_case=bool(f.ignore_case)))


def json_values(values: list[Any]) -> Any:
    """SQLite: the values as rows of one JSON parameter (``SELECT value FROM
    json_each(:json)``), for ``x IN (...)``: each keeps its JSON type (text, integer,
    real), as ``json_extract`` gives an attribute's."""
    rows = func.json_each(bindparam(None, json.dumps(values), Text())).table_valued("value")
    return select_(rows.c.value).scalar_subquery()


def attribute_predicate(f: AttributeFilter, pg: bool) -> Bool:
    return _Attribute(f.name, pg).match(f.op, f.value)


def _kind(value: Any) -> str:
    """The JSON type a filter value compares with: text, number or boolean."""
    if isinstance(value, bool):
        return "boolean"
    return "text" if isinstance(value, str) else "number"


class _Attribute:
    """One key of ``customers.attributes`` through the dialect's JSON functions."""

    def __init__(self, name: str, pg: bool) -> None:
        self.name, self.pg = name, pg
        if pg:
            self.doc = type_coerce(Customer.attributes, JSONB)
            self.json = self.doc[name]  # attributes -> 'name'
            self.text = self.doc[name].astext  # attributes ->> 'name'
            raw_type = func.jsonb_typeof(self.json)
        else:
            path = f'$."{name}"'  # the name cannot contain a quote (see tree.py)
            self.json = self.text = func.json_extract(Customer.attributes, path)
            raw_type = func.json_type(Customer.attributes, path)
        # A missing key gives SQL NULL: folding it into JSON null keeps guards two-valued.
        self.type = func.coalesce(raw_type, "null")

    def is_a(self, kind: str) -> Bool:
        names = (_PG_TYPES if self.pg else _SQLITE_TYPES)[kind]
        return self.type == names[0] if len(names) == 1 else self.type.in_(names)

    def match(self, op: str, value: Any) -> Bool:
        exists = self.type != "null"
        match op:
            case "exists":
                return exists if value is not False else not_(exists)
            case "eq":
                return self.eq(value)
            case "ne":
                return and_(exists, not_(self.eq(value)))
            case "in":
                return self.among(value)
            case "gt" | "lt":
                kind = _kind(value)
                left: ColumnElement[Any] = self.json
                if kind == "text":
                    left, right = by_code_point(self.text, self.pg), literal(value)
                elif self.pg:  # jsonb compares two numbers numerically, and never errors
                    right = literal(value, JSONB)
                else:
                    right = literal(value)
                compared = left > right if op == "gt" else left < right
                return and_(self.is_a(kind), compared)
        return and_(self.is_a("text"), text_match(self.text, op, value, self.pg))

    def among(self, values: list[Any]) -> Bool:
        """``in``: equal (as ``eq`` compares) to one of ``values``."""
        if self.pg:
            # jsonb equality is what containment tests for one scalar: typed, and numbers
            # numerically (30 = 30.0, "30" ≠ 30, true ≠ 1). Present, it is never NULL.
            texts = [json.dumps(v) for v in values]
            array = cast(bindparam(None, texts, ARRAY(Text())), ARRAY(JSONB))
            return and_(self.type != "null", self.json == any_(array))
        # SQLite: one test per JSON kind in the list (at most three), each guarded by the
        # attribute's type as ``eq`` is. bool before int: True is an int in Python.
        flags = {v for v in values if isinstance(v, bool)}
        texts = [v for v in values if isinstance(v, str)]
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        tests: list[Bool] = []
        if texts:
            tests.append(and_(self.is_a("text"), self.json.in_(json_values(texts))))
        if numbers:
            tests.append(and_(self.is_a("number"), self.json.in_(json_values(numbers))))
        if flags:
            tests.append(self.type.in_(sorted("true" if v else "false" for v in flags)))
        return or_(*tests)

    def eq(self, value: Any) -> Bool:
        if self.pg:
            # Containment is exact and typed (number = number, "30" ≠ 30), never NULL,
            # and a GIN index on attributes could serve it.
            return self.doc.contains({self.name: value})
        if isinstance(value, bool):
            return self.type == ("true" if value else "false")
        return and_(self.is_a(_kind(value)), self.json == value)
