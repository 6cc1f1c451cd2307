"""Redemption analytics of a mailing, a campaign or a group: did it work?

Each figure is computed by the database (``analytics/repository.py``); this module
checks that the thing asked about exists (a 404 naming it otherwise) and shapes the
answer. A deleted campaign or an archived group keeps its figures: its history stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from promocodes.analytics import repository as repo
from promocodes.analytics.repository import Of
from promocodes.analytics.schemas import AnalyticsOut, DayOut
from promocodes.codes import service as groups
from promocodes.messaging import campaigns, mailings


@dataclass(frozen=True, slots=True)
class Analytics:
    of: Of
    id: int
    sent: int
    redeemed: int
    median_seconds: int | None
    by_day: list[tuple[date, int]]

    @property
    def rate(self) -> float | None:
        """redeemed / sent, or None when nothing was sent (no rate, not 0 %)."""
        return round(self.redeemed / self.sent, 4) if self.sent else None


def of_mailing(session: Session, mailing_id: int) -> Analytics:
    mailings.get(session, mailing_id)
    return _figures(session, "mailing", mailing_id)


def of_campaign(session: Session, campaign_id: int) -> Analytics:
    campaigns.get_any(session, campaign_id)
    return _figures(session, "campaign", campaign_id)


def of_group(session: Session, group_id: int) -> Analytics:
    groups.get_any_group(session, group_id)
    return _figures(session, "group", group_id)


def _figures(session: Session, of: Of, id_: int) -> Analytics:
    came_back = repo.redeemed(session, of, id_)
    median = came_back.median_seconds
    return Analytics(
        of,
        id_,
        repo.sent(session, of, id_),
        sum(n for _, n in came_back.by_day),
        None if median is None else round(median),
        came_back.by_day,
    )


def as_out(a: Analytics) -> AnalyticsOut:
    return AnalyticsOut(
        of=a.of,
        id=a.id,
        sent=a.sent,
        redeemed=a.redeemed,
        redemption_rate=a.rate,
        median_seconds_to_redeem=a.median_seconds,
        redemptions_by_day=[DayOut(day=d, redeemed=n) for d, n in a.by_day],
    )
