"""Plumbing shared by every API route: auth, transactions, pages, problem+json errors,
body limits. Routes stay thin: parse, call one service function, return."""

from __future__ import annotations

import json
import pathlib
import re
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    MutableMapping,
    Sequence,
)
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from promocodes import dispatch, spool
from promocodes.apikeys import service as apikeys
from promocodes.apikeys.models import ApiKey
from promocodes.config import Settings
from promocodes.db import Database
from promocodes.errors import (
    DomainError,
    PayloadTooLarge,
    ValidationFailed,
    field_of,
    message_of,
)
from promocodes.keycache import KeyCache
from promocodes.pagination import CURSOR_PATTERN
from promocodes.ratelimit import RateLimiter
from promocodes.text import NO_NUL_PATTERN, Digits, Rfc3339

# The ``Idempotency-Key`` header of the calls that take one: a blank key would be no key
# at all (two calls, two results), so it is refused rather than ignored.
IdempotencyKey = Annotated[str | None, Header(min_length=1, max_length=200, pattern=NO_NUL_PATTERN)]

PROBLEM = "application/problem+json"
# The status of a request whose client went away before its body arrived (nginx's).
CLIENT_GONE = 499
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


class ProblemOut(BaseModel):
    """RFC 9457 problem details; ``errors`` lists the offending fields or lines."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


# Documented on every API route so clients (and schema checkers) know the error shape.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ProblemOut, "content": {PROBLEM: {}}}
    for code in (400, 401, 404, 409, 413, 422, 429, 503)
}


# A text body (CSV, lines, NDJSON) in the OpenAPI: a file's bytes. "A string" would let
# schema checkers send JSON values of other types as "invalid" bodies, which on the wire
# are text like any other (``null`` is a one-line CSV file); a file is what it is.
TEXT_FILE: dict[str, Any] = {"type": "string", "format": "binary"}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The problem answers one operation adds to every route's (a 415 of an upload)."""
    return {code: {"model": ProblemOut, "content": {PROBLEM: {}}} for code in statuses}


class ProblemResponse(JSONResponse):
    """A problem as Starlette's ``JSONResponse`` writes it, byte for byte, with one encoder
    made once: ``json.dumps`` with these options makes a new encoder on every call."""

    media_type = PROBLEM
    _encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))

    def render(self, content: Any) -> bytes:
        return self._encoder.encode(content).encode("utf-8")


def problem_response(
    status: int, slug: str, title: str, detail: str, instance: str, **extra: Any
) -> JSONResponse:
    body = {
        "type": slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }
    return ProblemResponse(body, status_code=status)


# ``async`` although they await nothing: FastAPI runs a plain ``def`` dependency in the
# thread pool, and a thread hand-off per dependency cost more than the whole lookup.
async def database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def settings(request: Request) -> Settings:
    value: Settings = request.app.state.settings
    return value


async def api_key(request: Request) -> ApiKey:
    """The call's API key, checked (``keycache`` spares the database most checks), within
    its scopes and rate limit. ``async``: only a check that misses the cache, and the
    minutely ``last_used_at`` touch, go to the thread pool. (The database is taken from
    the app, not as a dependency of its own: FastAPI solves each sub-dependency with
    several passes over the request's parameters, on every call.)"""
    db: Database = request.app.state.db
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else None
    cache: KeyCache = request.app.state.key_cache
    key = cache.get(token) if token else None
    if key is None:
        key = await run_in_threadpool(_authenticate, db, token)
        cache.put(token or "", key)
    # For the access log line (logs.RequestLog reads the request's state).
    request.state.api_key_id = key.id
    route = request.scope.get("route")
    apikeys.require_scope(key, request.method, getattr(route, "path", request.url.path))
    limiter: RateLimiter = request.app.state.rate_limiter
    limiter.check(key.id)
    if apikeys.needs_touch(key):
        await run_in_threadpool(_touch, db, key.id)
        cache.forget(token or "")  # the kept copy's last_used_at is behind now
    return key


def _authenticate(db: Database, token: str | None) -> ApiKey:
    with db.read() as session:
        return apikeys.authenticate(session, token)


def _touch(db: Database, key_id: int) -> None:
    with db.write() as session:
        apikeys.touch(session, key_id)


Key = Annotated[ApiKey, Depends(api_key)]
# A row id in a path, API or page: digits alone (`1_0` is not 10), within the database's
# integer columns (an out-of-range id is a 422, not a crash). The range before the digits
# check: after it, the schema showed unknown ge/le keys instead of minimum/maximum.
Id = Annotated[int, Path(ge=1, le=2_147_483_647), Digits]
# A page size: one to a thousand items.
Limit = Annotated[int, Query(ge=1, le=1000)]
Db = Annotated[Database, Depends(database)]
# An opaque page cursor: ``next_cursor`` of the page before.
Cursor = Annotated[
    str | None,
    Query(pattern=CURSOR_PATTERN, description="`next_cursor` of the previous page."),
]
# An RFC 3339 time; without an offset it is read as UTC.
Time = Annotated[datetime | None, Rfc3339, Query()]


def status_query(statuses: Sequence[str]) -> Any:
    """A list's ``status`` filter, its values declared (empty means every status); the
    route still checks it with ``pagination.status_filter`` for its message."""
    return Query(
        description=f"One of {', '.join(statuses)}; empty for all.",
        json_schema_extra={"enum": ["", *statuses]},
    )


Config = Annotated[Settings, Depends(settings)]


# A service's refusal names its field first ("customer_id: must not be empty").
_NAMED = re.compile(r"([A-Za-z_][\w.\[\]-]*): (.+)", re.DOTALL)


def error_of(detail: str) -> dict[str, str]:
    """The ``errors`` item of a problem a service gave as text: the field the text starts
    with, or ``body`` (as for a request's whole-body error) when it names none."""
    named = _NAMED.fullmatch(detail)
    return (
        {"field": named[1], "message": named[2]} if named else {"field": "body", "message": detail}
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        extra = exc.extra
        if exc.slug == ValidationFailed.slug:
            # Every validation problem lists {field, message}: a service may name its
            # problems as "field: message" lines, or give its detail alone.
            listed = extra.get("errors") or [exc.detail]
            extra = {**extra, "errors": [error_of(e) if isinstance(e, str) else e for e in listed]}
        response = problem_response(
            exc.status, exc.slug, exc.title, exc.detail, request.url.path, **extra
        )
        # 429 (rate limit) and 503 (database busy) say when to try again.
        retry_after: int | None = getattr(exc, "retry_after", None)
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        sent_as = request.headers.get("content-type") or "no content type"
        errors = [
            {"field": field_of(e), "message": _not_json(e, sent_as) or message_of(e)}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem_response(
            422, "validation-error", "Validation failed", detail, request.url.path, errors=errors
        )

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect) -> Response:
        # The client left mid-body (its upload's file is already removed): no server
        # error to log, and nobody to answer. 499 is what the access line records.
        return Response(status_code=CLIENT_GONE)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed", 413: "payload-too-large"}.get(
            exc.status_code, "http-error"
        )
        response = problem_response(
            exc.status_code, slug, str(exc.detail), str(exc.detail), request.url.path
        )
        if exc.headers:  # most have none; a headers view of the response costs even so
            response.headers.update(exc.headers)
        if exc.status_code == 405:
            response.headers["Allow"] = allowed_methods(app, request)
        return response


def _not_json(error: Any, sent_as: str) -> str | None:
    """What to say of a JSON body that did not come as JSON: FastAPI reads a body sent as
    ``text/plain`` or a form as bytes, and Pydantic then says only that it is not an
    object, which does not tell the caller what to change."""
    if tuple(error.get("loc", ())) != ("body",) or "json" in sent_as.lower():
        return None
    return f"the body must be JSON, sent with Content-Type: application/json (it came as {sent_as})"


def allowed_methods(app: FastAPI, request: Request) -> str:
    """Every method the path answers (RFC 9110's ``Allow`` of a 405): Starlette names only
    the first route matching the path, and a path's GET and POST are routes of their own.
    A path written out in full outranks a template that also matches it: the ``Allow`` of
    ``/customers/import`` is its own POST, not the methods of ``/customers/{customer_id}``."""
    path = request.scope.get("path", "")
    found = [
        route
        for route in dispatch.leaves(app.router.routes) or []
        if (regex := getattr(route, "path_regex", None)) is not None and regex.match(path)
    ]
    literal = [route for route in found if not getattr(route, "param_convertors", None)]
    allowed = {m for route in literal or found for m in getattr(route, "methods", None) or ()}
    return ", ".join(method for method in METHODS if method in allowed)


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


LIMIT_KEY = "promocodes.body_limit"


@asynccontextmanager
async def spooled_body(
    request: Request, chunks: AsyncIterable[bytes] | None = None
) -> AsyncIterator[pathlib.Path]:
    """The request body (or ``chunks`` of it: a form's file) in a temporary file for the
    block's use: ``spool.body``, within the route's body limit, removed when the block
    ends, however it ends."""
    cfg: Settings = request.app.state.settings
    limit: int = request.scope.get(LIMIT_KEY, cfg.max_body_bytes)
    where = spool.folder(cfg)
    async with spool.body(chunks or request.stream(), where, limit) as path:
        yield path


class BodyLimit:
    """Refuses request bodies over a limit with 413 before they are read whole: by the
    declared Content-Length when there is one (at the first read, before any byte), and
    by counting streamed chunks otherwise.
    ``limit_for(path)`` lets upload routes accept more than plain JSON calls; the route's
    limit is left in the scope (``LIMIT_KEY``) for ``spooled_body``.

    A body found over the limit is a 413 problem whatever the route made of the error
    (FastAPI turns any error while it reads a JSON body into a 400): a response the app
    starts after that is replaced, unless it is a 413 of its own (the web UI's page)."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        scope[LIMIT_KEY] = limit
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        # A declared length over the limit is refused at the first read, before a byte is
        # taken, so that the route's face answers in its own way (the web UI a page).
        seen = int(declared) if declared.isdigit() and int(declared) > limit else 0
        started = over = replaced = False

        async def counting_receive() -> Message:
            nonlocal seen, over
            if seen > limit:
                over = True
                raise PayloadTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    over = True
                    raise PayloadTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started, replaced
            if message["type"] == "http.response.start":
                started = True
                if over and message["status"] != 413:
                    replaced = True
                    await self._refuse(scope, send, limit)
            if not replaced:
                await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except PayloadTooLarge:
            if not started:
                await self._refuse(scope, send, limit)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, limit: int) -> None:
        body = json.dumps(
            {
                "type": "payload-too-large",
                "title": "Request body too large",
                "status": 413,
                "detail": f"the request body is larger than {limit:,} bytes",
                "instance": scope["path"],
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
