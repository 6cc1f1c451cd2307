"""Plumbing shared by every web UI route: templates, the logged-in user, CSRF, forms,
redirects, flash messages and error pages. Routes stay thin: parse, call a service,
render.

These templates are ours (never marketers'): a normal Jinja environment with
autoescaping on. Marketer templates go through ``messaging.rendering``'s sandbox.
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Callable, Collection, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote, unquote, urlencode

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from promocodes import __version__
from promocodes.apikit import Id as Id
from promocodes.apikit import database as database
from promocodes.apikit import settings as settings
from promocodes.codes.benefit import BENEFIT_LABELS
from promocodes.config import Settings
from promocodes.db import Database
from promocodes.errors import DomainError, PayloadTooLarge
from promocodes.users import service as users
from promocodes.users.roles import allows, needed
from promocodes.users.service import Active
from promocodes.web import wording
from promocodes.web.formats import fmt_dt, fmt_input_dt, fmt_num, macro

SESSION_COOKIE = "pc_session"
LOGIN_CSRF_COOKIE = "pc_login_csrf"
FLASH_COOKIE = "pc_flash"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# Form limits: a pasted list of codes is one field; files stream to disk (Starlette
# spools parts over 1 MB), so only the plain fields need a bound here.
MAX_FIELDS = 200
MAX_FILES = 1

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: https:; frame-src 'self'; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'self'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


# --- templates ----------------------------------------------------------------------------


def first_error(errors: Mapping[str, str]) -> str:
    """The field a refused form's focus goes to: its first wrong field, in form order
    (the errors are collected in that order)."""
    return next((name for name in errors if name), "")


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("promocodes.web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["dt"] = fmt_dt
    env.filters["input_dt"] = fmt_input_dt
    env.filters["num"] = fmt_num
    env.globals["macro"] = macro
    env.globals["benefit_labels"] = BENEFIT_LABELS
    env.globals["first_error"] = first_error
    env.filters["label"] = wording.label
    env.filters["lower_label"] = wording.lower
    env.filters["words"] = wording.value
    env.filters["detail"] = wording.detail
    env.filters["action"] = wording.action
    env.filters["channel"] = wording.channel
    env.filters["sentence"] = wording.sentence
    env.globals["version"] = __version__
    return env


TEMPLATES = _env()


# --- request context ----------------------------------------------------------------------


Db = Annotated[Database, Depends(database)]
Config = Annotated[Settings, Depends(settings)]


class LoginRequired(Exception):
    """No live session: the UI answers with a redirect to the login page."""


class CsrfRejected(Exception):
    """A state-changing request without the session's CSRF token: 403."""


def current_user(request: Request, db: Db) -> Active:
    with db.read() as session:
        active = users.resolve(session, request.cookies.get(SESSION_COOKIE))
    if active is None:
        raise LoginRequired
    route = request.scope.get("route")
    active.require(request.method, getattr(route, "path", request.url.path))
    if active.needs_touch:
        with db.write() as session:
            users.touch(session, active.session_id)
    request.state.user = active
    return active


User = Annotated[Active, Depends(current_user)]


async def read_form(request: Request, cfg: Settings) -> FormData:
    """The request's form; a field or a body over its limit is a ``PayloadTooLarge`` that
    says in plain words what to do instead (the page shows it, never a JSON problem)."""
    try:
        return await request.form(
            max_files=MAX_FILES, max_fields=MAX_FIELDS, max_part_size=cfg.max_body_bytes
        )
    except HTTPException as exc:
        # Starlette reports one field over ``max_part_size`` as a 400 whose detail says
        # "… exceeded maximum size …": the same refusal as a body over its limit.
        if exc.status_code != 400 or "exceeded maximum size" not in str(exc.detail):
            raise
        limit = cfg.max_body_bytes
    except PayloadTooLarge as exc:
        limit = exc.limit
    await _drain(request)
    raise PayloadTooLarge(limit, too_large_text(limit))


async def _drain(request: Request) -> None:
    """Read what the browser is still sending (the body limit still bounds it), so that
    it gets to show our answer instead of a reset connection. Starlette marks a body read
    to its end in ``_stream_consumed``; without that mark nothing is read (a read past
    the end would wait for the client to go)."""
    if getattr(request, "_stream_consumed", True):
        return
    with contextlib.suppress(Exception):
        while True:
            message = await request.receive()
            if message["type"] != "http.request" or not message.get("more_body"):
                return


def too_large_text(limit: int) -> str:
    size = f"{limit / 1048576:,.0f} MiB" if limit >= 1048576 else f"{limit:,} bytes"
    return (
        f"What you sent is larger than {size}, more than this form takes. To upload that "
        "many codes, save them in a .txt or .csv file and choose the file instead."
    )


def same_token(sent: object, expected: str) -> bool:
    return isinstance(sent, str) and bool(sent) and hmac.compare_digest(sent, expected)


async def checked_form(request: Request, user: User, cfg: Config) -> FormData:
    """The request's form, once its CSRF token (field or htmx header) matched the session's."""
    form = await read_form(request, cfg)
    sent = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
    if not same_token(sent, user.csrf_token):
        raise CsrfRejected
    return form


Form = Annotated[FormData, Depends(checked_form)]


async def form_or_too_large(
    request: Request, user: User, cfg: Config
) -> FormData | PayloadTooLarge:
    """The checked form, or the refusal of one too large to read: a page that can keep
    the user's work (the upload form keeps what was pasted) shows the refusal itself."""
    try:
        return await checked_form(request, user, cfg)
    except PayloadTooLarge as exc:
        return exc


FormOrTooLarge = Annotated[FormData | PayloadTooLarge, Depends(form_or_too_large)]


def field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def upload_of(form: FormData, name: str) -> UploadFile | None:
    value = form.get(name)
    return value if isinstance(value, UploadFile) and value.filename else None


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


# --- forms --------------------------------------------------------------------------------


def errors_of(exc: ValidationError, fields: Collection[str] = ()) -> dict[str, str]:
    """Pydantic errors by the form field they belong to ("" for the form itself). A
    rule about the whole form that begins with one of ``fields`` ("valid_until must be
    later than valid_from") belongs to that field: it is the one to correct."""
    out: dict[str, str] = {}
    for err in exc.errors(include_url=False):
        name = str(err["loc"][0]) if err["loc"] else ""
        message = err["msg"].removeprefix("Value error, ")
        if not name and message.split(" ", 1)[0] in fields:
            name = message.split(" ", 1)[0]
        out.setdefault(name, message)
    return out


def parse_datetime(value: str) -> datetime | None:
    """A ``datetime-local`` value, read as UTC; empty is None. ValueError when malformed."""
    value = value.strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("enter a date and time like 2027-01-31 23:59") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_int(value: str, *, minimum: int = 0) -> int | None:
    value = value.strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < minimum:
        raise ValueError(f"enter a whole number of at least {minimum}")
    return int(value)


# --- responses ----------------------------------------------------------------------------


def may(user: Active | None, method: str, path: str) -> bool:
    """Whether ``user`` may ``method`` the route ``path``: the server's own rule
    (``users.roles``), asked by a page so it shows only the controls that would work."""
    return user is not None and allows(user.role, needed(method, path))


def _context(request: Request, context: Mapping[str, Any]) -> dict[str, Any]:
    user: Active | None = getattr(request.state, "user", None)
    path = request.url.path
    return {
        "user": user,
        # A viewer sees the data without the forms and exports the server would refuse.
        "can_change": may(user, "POST", path),
        "can_export": may(user, "GET", path.rstrip("/") + ".csv"),
        "csrf_token": user.csrf_token if user else "",
        "path": request.url.path,
        "section": "",
        "flash": None,
        **context,
    }


def page(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A full page. Shows (and clears) the flash message a redirect left."""
    flash = request.cookies.get(FLASH_COOKIE)
    ctx = _context(request, {**(context or {}), "flash": unquote(flash)[:500] if flash else None})
    response = HTMLResponse(
        TEMPLATES.get_template(template).render(ctx),
        status_code=status_code,
        headers={**SECURITY_HEADERS, **(headers or {})},
    )
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def fragment(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A piece of a page, for htmx to swap in."""
    return HTMLResponse(
        TEMPLATES.get_template(template).render(_context(request, context or {})),
        status_code=status_code,
        headers={**SECURITY_HEADERS, **(headers or {})},
    )


def secure(request: Request) -> bool:
    """Whether cookies must be ``Secure``: the request came over https, or the instance's
    public address is https (a proxy may forward it over plain http)."""
    cfg: Settings = request.app.state.settings
    return request.url.scheme == "https" or cfg.secure_cookies


def redirect(request: Request, url: str, *, flash: str | None = None) -> Response:
    """After a successful POST: 303 to ``url`` (for htmx, ``HX-Redirect``)."""
    response: Response
    if is_htmx(request):
        response = Response(status_code=204, headers={"HX-Redirect": url})
    else:
        response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(
            FLASH_COOKIE,
            quote(flash[:500]),
            max_age=60,
            path="/",
            httponly=True,
            samesite="lax",
            secure=secure(request),
        )
    return response


def safe_next(value: str | None) -> str:
    """Only a path on this site (never ``//host`` or ``https://…``): no open redirect."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/groups"
    return value


def login_redirect(request: Request) -> Response:
    if is_htmx(request):
        current = request.headers.get("hx-current-url", "")
        here = "/" + current.split("/", 3)[3] if current.count("/") >= 3 else "/groups"
        return Response(
            status_code=204, headers={"HX-Redirect": "/login?" + urlencode({"next": here})}
        )
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/login?" + urlencode({"next": here}), status_code=303)


def error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    context = {"status": status, "title": title, "detail": detail}
    if is_htmx(request):
        return fragment(request, "partials/error.html", context, status_code=status)
    return page(request, "error.html", context, status_code=status)


class UiRoute(APIRoute):
    """Routes of the UI answer in HTML: a login redirect, a 403 page for a missing CSRF
    token, and an error page for domain errors (the API's handlers answer in JSON)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except LoginRequired:
                return login_redirect(request)
            except CsrfRejected:
                return error_page(
                    request,
                    403,
                    "Request refused",
                    "The form did not carry this session's security token (it may have "
                    "expired, or come from another site). Reload the page and try again.",
                )
            except DomainError as exc:
                return error_page(request, exc.status, exc.title, exc.detail)
            except RequestValidationError as exc:
                detail = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()
                )
                return error_page(request, 422, "Invalid request", detail)

        return handler
