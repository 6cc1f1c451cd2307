"""The ASGI application: API, web UI and static files (``create_app``)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from promocodes import __version__
from promocodes.config import Settings
from promocodes.db import Database
from promocodes.errors import DomainError

PROBLEM = "application/problem+json"


def problem(exc: DomainError, request: Request) -> JSONResponse:
    body = {
        "type": exc.slug,
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
        "instance": request.url.path,
        **exc.extra,
    }
    return JSONResponse(body, status_code=exc.status, media_type=PROBLEM)


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or Settings()
    db = database or Database(settings.database_url, settings)
    app = FastAPI(title="Promocodes", version=__version__)
    app.state.db = db
    app.state.settings = settings

    @app.exception_handler(DomainError)
    async def _domain_error(request: Request, exc: DomainError) -> JSONResponse:
        return problem(exc, request)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        with db.read() as session:
            session.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__, "database": db.dialect}

    return app
