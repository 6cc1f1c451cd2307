"""Signed webhook POSTs, the one way the product calls out over HTTP: messages on the
webhook channel (messaging/delivery.py) and stock alerts (codes/alerts.py) are both JSON
bodies signed with ``webhook_secret``, so a receiver verifies them with one function
(docs/integrators.md shows it).

The signature is ``sha256=<hex>`` of HMAC-SHA256 over ``"<timestamp>." + body``: the
timestamp is signed with the body, so a captured request cannot be replayed later with
a fresh timestamp.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

import httpx


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def post(
    url: str,
    body: bytes,
    *,
    secret: str,
    timeout: float,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """POST ``body`` (JSON) signed now. Raises ``httpx.HTTPError`` when no answer came."""
    timestamp = str(int(time.time()))
    signed = {
        "Content-Type": "application/json",
        **(headers or {}),
        "X-Promocodes-Timestamp": timestamp,
        "X-Promocodes-Signature": signature(secret, timestamp, body),
    }
    return httpx.post(url, content=body, headers=signed, timeout=timeout)
