"""The ASGI application: API, web UI and static files (``create_app``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from sqlalchemy import text

from promocodes import __version__, metrics
from promocodes.apikit import BodyLimit, install_error_handlers
from promocodes.codes import api as codes_api
from promocodes.codes import background
from promocodes.config import Settings
from promocodes.customers import api as customers_api
from promocodes.db import Database

UPLOAD_PATHS = ("/codes", "/customers/import")


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or Settings()
    db = database or Database(settings.database_url, settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        with db.write() as session:
            background.fail_interrupted(session)
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="Promocodes",
        version=__version__,
        description="Promo code groups, uploads, issuance and redemption. "
        "Authenticate with `Authorization: Bearer <API key>`; errors are RFC 9457 problems.",
    )
    app.state.db = db
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(codes_api.router)
    app.include_router(customers_api.router)

    registry = metrics.Registry()
    app.add_middleware(metrics.MetricsMiddleware, registry=registry)

    def limit_for(path: str) -> int:
        uploads = path.startswith("/api/") and path.endswith(UPLOAD_PATHS)
        return settings.max_upload_bytes if uploads else settings.max_body_bytes

    app.add_middleware(BodyLimit, limit_for=limit_for)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        with db.read() as session:
            session.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__, "database": db.dialect}

    @app.get("/metrics", include_in_schema=False)
    def metrics_page() -> PlainTextResponse:
        lines = registry.render() + metrics.database_lines(db)
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    return app
