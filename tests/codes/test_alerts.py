"""Stock alerts: once per episode, delivered signed to a webhook; days until empty."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from promocodes.codes import alerts
from promocodes.codes.schemas import GroupUpdate
from promocodes.codes.service import get_group, update_group
from promocodes.config import Settings
from promocodes.db import Database
from promocodes.worker import Worker
from tests.factories import group_with_codes, issue, make_customer
from tests.live import free_port


def _scan(db: Database) -> list[str]:
    with db.write() as s:
        return [a.kind for a in alerts.scan(s)]


def test_low_stock_exhausted_and_expiring_are_alerted_once(db: Database) -> None:
    gid = group_with_codes(db, "G", ["A", "B", "C"])
    with db.write() as s:
        update_group(s, gid, GroupUpdate(low_stock_threshold=2))
        for who in ("x", "y", "z"):
            make_customer(s, who)
    assert _scan(db) == []
    issue(db, "x", gid, "k1")
    assert _scan(db) == ["low-stock"]
    assert _scan(db) == []  # still low: not alerted again
    issue(db, "y", gid, "k2")
    issue(db, "z", gid, "k3")
    assert _scan(db) == ["exhausted"]
    with db.write() as s:
        update_group(s, gid, GroupUpdate(valid_until=datetime.now(UTC) + timedelta(days=2)))
    assert _scan(db) == ["expiring-soon"]
    with db.read() as s:
        st = alerts.stock(s, get_group(s, gid))
    assert (st.active, st.issued_last_7_days, st.low_stock) == (0, 3, True)
    assert st.days_until_empty == 0.0


def test_alerts_are_delivered_signed(db: Database) -> None:
    received: list[tuple[dict[str, Any], str, str]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(
                (
                    json.loads(body),
                    self.headers["X-Promocodes-Signature"],
                    self.headers["X-Promocodes-Timestamp"] + "." + body.decode(),
                )
            )
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    server = HTTPServer(("127.0.0.1", port), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        group_with_codes(db, "Empty soon", [])
        gid = group_with_codes(db, "One", ["ONLY"])
        with db.write() as s:
            make_customer(s, "x")
        issue(db, "x", gid, "k")
        _scan(db)
        settings = Settings(
            database_url=db.url,
            alerts_webhook_url=f"http://127.0.0.1:{port}/",
            webhook_secret="s3cret",
        )
        Worker(db, settings).scan_stock()
        Worker(db, settings).scan_stock()  # delivered once
        with db.read() as s:
            assert alerts.pending(s) == []
    finally:
        server.shutdown()
    ((payload, sig, signed),) = received
    assert payload["kind"] == "exhausted" and payload["group"] == "One"
    expected = hmac.new(b"s3cret", signed.encode(), hashlib.sha256).hexdigest()
    assert sig == f"sha256={expected}"
