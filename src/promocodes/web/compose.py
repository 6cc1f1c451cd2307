"""Writing message templates (mailings and campaigns alike): live validation with line
and column next to each field, preview as a chosen customer (placeholder codes, nothing
issued), and the macro helper."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.datastructures import FormData

from promocodes.errors import DomainError
from promocodes.messaging.rendering import MessageTemplate
from promocodes.messaging.templates import check, preview_for
from promocodes.messaging.validation import Problem
from promocodes.web import kit
from promocodes.web.kit import Db, Form, User

router = APIRouter(route_class=kit.UiRoute, include_in_schema=False)

TEMPLATE_FIELDS = ("subject", "body_text", "body_html")


def template_of(form: FormData) -> MessageTemplate:
    body_text = kit.field(form, "body_text")
    body_html = kit.field(form, "body_html")
    return MessageTemplate(kit.field(form, "subject"), body_text or None, body_html or None)


def problems_by_field(problems: Iterable[Mapping[str, Any] | Problem]) -> dict[str, list[str]]:
    """Problems as the messages shown under each field: "line 2, column 5: …"."""
    out: dict[str, list[str]] = {name: [] for name in TEMPLATE_FIELDS}
    for p in problems:
        item = p if isinstance(p, Mapping) else vars(p)
        where = ""
        if item.get("line"):
            where = f"line {item['line']}"
            if item.get("column"):
                where += f", column {item['column']}"
            where += ": "
        out.setdefault(str(item.get("field") or "body_text"), []).append(where + item["message"])
    return out


@router.post("/templates/check")
def check_template(request: Request, user: User, form: Form, db: Db) -> Response:
    """Live validation: one out-of-band fragment per field, swapped next to it."""
    with db.read() as s:
        result = check(s, template_of(form))
    return kit.fragment(
        request,
        "compose/problems.html",
        {"problems": problems_by_field(result.problems), "groups": result.groups, "oob": True},
    )


@router.post("/templates/preview")
def preview_template(request: Request, user: User, form: Form, db: Db) -> Response:
    """The message as a customer (or a sample one) would get it, with placeholder codes:
    nothing is issued or recorded."""
    customer_id = kit.field(form, "customer_id").strip()
    try:
        with db.read() as s:
            rendered = preview_for(s, template_of(form), customer_id or None)
    except DomainError as exc:  # no such customer, or the template fails for them
        return kit.fragment(request, "compose/preview.html", {"error": exc.detail})
    return kit.fragment(
        request,
        "compose/preview.html",
        {"error": None, "rendered": rendered, "customer_id": customer_id},
    )
