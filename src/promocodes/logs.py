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
import random
import re
import sys
import time
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

MAX_LINE = 8_192
MAX_TRACEBACK = 65_536
# What the fixed parts of a line (time, level, logger, request id, keys) may take.
_FRAME = 512


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, the cut marked with its size."""
    if len(text) <= limit:
        return text
    kept = max(0, limit - len(f"…[truncated {len(text):,} chars]"))
    return f"{text[:kept]}…[truncated {len(text) - kept:,} chars]"


def _shares(texts: dict[str, str], budget: int) -> dict[str, int]:
    """How many characters each text may keep so that together they fit ``budget``: the
    short ones whole, the long ones an equal share of what is left."""
    limits: dict[str, int] = {}
    left = budget
    ordered = sorted(texts, key=lambda k: len(texts[k]))
    for i, key in enumerate(ordered):
        limits[key] = min(len(texts[key]), max(64, left // (len(ordered) - i)))
        left -= limits[key]
    return limits


def _clip_traceback(text: str) -> str:
    # The end of a traceback says what failed; its middle is frames.
    lines = [clip(line, MAX_LINE) for line in text.splitlines()]
    body = "\n".join(lines)
    if len(body) <= MAX_TRACEBACK:
        return body
    half = MAX_TRACEBACK // 2
    return f"{body[:half]}\n…[truncated {len(body) - 2 * half:,} chars]\n{body[-half:]}"


# New ids: 128 random bits, unique, not secret. Not ``uuid4``: it reads ``os.urandom``,
# which lets go of the GIL on the event loop thread for every request, and the loop then
# waits for a busy thread-pool thread to hand it back (the switch interval, 5 ms): that
# wait, not the bits, made ``uuid4`` the slowest call of a small request. Each server
# process seeds its own generator from the system's randomness at start.
_ids = random.Random()


def accept_id(value: str | None) -> str:
    """The caller's id when it is safe, else a new one."""
    if value and _SAFE_ID.fullmatch(value):
        return value
    return f"{_ids.getrandbits(128):032x}"


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
        _bound_json(entry)
        if record.exc_info:
            entry["exception"] = _clip_traceback(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


def _bound_json(entry: dict[str, Any]) -> None:
    """Cut the message and the extra fields of a JSON entry to share ``MAX_LINE``."""
    texts = {
        k: json.dumps(v, default=str, ensure_ascii=False)
        for k, v in entry.items()
        if k not in ("time", "level", "logger", "request_id")
    }
    if sum(map(len, texts.values())) <= MAX_LINE - _FRAME:
        return
    for key, limit in _shares(texts, MAX_LINE - _FRAME).items():
        if len(texts[key]) > limit:
            value = entry[key]
            text = value if isinstance(value, str) else texts[key]
            cut = clip(text, limit)
            if len(json.dumps(cut, ensure_ascii=False)) > limit + 2:  # escapes grow it
                cut = clip(text, limit // 6)
            entry[key] = cut


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
        texts = {k: str(v) for k, v in extras.items()}
        head, sep, tail = line.partition("\n")  # keep a traceback below the first line
        texts[""] = head  # the time, level, logger and message
        limits = _shares(texts, MAX_LINE - _FRAME)
        head = clip(texts.pop(""), limits.pop(""))
        fields = " ".join(f"{k}={clip(v, limits[k])}" for k, v in texts.items())
        if rid:
            head += f" request_id={rid}"
        if fields:
            head += f" {fields}"
        return head + sep + (_clip_traceback(tail) if tail else "")


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
            if access_log.isEnabledFor(logging.INFO):  # the line's making costs too
                _log_access(scope, status, started)
            request_id.reset(token)


def _log_access(scope: Scope, status: int, started: float) -> None:
    """The one access line of a request: method, path, status, duration, API key."""
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
