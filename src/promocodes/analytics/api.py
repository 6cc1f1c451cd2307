"""REST routes of redemption analytics: a mailing's, a campaign's and a group's figures
(scope ``read``)."""

from __future__ import annotations

from fastapi import APIRouter

from promocodes.analytics import service
from promocodes.analytics.schemas import AnalyticsOut
from promocodes.apikit import PROBLEM_RESPONSES, Db, Id, Key

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)


@router.get("/mailings/{mailing_id}/analytics", tags=["mailings"])
def mailing_analytics(mailing_id: Id, key: Key, db: Db) -> AnalyticsOut:
    """Codes the mailing sent → redeemed, the rate, the median time to redeem and the
    redemptions by day."""
    with db.read() as s:
        return service.as_out(service.of_mailing(s, mailing_id))


@router.get("/campaigns/{campaign_id}/analytics", tags=["campaigns"])
def campaign_analytics(campaign_id: Id, key: Key, db: Db) -> AnalyticsOut:
    """The same figures for the codes a campaign's messages gave (a deleted campaign's
    too)."""
    with db.read() as s:
        return service.as_out(service.of_campaign(s, campaign_id))


@router.get("/groups/{group_id}/analytics", tags=["groups"])
def group_analytics(group_id: Id, key: Key, db: Db) -> AnalyticsOut:
    """The same figures for every code the group gave, whatever sent it (an archived
    group's too)."""
    with db.read() as s:
        return service.as_out(service.of_group(s, group_id))
