"""A group's stock state at a moment: the one rule behind the group badges of the web UI,
the stock alerts, ``GET /groups/{id}/stock`` and the ``/metrics`` conditions.

Pure: the caller passes the group and its counts (read from the counter stripes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

# How far ahead a group's end counts as "expiring soon": alerted once, badged until then.
EXPIRING_SOON = timedelta(days=7)

# Alert kinds, in the order they are reported.
LOW_STOCK = "low-stock"
EXHAUSTED = "exhausted"
EXPIRING = "expiring-soon"
CONDITIONS = (LOW_STOCK, EXHAUSTED, EXPIRING)


class GroupTerms(Protocol):
    """What the rule reads of a group (a ``CodeGroup`` row or a ``GroupOut``)."""

    @property
    def valid_from(self) -> datetime | None: ...
    @property
    def valid_until(self) -> datetime | None: ...
    @property
    def low_stock_threshold(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class StockState:
    """``exhausted``: it had codes and none is left to issue. ``low``: active codes at or
    under the threshold (an exhausted group is low too; it is alerted and badged as
    exhausted). ``expires_in``: time left when the group ends within ``EXPIRING_SOON``.
    ``stocked``: it ever received a code; a group that never did raises no alert (it is
    being set up)."""

    stocked: bool
    exhausted: bool
    low: bool
    expired: bool
    not_yet_valid: bool
    expires_in: timedelta | None

    @property
    def conditions(self) -> set[str]:
        """The alert conditions that hold now."""
        if not self.stocked:
            return set()
        held = {EXHAUSTED} if self.exhausted else {LOW_STOCK} if self.low else set()
        return held | ({EXPIRING} if self.expires_in is not None else set())


def state_of(group: GroupTerms, *, active: int, total: int, now: datetime) -> StockState:
    threshold = group.low_stock_threshold
    exhausted = total > 0 and active == 0
    until = group.valid_until
    expired = until is not None and until <= now
    soon = (
        until - now if until is not None and not expired and until - now <= EXPIRING_SOON else None
    )
    return StockState(
        stocked=total > 0,
        exhausted=exhausted,
        low=threshold is not None and active <= threshold,
        expired=expired,
        not_yet_valid=group.valid_from is not None and group.valid_from > now,
        expires_in=soon,
    )
