"""Segment builder: the saved segments, the builder page (a small script edits the tree
JSON in a hidden field, the shape of ``segments/tree.py``) and the live preview htmx
posts on every change."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from promocodes.codes.service import get_any_group, live_groups
from promocodes.errors import DomainError, GroupNotFound, ValidationFailed
from promocodes.messaging import mailings
from promocodes.segments import service as segments
from promocodes.segments.limits import HISTORY_TYPES, MAX_HISTORY
from promocodes.segments.schemas import SegmentCreate, SegmentUpdate
from promocodes.segments.tree import dump_filter, parse_filter
from promocodes.web import kit, wording
from promocodes.web.kit import Db, Form, User

router = APIRouter(route_class=kit.UiRoute, include_in_schema=False)

EVERYONE: dict[str, Any] = {"type": "and", "filters": []}
MAX_TREE_CHARS = 100_000
# The part of a problem's path that names a node of the tree ("filters[0].filters[2]"),
# before the field of that node it is about (".value").
_NODE = re.compile(r"(?:filters\[\d+\]|filter)(?:\.(?:filters\[\d+\]|filter))*")
# What the summary at the top of a refused page says: the message itself is shown once,
# next to the conditions.
SHOWN_BY_THE_BUILDER = "see the problem shown under them"


def tree_problems(exc: DomainError) -> list[dict[str, str]]:
    """A tree's problems as the builder shows them: the node each is about (its path in
    the tree, which the script highlights) and the message in words. The builder never
    numbers its conditions, so the message says "the highlighted condition" instead of
    "Condition 3"."""
    problems: list[dict[str, str]] = []
    for message in exc.extra.get("errors") or [exc.detail]:
        where, sep, text = str(message).partition(": ")
        found = _NODE.match(where) if sep else None
        if found is None:
            problems.append({"node": "", "text": wording.sentence(str(message))})
            continue
        node = "" if found.group(0) == "filter" else found.group(0)
        said = wording.sentence(text)
        field = where[found.end() :].lstrip(".").split("[")[0]
        if field:
            said = f"{wording.label(field)}: {said}"
        lead = "The highlighted condition" if node else "The conditions"
        problems.append({"node": node, "text": f"{lead} — {said}"})
    return problems


def group_choices(session: Session) -> list[dict[str, Any]]:
    """Live groups for pickers, by name."""
    groups = sorted(live_groups(session).values(), key=lambda g: g.name.casefold())
    return [{"id": g.id, "name": g.name} for g in groups]


def _group_ids(tree: Any) -> set[int]:
    """Every ``group_id`` a filter tree (as the builder sends it) names."""
    if isinstance(tree, list):
        return set().union(*(_group_ids(t) for t in tree)) if tree else set()
    if not isinstance(tree, dict):
        return set()
    found = {tree["group_id"]} if isinstance(tree.get("group_id"), int) else set()
    return found.union(*(_group_ids(v) for v in tree.values() if isinstance(v, list | dict)))


def archived_choices(
    session: Session, tree: Any, live: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Groups the tree names that are no longer live, by name and marked archived: the
    picker shows them as they are instead of silently choosing another group."""
    shown = {g["id"] for g in live}
    out = []
    for group_id in sorted(_group_ids(tree) - shown):
        try:
            name = get_any_group(session, group_id).name
        except GroupNotFound:
            name = "a deleted group"
        out.append({"id": group_id, "name": f"{name} (archived)", "archived": name})
    return out


def _decode(raw: str) -> Any:
    if len(raw) > MAX_TREE_CHARS:
        raise ValidationFailed("the filter is too large")
    try:
        return json.loads(raw or "null")
    except json.JSONDecodeError:
        raise ValidationFailed("the filter is not valid JSON") from None


def _builder(
    request: Request,
    db: Db,
    *,
    segment_id: int | None,
    name: str,
    tree: Any,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    archived_at: datetime | None = None,
    problems: list[dict[str, str]] | None = None,
) -> Response:
    with db.read() as s:
        groups = group_choices(s)
        archived = archived_choices(s, tree, groups)
    return kit.page(
        request,
        "segments/builder.html",
        {
            "section": "segments",
            "segment_id": segment_id,
            "name": name,
            "tree_json": json.dumps(tree, ensure_ascii=False),
            "builder_data": {
                "groups": groups + archived,
                "max_history": MAX_HISTORY,
                "history_types": sorted(HISTORY_TYPES),
            },
            "tree_problems": problems or [],
            "archived": [g["archived"] for g in archived],
            "archived_at": archived_at,
            "errors": errors or {},
        },
        status_code=status_code,
    )


@router.get("/segments")
def list_segments(request: Request, user: User, db: Db, show: str = "") -> Response:
    archived = show == "archived"  # archived segments are listed apart, read-only
    with db.read() as s:
        saved = segments.list_segments(s, archived=archived)
    return kit.page(
        request,
        "segments/list.html",
        {"section": "segments", "segments": saved, "show": "archived" if archived else ""},
    )


@router.get("/segments/new")
def new_segment(request: Request, user: User, db: Db) -> Response:
    return _builder(request, db, segment_id=None, name="", tree=EVERYONE)


@router.get("/segments/{segment_id}")
def edit_segment(request: Request, segment_id: kit.Id, user: User, db: Db) -> Response:
    with db.read() as s:
        # A deleted (archived) segment stays readable: a sent mailing's page links to it.
        segment = segments.get_any(s, segment_id)
        name, tree = segment.name, dump_filter(segments.tree_of(segment))
        archived_at = segment.archived_at
    return _builder(
        request, db, segment_id=segment_id, name=name, tree=tree, archived_at=archived_at
    )


def _save(request: Request, db: Db, form: Any, segment_id: int | None) -> Response:
    name = kit.field(form, "name")
    raw = kit.field(form, "filter")
    errors: dict[str, str] = {}
    problems: list[dict[str, str]] = []
    tree: Any = EVERYONE
    try:
        tree = _decode(raw)
        parsed = parse_filter(tree)
        with db.write() as s:
            if segment_id is None:
                saved = segments.create(s, SegmentCreate(name=name, filter=parsed))
            else:
                saved = segments.update(s, segment_id, SegmentUpdate(name=name, filter=parsed))
            saved_id = saved.id
    except ValidationError as exc:
        errors.update(kit.errors_of(exc))
        if "filter" in errors:  # said next to the conditions, like the tree's own problems
            problems = [{"node": "", "text": wording.sentence(errors.pop("filter"))}]
            errors["conditions"] = SHOWN_BY_THE_BUILDER
    except segments.SegmentNameTaken as exc:
        errors["name"] = exc.detail
    except DomainError as exc:
        errors["conditions"] = SHOWN_BY_THE_BUILDER
        problems = tree_problems(exc)
    else:
        return kit.redirect(request, f"/segments/{saved_id}", flash=f"Segment “{name}” saved.")
    shown = raw if raw.strip() else json.dumps(EVERYONE)
    try:
        tree = json.loads(shown)
    except json.JSONDecodeError:
        tree = EVERYONE
    return _builder(
        request,
        db,
        segment_id=segment_id,
        name=name,
        tree=tree,
        errors=errors,
        status_code=422,
        problems=problems,
    )


@router.post("/segments/new")
def create_segment(request: Request, user: User, form: Form, db: Db) -> Response:
    return _save(request, db, form, None)


@router.post("/segments/preview")
def preview(request: Request, user: User, form: Form, db: Db) -> Response:
    """The count and a sample of the tree being built (an htmx fragment). Problems of an
    unfinished tree are shown in place of the count, not as an error status."""
    try:
        tree = parse_filter(_decode(kit.field(form, "filter")))
        with db.read() as s:
            result = segments.preview(s, tree)
    except DomainError as exc:
        problems = tree_problems(exc)
        return kit.fragment(request, "segments/preview.html", {"tree_problems": problems})
    return kit.fragment(request, "segments/preview.html", {"tree_problems": [], "result": result})


@router.get("/segments/{segment_id}/delete")
def confirm_delete(request: Request, segment_id: kit.Id, user: User, db: Db) -> Response:
    with db.read() as s:
        segment = segments.get(s, segment_id)
        plan = mailings.segment_deletion(s, segment)
        name = segment.name
    return kit.page(
        request,
        "segments/delete.html",
        {"section": "segments", "segment_id": segment_id, "name": name, "plan": plan},
    )


@router.post("/segments/{segment_id}/delete")
def delete_segment(
    request: Request, segment_id: kit.Id, user: User, form: Form, db: Db
) -> Response:
    with db.write() as s:
        name = segments.get(s, segment_id).name
        outcome = mailings.delete_segment(s, segment_id)
    kept = " Mailings sent to it still name it on their reports." if outcome == "archived" else ""
    return kit.redirect(request, "/segments", flash=f"Segment “{name}” deleted.{kept}")


@router.post("/segments/{segment_id}")
def update_segment(
    request: Request, segment_id: kit.Id, user: User, form: Form, db: Db
) -> Response:
    return _save(request, db, form, segment_id)
