"""The ASGI application: API, web UI and static files (``create_app``)."""

from __future__ import annotations

import gc
import importlib.util
import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.exc import SQLAlchemyError

from promocodes import __version__, apidocs, logs, metrics, migrate
from promocodes.analytics import api as analytics_api
from promocodes.apikit import BodyLimit, install_error_handlers
from promocodes.audit import api as audit_api
from promocodes.codes import api as codes_api
from promocodes.codes import redemption_api, upload_api, uploads
from promocodes.codes.redemption_file import MAX_FILE_BYTES as REDEMPTION_FILE_BYTES
from promocodes.config import Settings
from promocodes.customers import api as customers_api
from promocodes.db import Database
from promocodes.dispatch import Branch, TopRoute, shortcut_unrouted
from promocodes.groupcommit import GroupCommit
from promocodes.headers import SecurityHeaders
from promocodes.keycache import KeyCache
from promocodes.messaging import api as messaging_api
from promocodes.ratelimit import RateLimiter
from promocodes.segments import api as segments_api
from promocodes.web import routes as web

UPLOAD_PATHS = ("/codes", "/customers/import")
# The API's routers, by domain.
ROUTERS = (
    redemption_api.router,
    codes_api.router,
    upload_api.router,
    customers_api.router,
    segments_api.router,
    messaging_api.router,
    analytics_api.router,
    audit_api.router,
)


class WorkerState(Protocol):
    @property
    def alive(self) -> bool: ...


def _state(app: FastAPI, settings: Settings, db: Database, registry: metrics.Registry) -> None:
    """What the routes and dependencies take from the app (``request.app.state``)."""
    app.state.db = db
    app.state.settings = settings
    app.state.group_commit = GroupCommit(db, on_commit=registry.committed)
    app.state.key_cache = KeyCache(settings.api_key_cache_seconds)
    app.state.rate_limiter = RateLimiter(
        settings.api_rate_limit_per_minute, settings.api_rate_limit_burst
    )


def create_app(
    settings: Settings | None = None,
    database: Database | None = None,
    *,
    worker: WorkerState | None = None,
) -> FastAPI:
    """``worker``: the in-process worker of ``serve``, whose state ``/readyz`` reports."""
    settings = settings or Settings()
    db = database or Database(settings.database_url, settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        with db.write() as session:
            uploads.fail_interrupted(session)
        yield

    app = FastAPI(
        lifespan=lifespan,
        # /docs is served from packaged assets (apidocs), never from a CDN.
        docs_url=None,
        redoc_url=None,
        title="Promocodes",
        version=__version__,
        description="Promo code groups, uploads, issuance and redemption. "
        "Authenticate with `Authorization: Bearer <API key>`; errors are RFC 9457 problems.",
        **_without_idle_telemetry(),
    )
    # Routes of the app's own (``/docs``, ``_operations``): cheap to pass over (``dispatch``).
    app.router.route_class = TopRoute
    registry = metrics.Registry()
    _state(app, settings, db, registry)
    install_error_handlers(app)
    # One branch for the API: a path outside it is passed over in one step (``dispatch``).
    api = Branch()
    for router in ROUTERS:
        api.take(router)
    app.include_router(api)
    web.install(app)
    apidocs.install(app)

    app.add_middleware(metrics.MetricsMiddleware, registry=registry)

    def limit_for(path: str) -> int:
        if path == redemption_api.PATH:
            return REDEMPTION_FILE_BYTES
        uploads = (path.startswith("/api/") and path.endswith(UPLOAD_PATHS)) or web.is_upload(path)
        return settings.max_upload_bytes if uploads else settings.max_body_bytes

    app.add_middleware(BodyLimit, limit_for=limit_for)
    app.add_middleware(SecurityHeaders)
    # Outermost, so every answer (a 413 from the body limit too) has its id and log line.
    app.add_middleware(logs.RequestLog)
    _operations(app, db, registry, worker)
    shortcut_unrouted(app.router)
    return app


def _without_idle_telemetry() -> dict[str, Any]:
    """FastAPI's own OpenTelemetry (spans, metrics, logs) off where it can record nothing:
    with the OpenTelemetry API alone, no SDK, no provider can be set, yet FastAPI asks
    the three global providers whether one was on every request (~3 µs of a 404's ~75).
    Where an SDK is installed it stays on, as FastAPI sets it."""
    if "telemetry" not in inspect.signature(FastAPI).parameters:
        return {}  # a FastAPI without it
    if importlib.util.find_spec("opentelemetry.sdk") is not None:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


def _operations(
    app: FastAPI, db: Database, registry: metrics.Registry, worker: WorkerState | None
) -> None:
    """Health, readiness and metrics: for the operator's probes and scrapers."""

    # HEAD too: uptime checks often ask with HEAD, and a 405 reads as "down".
    @app.api_route("/healthz", methods=["GET", "HEAD"], include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers. No database work, so a database outage does
        not make every process look dead and get restarted; ``/readyz`` checks it."""
        return {"status": "ok", "version": __version__, "database": db.dialect}

    @app.api_route("/readyz", methods=["GET", "HEAD"], include_in_schema=False)
    def readyz() -> JSONResponse:
        """Ready to serve: the database answers and its schema is current."""
        try:
            behind = migrate.pending(db.engine)
        except SQLAlchemyError as exc:
            return JSONResponse(
                {"ready": False, "reason": f"database unreachable: {exc.__class__.__name__}"}, 503
            )
        if behind:
            return JSONResponse({"ready": False, "reason": "migrations pending"}, 503)
        if worker is not None and not worker.alive:
            reason = "the in-process worker is not running: mailings and deliveries wait"
            return JSONResponse({"ready": False, "reason": reason, "worker": "stopped"}, 503)
        state = {} if worker is None else {"worker": "running"}
        return JSONResponse({"ready": True, **state})

    @app.get("/metrics", include_in_schema=False)
    def metrics_page(request: Request) -> PlainTextResponse:
        settings: Settings = request.app.state.settings
        if settings.metrics_token and not metrics.authorized(
            request.headers.get("authorization", ""), settings.metrics_token
        ):
            return PlainTextResponse(
                "send the metrics token as 'Authorization: Bearer <token>'\n",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        lines = registry.render() + metrics.database_lines(db, names=settings.metrics_names)
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")


def app_factory() -> FastAPI:
    """The app of one `serve --workers N` process (uvicorn imports it by name in each
    worker process, ``factory=True``): settings from the environment, our logging."""
    settings = Settings()
    logs.configure(settings)
    if problem := settings.unsafe_to_start():
        raise SystemExit(f"Error: {problem}")
    return for_serving(create_app(settings))


def for_serving(app: FastAPI) -> FastAPI:
    """``app``, about to serve for the life of the process. What exists now (modules,
    the app, its routes and schemas: ~190,000 objects) lives as long as the process, so
    it is frozen out of the cyclic collector's view: a full collection walked it all,
    stalling every request in flight for 100-190 ms (``gc.callbacks`` under ``wrk``),
    which set the p99. Requests' own garbage is still collected."""
    gc.collect()
    gc.freeze()
    return app
