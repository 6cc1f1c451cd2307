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

import hmac
import os
import time
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

from promocodes.codes import service as codes
from promocodes.codes import uploads
from promocodes.codes.schemas import GroupOut
from promocodes.codes.stock import state_of
from promocodes.db import Database
from promocodes.messaging import service as messaging
from promocodes.messaging.models import CHANNELS
from promocodes.models import utcnow

# Where the server processes of ``serve --workers N`` keep their figures (prometheus-
# client's multiprocess mode, read when it is imported: set before the processes start).
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
# Only the figures; a ``_created`` timestamp series per label set is noise here.
# (prometheus-client leaves these two functions unannotated: hence the ignores.)
disable_created_metrics()  # type: ignore[no-untyped-call]
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Registry:
    """HTTP request counts and latencies, kept by prometheus-client: per process, or
    summed over every server process of ``serve --workers N`` — then ``serve`` sets
    ``PROMETHEUS_MULTIPROC_DIR`` before the processes start, each writes its figures to
    files there, and any of them answers a scrape with the sum."""

    def __init__(self) -> None:
        self._own = CollectorRegistry()
        self.requests = Counter(
            "promocodes_http_requests",
            "HTTP requests by route and status.",
            ["method", "route", "status"],
            registry=self._own,
        )
        self.latency = Histogram(
            "promocodes_http_request_seconds",
            "HTTP request latency.",
            ["method", "route"],
            buckets=BUCKETS,
            registry=self._own,
        )
        # The API's grouped writes (``groupcommit.py``): writes over commits is how many
        # issues share a commit, one disk flush, on SQLite (one each on PostgreSQL).
        self.commits = Counter(
            "promocodes_write_commits",
            "Transactions committed for the API's grouped writes (issues).",
            registry=self._own,
        )
        self.grouped_writes = Counter(
            "promocodes_grouped_writes",
            "API writes (issues) that stood in those transactions.",
            registry=self._own,
        )

        # The series of each (method, route, status), found once: ``labels()`` builds and
        # checks its key on every call, a cost of every request.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def committed(self, writes: int) -> None:
        """One transaction of grouped writes committed, with ``writes`` that stood."""
        self.commits.inc()
        self.grouped_writes.inc(writes)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            self._series[key] = series
        series[0].inc()
        series[1].observe(seconds)

    def render(self) -> list[str]:
        if os.environ.get(MULTIPROCESS_DIR):
            every = CollectorRegistry()
            multiprocess.MultiProcessCollector(every)  # type: ignore[no-untyped-call]
            return generate_latest(every).decode().splitlines()
        return generate_latest(self._own).decode().splitlines()


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def authorized(header: str, token: str) -> bool:
    """Whether an ``Authorization`` header carries the metrics token (compared in constant
    time: the answer's timing says nothing about the token)."""
    sent = header[7:].strip() if header[:7].lower() == "bearer " else ""
    return hmac.compare_digest(sent.encode(), token.encode())


def database_lines(db: Database, *, names: bool = True) -> list[str]:
    """The metrics read from the database at scrape time (one short read). Without
    ``names``, groups and mailings are labelled by id only (their names can be business
    secrets a metrics system should not hold)."""
    with db.read() as s:
        groups = codes.all_live(s)
        uploads_total = uploads.count(s)
        sending = messaging.sending(s)
        backlog = messaging.backlog(s)
        chunk_states = messaging.chunk_states(s)
    return (
        _group_lines(groups, uploads_total, names)
        + _mailing_lines(sending, names)
        + _backlog_lines(backlog)
        + _chunk_lines(chunk_states)
    )


def _label(kind: str, id_: int, name: str, names: bool) -> str:
    """``group_id="1",group="Autumn"`` (or the id alone, without names)."""
    return f'{kind}_id="{id_}",{kind}="{_esc(name)}"' if names else f'{kind}_id="{id_}"'


def _group_lines(groups: list[GroupOut], uploads_total: int, names: bool) -> list[str]:
    lines = [
        "# HELP promocodes_group_codes Codes per group and state (from exact counters).",
        "# TYPE promocodes_group_codes gauge",
    ]
    for g in groups:
        for state in ("total", "active", "issued", "redeemed", "blocked"):
            lines.append(
                f"promocodes_group_codes{{{_label('group', g.id, g.name, names)},"
                f'state="{state}"}} {getattr(g, state)}'
            )
    lines += [
        "# HELP promocodes_codes_issued_total Codes issued per group (rate() is the issue rate).",
        "# TYPE promocodes_codes_issued_total counter",
    ]
    for g in groups:
        lines.append(
            f"promocodes_codes_issued_total{{{_label('group', g.id, g.name, names)}}} {g.issued}"
        )
    lines += [
        "# HELP promocodes_group_stock_condition Stock alert conditions that hold for a group "
        "now (1): low-stock, exhausted, expiring-soon (the alerts' and the badges' rule).",
        "# TYPE promocodes_group_stock_condition gauge",
    ]
    now = utcnow()
    for g in groups:
        for condition in sorted(state_of(g, active=g.active, total=g.total, now=now).conditions):
            lines.append(
                f"promocodes_group_stock_condition{{{_label('group', g.id, g.name, names)},"
                f'condition="{condition}"}} 1'
            )
    return [
        *lines,
        "# HELP promocodes_codes_issued Codes issued from live groups.",
        "# TYPE promocodes_codes_issued gauge",
        f"promocodes_codes_issued {sum(g.issued for g in groups)}",
        "# HELP promocodes_uploads Uploads recorded.",
        "# TYPE promocodes_uploads gauge",
        f"promocodes_uploads {uploads_total}",
    ]


def _mailing_lines(sending: list[messaging.Sending], names: bool) -> list[str]:
    lines = [
        "# HELP promocodes_mailing_recipients Progress of each mailing being sent, by state.",
        "# TYPE promocodes_mailing_recipients gauge",
    ]
    for m in sending:
        p = m.progress
        for state, value in (
            ("total", m.total),
            ("rendered", p.rendered),
            ("skipped", p.skipped),
            ("queued", p.queued),
            ("sent", p.sent),
            ("failed", p.failed),
        ):
            lines.append(
                f"promocodes_mailing_recipients{{{_label('mailing', m.id, m.name, names)},"
                f'state="{state}"}} {value}'
            )
    return lines


def _backlog_lines(backlog: dict[tuple[str, str], int]) -> list[str]:
    lines = [
        "# HELP promocodes_messages_queued Messages waiting for delivery (SMTP, webhook).",
        "# TYPE promocodes_messages_queued gauge",
        "# HELP promocodes_messages_failed Messages whose delivery failed for good.",
        "# TYPE promocodes_messages_failed gauge",
    ]
    for channel in CHANNELS:
        for status in ("queued", "failed"):
            lines.append(
                f'promocodes_messages_{status}{{channel="{channel}"}} '
                f"{backlog.get((channel, status), 0)}"
            )
    return lines


def _chunk_lines(states: dict[str, int]) -> list[str]:
    lines = [
        "# HELP promocodes_mailing_chunks Chunks of mailings being sent: waiting, leased by "
        "a worker, or leased by a worker that stopped renewing (expired, will be retaken).",
        "# TYPE promocodes_mailing_chunks gauge",
    ]
    for state, n in states.items():
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
