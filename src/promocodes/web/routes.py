"""The web UI: every area's routes and the static files, installed on the app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from promocodes.web import (
    audit,
    auth,
    campaigns,
    compose,
    customers,
    exports,
    groups,
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
)


def install(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")


def is_upload(path: str) -> bool:
    """Web routes that take code files (for the app's request body limit)."""
    return path.startswith("/groups/") and path.endswith("/upload")
