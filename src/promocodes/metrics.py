"""``/metrics`` in the Prometheus text format.

Request counts and latencies are kept per process (each API process is scraped on its
own). Code stock and issue totals are read from the group counters at scrape time, so
they are exact across every process and worker: a few rows per group, never the codes.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select

from promocodes.codes.models import CodeGroup, GroupCounter, Upload
from promocodes.db import Database

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.buckets: dict[tuple[str, str], list[int]] = {}
        self.sums: dict[tuple[str, str], float] = defaultdict(float)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            counts = self.buckets.setdefault((method, route), [0] * (len(BUCKETS) + 1))
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
            counts[-1] += 1
            self.sums[(method, route)] += seconds

    def render(self) -> list[str]:
        lines = [
            "# HELP promocodes_http_requests_total HTTP requests by route and status.",
            "# TYPE promocodes_http_requests_total counter",
        ]
        with self._lock:
            for (method, route, status), n in sorted(self.requests.items()):
                lines.append(
                    f'promocodes_http_requests_total{{method="{method}",route="{_esc(route)}",'
                    f'status="{status}"}} {n}'
                )
            lines += [
                "# HELP promocodes_http_request_seconds HTTP request latency.",
                "# TYPE promocodes_http_request_seconds histogram",
            ]
            for (method, route), counts in sorted(self.buckets.items()):
                labels = f'method="{method}",route="{_esc(route)}"'
                for bound, n in zip((*BUCKETS, "+Inf"), counts, strict=True):
                    lines.append(
                        f'promocodes_http_request_seconds_bucket{{{labels},le="{bound}"}} {n}'
                    )
                lines.append(f"promocodes_http_request_seconds_count{{{labels}}} {counts[-1]}")
                lines.append(
                    f"promocodes_http_request_seconds_sum{{{labels}}} "
                    f"{self.sums[(method, route)]:.6f}"
                )
        return lines


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def database_lines(db: Database) -> list[str]:
    c = GroupCounter
    with db.read() as s:
        rows = s.execute(
            select(
                CodeGroup.id,
                CodeGroup.name,
                func.sum(c.total),
                func.sum(c.available),
                func.sum(c.issued),
                func.sum(c.redeemed),
                func.sum(c.blocked),
            )
            .join(c, c.group_id == CodeGroup.id)
            .where(CodeGroup.archived_at.is_(None))
            .group_by(CodeGroup.id, CodeGroup.name)
        ).all()
        uploads = s.scalar(select(func.count()).select_from(Upload)) or 0
    lines = [
        "# HELP promocodes_group_codes Codes per group and state (from exact counters).",
        "# TYPE promocodes_group_codes gauge",
    ]
    issued_total = 0
    for gid, name, total, active, issued, redeemed, blocked in rows:
        issued_total += issued or 0
        for state, value in (
            ("total", total),
            ("active", active),
            ("issued", issued),
            ("redeemed", redeemed),
            ("blocked", blocked),
        ):
            lines.append(
                f'promocodes_group_codes{{group_id="{gid}",group="{_esc(name)}",'
                f'state="{state}"}} {value or 0}'
            )
    lines += [
        "# HELP promocodes_codes_issued Codes issued from live groups.",
        "# TYPE promocodes_codes_issued gauge",
        f"promocodes_codes_issued {issued_total}",
        "# HELP promocodes_uploads Uploads recorded.",
        "# TYPE promocodes_uploads gauge",
        f"promocodes_uploads {uploads}",
    ]
    return lines


class MetricsMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): it must not wrap the request body stream, which
    the body limit and the streaming uploads rely on."""

    def __init__(self, app: Any, registry: Registry) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            # The route template, not the raw path: label values must not grow with ids.
            path = getattr(scope.get("route"), "path", "unmatched")
            self.registry.observe(scope["method"], path, status, time.perf_counter() - started)
