"""Stock alerts for groups (low stock, exhausted, expiring soon), and how long a group's
codes last.

A periodic scan (run by the workers) compares each live group with its stock state
(``stock.py``) and records an alert when a condition starts to hold — once per episode,
not on every scan: ``group_alert_state`` remembers which conditions currently hold.
Undelivered alerts go to the configured webhook (signed like message webhooks) and are
listed by the API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy.orm import Session

from promocodes import webhooks
from promocodes.audit.service import Actor, Target, record
from promocodes.codes import issuance_repository as history
from promocodes.codes import repository as repo
from promocodes.codes.models import Alert, AlertState, CodeGroup
from promocodes.codes.schemas import AlertOut, StockOut
from promocodes.codes.stock import CONDITIONS, state_of
from promocodes.config import Settings
from promocodes.models import utcnow

RATE_WINDOW = timedelta(days=7)


def stock(session: Session, group: CodeGroup, now: datetime | None = None) -> StockOut:
    """How long the group's codes last at the issue rate of the last ``RATE_WINDOW``."""
    now = now or utcnow()
    counts = repo.counts(session, [group.id])[group.id]
    recent = history.initial_issues_since(session, group.id, now - RATE_WINDOW)
    rate = recent / RATE_WINDOW.days
    state = state_of(group, active=counts.active, total=counts.total, now=now)
    return StockOut(
        group_id=group.id,
        active=counts.active,
        issued_last_7_days=recent,
        rate_per_day=rate,
        days_until_empty=round(counts.active / rate, 1) if rate else None,
        low_stock=state.low,
    )


def scan(session: Session, now: datetime | None = None) -> list[Alert]:
    """Record an alert for every condition that began to hold since the last scan."""
    now = now or utcnow()
    groups = repo.all_live_groups(session)
    counts = repo.counts(session, [g.id for g in groups])
    states = {(s.group_id, s.kind): s for s in repo.alert_states(session)}
    created = []
    for group in groups:
        active, total = counts[group.id].active, counts[group.id].total
        held = state_of(group, active=active, total=total, now=now).conditions
        for kind in CONDITIONS:
            state = states.get((group.id, kind))
            if kind in held and state is None:
                repo.add(session, AlertState(group_id=group.id, kind=kind, since=now))
                created.append(repo.add(session, _alert(group, kind, active, now)))
            elif kind not in held and state is not None:
                repo.remove(session, state)
    return created


def _alert(group: CodeGroup, kind: str, active: int, now: datetime) -> Alert:
    payload = {
        "group_id": group.id,
        "group": group.name,
        "kind": kind,
        "active": active,
        "valid_until": group.valid_until.isoformat() if group.valid_until else None,
    }
    return Alert(group_id=group.id, kind=kind, created_at=now, payload=json.dumps(payload))


@dataclass(frozen=True, slots=True)
class Pending:
    """An alert not delivered yet, as the webhook receives it."""

    id: int
    payload: str


def pending(session: Session, limit: int = 20) -> list[Pending]:
    """The oldest alerts not delivered yet."""
    return [Pending(a.id, a.payload) for a in repo.undelivered_alerts(session, limit)]


def post(alert: Pending, settings: Settings) -> bool:
    """POST one alert to the alerts webhook; whether it was accepted. An alert whose
    delivery fails stays pending for a later scan."""
    assert settings.alerts_webhook_url is not None
    try:
        response = webhooks.post(
            settings.alerts_webhook_url,
            alert.payload.encode(),
            secret=settings.webhook_secret,
            timeout=10,
        )
    except httpx.HTTPError:
        return False
    return response.is_success


def delivered(session: Session, alert_id: int) -> None:
    alert = repo.get_alert(session, alert_id)
    if alert is not None:
        alert.delivered_at = utcnow()


def recent(session: Session, limit: int = 100) -> list[Alert]:
    """The newest alerts first."""
    return repo.recent_alerts(session, limit)


def as_out(alert: Alert) -> AlertOut:
    """An alert as the API answers it (and ``alerts list --json`` prints it)."""
    return AlertOut(
        id=alert.id,
        group_id=alert.group_id,
        kind=alert.kind,
        created_at=alert.created_at,
        delivered_at=alert.delivered_at,
    )


@dataclass(frozen=True, slots=True)
class Listed:
    """An alert as the alerts page lists it: with its group's name and state."""

    alert: Alert
    group_name: str
    group_archived: bool


def listing(
    session: Session,
    *,
    group_id: int | None = None,
    kind: str | None = None,
    open_only: bool = False,
    limit: int = 200,
) -> list[Listed]:
    """The newest alerts first, of one group and one kind when given; ``open_only``
    keeps those nobody has acknowledged yet."""
    rows = repo.alerts_with_groups(
        session, group_id=group_id, kind=kind, open_only=open_only, limit=limit
    )
    return [Listed(a, name, archived) for a, name, archived in rows]


def acknowledge(session: Session, alert_id: int, actor: Actor) -> Alert | None:
    """Mark an alert seen (once: the first acknowledgement is the one kept, and the only
    one audited — a repeat changes nothing)."""
    alert = repo.get_alert(session, alert_id)
    if alert is not None and alert.acknowledged_at is None:
        alert.acknowledged_at = utcnow()
        alert.acknowledged_by = actor.name
        group = repo.get_group(session, alert.group_id, live=False)
        name = group.name if group is not None else None
        details = {"group_id": alert.group_id, "group_name": name, "kind": alert.kind}
        record(session, actor, "alert.acknowledged", Target("alert", alert.id, name), details)
        session.flush()
    return alert
