"""Logging: text for people, JSON lines for collectors, and a request id on every record.

``configure`` installs one handler on the root logger (stderr) and routes uvicorn's
loggers through it; uvicorn's own access log is replaced by ``RequestLog``, which knows
the request id and the API key. The id comes from the caller's ``X-Request-ID`` when it
is short and safe to echo into logs and headers, else a fresh one is made; it travels in
a context variable, so every record logged while handling the request carries it (sync
routes run in a thread pool that copies the context).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from promocodes.config import Settings

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

HEADER = "X-Request-ID"
# Ids we accept from callers: they are written into every log line and echoed back, so
# nothing that could forge a line, a field or a header.
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# Attributes every LogRecord has; anything else was passed with ``extra=`` and is logged.
# (uvicorn adds ``color_message``, the same text with ANSI colours.)
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "color_message",
}
# The access line's message already says these; the text format does not repeat them.
_IN_ACCESS_MESSAGE = {"method", "path", "status", "duration_ms"}
_OURS = "promocodes_handler"

access_log = logging.getLogger("promocodes.access")


def accept_id(value: str | None) -> str:
    """The caller's id when it is safe, else a new one."""
    if value and _SAFE_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in _extras(record).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time level logger [request id] message key=value …``"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rid = getattr(record, "request_id", None)
        extras = _extras(record)
        if record.name == access_log.name:
            extras = {k: v for k, v in extras.items() if k not in _IN_ACCESS_MESSAGE}
        fields = " ".join(f"{k}={v}" for k, v in extras.items())
        head, sep, tail = line.partition("\n")  # keep a traceback below the first line
        if rid:
            head += f" request_id={rid}"
        if fields:
            head += f" {fields}"
        return head + sep + tail


def configure(settings: Settings) -> None:
    """Install our handler on the root logger (again: replaces the previous one)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    setattr(handler, _OURS, True)
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    # Our access line replaces uvicorn's (which has neither the request id nor the key).
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers = []
    uvicorn_access.propagate = False
    # Alembic narrates every start ("Context impl SQLiteImpl."): noise unless debugging.
    # Applied migrations are still visible: `promocodes db upgrade` says what it did.
    if root.level > logging.DEBUG:
        logging.getLogger("alembic").setLevel(logging.WARNING)


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestLog:
    """Pure ASGI (like ``MetricsMiddleware``, it must not wrap the body stream): sets the
    request id for the request, returns it in ``X-Request-ID`` and logs one access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers") or []:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        rid = accept_id(incoming)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", rid.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, with_id)
        finally:
            ms = round((time.perf_counter() - started) * 1000, 1)
            # Set by the API key dependency (apikit.api_key) when the call was authenticated.
            state = scope.get("state") or {}
            # Percent-encoded again (as uvicorn's own access log does): the decoded path
            # may hold a line break, and a text log line must not forge another.
            path = quote(scope["path"], safe="/:@!$&'()*+,;=-._~")
            extra: dict[str, Any] = {
                "method": scope["method"],
                "path": path,
                "status": status,
                "duration_ms": ms,
            }
            if "api_key_id" in state:
                extra["api_key_id"] = state["api_key_id"]
            access_log.info("%s %s %s %.1fms", scope["method"], path, status, ms, extra=extra)
            request_id.reset(token)
