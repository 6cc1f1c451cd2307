"""Security headers on every answer, whatever produced it (a route, an error handler, the
body limit, a static file): the web pages set their full set themselves (``web/kit``);
this adds the rest everywhere.

- ``X-Content-Type-Options: nosniff``: a JSON or CSV answer is never run as a page;
- ``Cache-Control: no-store`` on API answers: they carry codes and customer data, which
  no proxy or browser cache should keep (an answer that sets its own caching keeps it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

EVERYWHERE = ((b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"))
API = ((b"cache-control", b"no-store"),)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wanted = EVERYWHERE + (API if scope["path"].startswith("/api/") else ())

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in wanted if k not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
