"""The web UI: every area's routes and the static files, installed on the app."""

from __future__ import annotations

import inspect
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from promocodes.dispatch import Branch
from promocodes.web import (
    alerts,
    audit,
    auth,
    campaigns,
    compose,
    customers,
    exports,
    groups,
    kit,
    mailings,
    outbox,
    segments,
    settings,
    uploads,
    users,
)

STATIC = Path(__file__).parent / "static"
ROUTERS = (
    auth.router,
    groups.router,
    uploads.router,
    exports.router,
    customers.router,
    segments.router,
    compose.router,
    mailings.router,
    campaigns.router,
    outbox.router,
    settings.router,
    users.router,
    audit.router,
    alerts.router,
)


def install(app: FastAPI) -> None:
    # One branch for the pages: an API call is passed over in one step (``dispatch``).
    site = Branch()
    for router in ROUTERS:
        site.take(router)
    app.include_router(site)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _html_for_browsers(app)


def _html_for_browsers(app: FastAPI) -> None:
    """An unknown address opened in a browser answers with a page, not the API's JSON
    problem; the API (and any client that does not ask for HTML) keeps its JSON."""
    api_answer = app.exception_handlers[StarletteHTTPException]

    async def answer(request: Request, exc: Exception) -> Response:
        wants_html = "text/html" in request.headers.get("accept", "")
        if (
            isinstance(exc, StarletteHTTPException)
            and exc.status_code in (404, 405)
            and wants_html
            and not request.url.path.startswith("/api/")
        ):
            return kit.error_page(
                request,
                404,
                "Page not found",
                "There is no page at this address. It may have been mistyped, or what it "
                "showed was removed. Use the menu to find your way.",
            )
        response = api_answer(request, exc)
        return await response if inspect.isawaitable(response) else response

    app.add_exception_handler(StarletteHTTPException, answer)


def is_upload(path: str) -> bool:
    """Web routes that take code files (for the app's request body limit)."""
    return path.startswith("/groups/") and path.endswith("/upload")
