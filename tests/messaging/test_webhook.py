"""Webhook delivery (signed, retried until the receiver accepts) and the SMTP test send."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import select

from promocodes.config import Settings
from promocodes.db import Database
from promocodes.messaging import mailings
from promocodes.messaging.models import Message
from promocodes.worker import Worker, run_until
from tests.api.conftest import client_for
from tests.factories import SENDING, counts, group_with_codes
from tests.live import free_port
from tests.messaging.test_mailings import EVERYONE, mailing, people, segment


def test_webhook_is_signed_and_retried_until_accepted(db: Database) -> None:
    calls: list[tuple[dict[str, Any], dict[str, str]]] = []
    bodies: list[bytes] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            calls.append((json.loads(body), dict(self.headers)))
            # The first delivery attempt fails: the worker must try again.
            self.send_response(503 if len(calls) == 1 else 200)
            self.end_headers()
            bodies.append(body)

        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    server = HTTPServer(("127.0.0.1", port), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = Settings(
        database_url=db.url,
        webhook_url=f"http://127.0.0.1:{port}/hook",
        webhook_secret="k",
        delivery_backoff_seconds=0.01,
    )
    try:
        group_with_codes(db, "G", ["W1", "W2"])
        people(db, 1)
        m = mailing(
            db, segment(db, "All", EVERYONE), "{{ client.promocode('G') }}", channel="webhook"
        )
        with db.write() as s:
            mailings.send(s, m, settings=SENDING)
        run_until(db, settings, timeout=30)
        for _ in range(50):
            if Worker(db, settings).deliver() == 0 and len(calls) >= 2:
                break
            threading.Event().wait(0.02)
    finally:
        server.shutdown()
    assert len(calls) == 2
    payload, headers = calls[1]
    assert (
        payload["body_text"] == "W1" and headers["X-Promocodes-Message"] == payload["message_key"]
    )
    # The receiving system knows the customer by their own id, as the API does.
    assert payload["customer_id"] == "p0"
    body = bodies[1]
    signed = headers["X-Promocodes-Timestamp"].encode() + b"." + body
    assert (
        headers["X-Promocodes-Signature"]
        == "sha256=" + hmac.new(b"k", signed, hashlib.sha256).hexdigest()
    )
    with db.read() as s:
        message = s.scalars(select(Message)).one()
    assert (message.status, message.attempts) == ("sent", 2)


def test_test_send_delivers_the_preview_and_consumes_nothing(db: Database) -> None:
    received: list[bytes] = []

    class Inbox:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope.content)
            return "250 OK"

    port = free_port()
    smtp = Controller(Inbox(), hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        gid = group_with_codes(db, "G", ["T1"])
        people(db, 1)
        m = mailing(db, segment(db, "All", EVERYONE), "Code: {{ client.promocode('G') }}")
        api: TestClient = client_for(db, smtp_host="127.0.0.1", smtp_port=port)
        response = api.post(f"/api/v1/mailings/{m}/test", json={"email": "me@example.com"})
        assert response.status_code == 200, response.text
        # No SMTP server configured: this server's state, refused as a mailing's send is
        # (it was a 502, a 5xx the contract run reached by following a new mailing's link).
        unconfigured = client_for(db).post(
            f"/api/v1/mailings/{m}/test", json={"email": "me@example.com"}
        )
        assert unconfigured.status_code == 409, unconfigured.text
        assert unconfigured.json()["type"] == "channel-not-configured"
        assert "no SMTP server is configured" in unconfigured.json()["detail"]
        # A configured server that cannot be reached: a failed gateway, documented.
        unreachable = client_for(db, smtp_host="127.0.0.1", smtp_port=free_port()).post(
            f"/api/v1/mailings/{m}/test", json={"email": "me@example.com"}
        )
        assert unreachable.status_code == 502, unreachable.text
        assert unreachable.json()["type"] == "delivery-failed"
    finally:
        smtp.stop()
    assert len(received) == 1 and b"PREVIEW" in received[0]
    assert counts(db, gid).active == 1
