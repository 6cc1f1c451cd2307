"""Stock alerts for groups: low stock, exhausted, expiring soon.

A periodic scan (run by the workers) compares each live group with its conditions and
records an alert when a condition starts to hold — once per episode, not on every scan:
``group_alert_state`` remembers which conditions currently hold. Undelivered alerts go to
the configured webhook (HMAC-signed like message webhooks) and are listed by the API.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from promocodes.codes import repository as repo
from promocodes.codes.models import INITIAL, Alert, AlertState, CodeGroup, Issuance
from promocodes.config import Settings
from promocodes.db import Database
from promocodes.models import utcnow

EXPIRING_SOON = timedelta(days=7)
RATE_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class Stock:
    group_id: int
    active: int
    issued_last_7_days: int
    rate_per_day: float
    days_until_empty: float | None
    low_stock: bool


def stock(session: Session, group: CodeGroup, now: datetime | None = None) -> Stock:
    """How long the group's codes last at the recent issue rate."""
    now = now or utcnow()
    active = repo.counts(session, [group.id])[group.id].active
    recent = session.scalar(
        select(func.count()).where(
            Issuance.group_id == group.id, Issuance.kind == INITIAL,
            Issuance.voided_at.is_(None), Issuance.issued_at >= now - RATE_WINDOW,
        )
    ) or 0  # fmt: skip
    rate = recent / RATE_WINDOW.days
    return Stock(
        group_id=group.id, active=active, issued_last_7_days=recent, rate_per_day=rate,
        days_until_empty=round(active / rate, 1) if rate else None,
        low_stock=group.low_stock_threshold is not None and active <= group.low_stock_threshold,
    )  # fmt: skip


def _conditions(group: CodeGroup, active: int, now: datetime) -> set[str]:
    held = set()
    if active == 0:
        held.add("exhausted")
    elif group.low_stock_threshold is not None and active <= group.low_stock_threshold:
        held.add("low-stock")
    if group.valid_until is not None and now < group.valid_until <= now + EXPIRING_SOON:
        held.add("expiring-soon")
    return held


def scan(session: Session, now: datetime | None = None) -> list[Alert]:
    """Record an alert for every condition that began to hold since the last scan."""
    now = now or utcnow()
    groups = list(session.scalars(select(CodeGroup).where(CodeGroup.archived_at.is_(None))))
    counts = repo.counts(session, [g.id for g in groups])
    states = {(s.group_id, s.kind): s for s in session.scalars(select(AlertState))}
    created = []
    for group in groups:
        active = counts[group.id].active
        held = _conditions(group, active, now) if counts[group.id].total else set()
        for kind in ("low-stock", "exhausted", "expiring-soon"):
            state = states.get((group.id, kind))
            if kind in held and state is None:
                session.add(AlertState(group_id=group.id, kind=kind, since=now))
                alert = Alert(group_id=group.id, kind=kind, created_at=now, payload=json.dumps({
                    "group_id": group.id, "group": group.name, "kind": kind, "active": active,
                    "valid_until": group.valid_until.isoformat() if group.valid_until else None,
                }))  # fmt: skip
                session.add(alert)
                created.append(alert)
            elif kind not in held and state is not None:
                session.delete(state)
    session.flush()
    return created


def deliver(db: Database, settings: Settings, limit: int = 20) -> int:
    """POST undelivered alerts to the alerts webhook (if one is configured)."""
    if not settings.alerts_webhook_url:
        return 0
    from promocodes.messaging.delivery import signature

    with db.read() as session:
        pending = list(session.scalars(
            select(Alert).where(Alert.delivered_at.is_(None)).order_by(Alert.id).limit(limit)
        ))  # fmt: skip
        session.expunge_all()
    sent = 0
    for alert in pending:
        body = alert.payload.encode()
        stamp = str(int(time.time()))
        try:
            response = httpx.post(
                settings.alerts_webhook_url,
                content=body,
                timeout=10,
                headers={
                    "Content-Type": "application/json",
                    "X-Promocodes-Timestamp": stamp,
                    "X-Promocodes-Signature": signature(settings.webhook_secret, stamp, body),
                },
            )
        except httpx.HTTPError:
            break  # the endpoint is down: try again on a later scan
        if response.is_success:
            with db.write() as session:
                row = session.get(Alert, alert.id)
                if row is not None:
                    row.delivered_at = utcnow()
            sent += 1
    return sent


def recent(session: Session, limit: int = 100) -> list[Alert]:
    return list(session.scalars(select(Alert).order_by(Alert.id.desc()).limit(limit)))
