"""``/metrics`` in the Prometheus text format.

Request counts and latencies are kept per process (each API process is scraped on its
own). Everything else is read from the database at scrape time, so it is the same in
every process and counts every worker — and stays cheap:

- code stock and issue totals from the group counters (≤ 64 rows a group, never the codes);
- mailing progress of the mailings being sent from their chunks (a few rows per thousand
  recipients) and their messages by status (an index range, as the progress page reads);
- messages waiting for delivery or failed, by channel (the delivery index);
- chunk leases of the mailings being sent.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

from sqlalchemy import bindparam, func, select, text

from promocodes.codes.models import CodeGroup, GroupCounter, Upload
from promocodes.db import Database
from promocodes.messaging.models import Mailing, MailingChunk
from promocodes.models import UTCDateTime, utcnow

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
        extra = _messaging_lines(s)
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
        "# HELP promocodes_codes_issued_total Codes issued per group (rate() is the issue rate).",
        "# TYPE promocodes_codes_issued_total counter",
    ]
    for gid, name, _total, _active, issued, _redeemed, _blocked in rows:
        lines.append(
            f'promocodes_codes_issued_total{{group_id="{gid}",group="{_esc(name)}"}} {issued or 0}'
        )
    lines += [
        "# HELP promocodes_codes_issued Codes issued from live groups.",
        "# TYPE promocodes_codes_issued gauge",
        f"promocodes_codes_issued {issued_total}",
        "# HELP promocodes_uploads Uploads recorded.",
        "# TYPE promocodes_uploads gauge",
        f"promocodes_uploads {uploads}",
    ]
    return lines + extra


def _messaging_lines(s: Any) -> list[str]:
    now = utcnow()
    sending = s.execute(
        select(Mailing.id, Mailing.name, Mailing.total).where(Mailing.status == "sending")
    ).all()
    ids = [m.id for m in sending]
    chunk_sums: dict[int, tuple[int, int]] = {}
    by_status: dict[tuple[int, str], int] = {}
    if ids:
        for mid, rendered, skipped in s.execute(
            select(
                MailingChunk.mailing_id,
                func.sum(MailingChunk.rendered),
                func.sum(MailingChunk.skipped),
            )
            .where(MailingChunk.mailing_id.in_(ids))
            .group_by(MailingChunk.mailing_id)
        ):
            chunk_sums[mid] = (int(rendered or 0), int(skipped or 0))
        for mid, status, n in s.execute(
            text(
                "SELECT mailing_id, status, count(*) FROM messages "
                "WHERE mailing_id IN :ids GROUP BY mailing_id, status"
            ).bindparams(bindparam("ids", expanding=True)),
            {"ids": ids},
        ):
            by_status[(mid, status)] = int(n)
    lines = [
        "# HELP promocodes_mailing_recipients Progress of each mailing being sent, by state.",
        "# TYPE promocodes_mailing_recipients gauge",
    ]
    for m in sending:
        rendered, skipped = chunk_sums.get(m.id, (0, 0))
        for state, value in (
            ("total", m.total),
            ("rendered", rendered),
            ("skipped", skipped),
            ("queued", by_status.get((m.id, "queued"), 0)),
            ("sent", by_status.get((m.id, "sent"), 0)),
            ("failed", by_status.get((m.id, "failed"), 0)),
        ):
            lines.append(
                f'promocodes_mailing_recipients{{mailing_id="{m.id}",mailing="{_esc(m.name)}",'
                f'state="{state}"}} {value}'
            )
    outbox = s.execute(
        text(
            "SELECT channel, status, count(*) FROM messages "
            "WHERE status IN ('queued', 'failed') GROUP BY channel, status"
        )
    ).all()
    counts = {(channel, status): int(n) for channel, status, n in outbox}
    lines += [
        "# HELP promocodes_messages_queued Messages waiting for delivery (SMTP, webhook).",
        "# TYPE promocodes_messages_queued gauge",
        "# HELP promocodes_messages_failed Messages whose delivery failed for good.",
        "# TYPE promocodes_messages_failed gauge",
    ]
    for channel in ("outbox", "smtp", "webhook"):
        for status in ("queued", "failed"):
            lines.append(
                f'promocodes_messages_{status}{{channel="{channel}"}} '
                f"{counts.get((channel, status), 0)}"
            )
    leases = s.execute(
        text(
            "SELECT c.status, c.lease_until < :now, count(*) FROM mailing_chunks c "
            "JOIN mailings m ON m.id = c.mailing_id "
            "WHERE m.status = 'sending' AND c.status IN ('pending', 'running') "
            "GROUP BY 1, 2"
        ).bindparams(bindparam("now", type_=UTCDateTime)),
        {"now": now},
    ).all()
    chunk_states = {"pending": 0, "leased": 0, "expired": 0}
    for status, expired, n in leases:
        state = "pending" if status == "pending" else "expired" if expired else "leased"
        chunk_states[state] += int(n)
    lines += [
        "# HELP promocodes_mailing_chunks Chunks of mailings being sent: waiting, leased by "
        "a worker, or leased by a worker that stopped renewing (expired, will be retaken).",
        "# TYPE promocodes_mailing_chunks gauge",
    ]
    for state, n in chunk_states.items():
        lines.append(f'promocodes_mailing_chunks{{state="{state}"}} {n}')
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
