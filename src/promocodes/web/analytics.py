"""The redemption analytics panel of the mailing, campaign and group pages: the funnel
(codes sent → redeemed, the rate, the median time to redeem) and the chart of
redemptions by day, drawn on the server (``analytics/chart.py``). The pages' routes
ask for it inside their own read transaction."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from promocodes.analytics import chart
from promocodes.analytics.service import Analytics


def panel(found: Analytics) -> dict[str, Any]:
    """What ``partials/analytics.html`` shows."""
    title = f"Redemptions by day of this {found.of}'s codes"
    return {
        "figures": found,
        "rate": "—" if found.rate is None else f"{found.rate * 100:.1f} %",
        "median": chart.duration(found.median_seconds),
        # Our own markup, every text in it escaped by chart.svg: safe to insert.
        "chart": Markup(chart.svg(found.by_day, ident=f"chart-{found.of}", title=title)),
        "chart_title": title,
        "description": chart.describe(found.by_day),
    }
