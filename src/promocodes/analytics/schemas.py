"""The shape of redemption analytics in the API and the CLI's ``--json``."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field


class DayOut(BaseModel):
    day: date = Field(description="A UTC day on which codes of this send were redeemed.")
    redeemed: int


class AnalyticsOut(BaseModel):
    of: Literal["mailing", "campaign", "group"]
    id: int
    sent: int = Field(description="Codes handed out: initial issuances not voided.")
    redeemed: int = Field(description="Of those, codes redeemed (by anyone, at any time).")
    redemption_rate: float | None = Field(
        description="redeemed / sent, rounded to 4 places; null when nothing was sent."
    )
    median_seconds_to_redeem: int | None = Field(
        description="Median of redeemed_at - issued_at over the redeemed codes, in whole "
        "seconds; null when none was redeemed."
    )
    redemptions_by_day: list[DayOut] = Field(
        description="Days with at least one redemption, oldest first."
    )
