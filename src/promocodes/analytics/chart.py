"""Redemptions by day as an inline SVG bar chart, drawn on the server (no script, no
library, nothing fetched), and a median time in words. Pure: figures in, text out.

The chart is an image with a title and a description a screen reader reads (the span,
the busiest day, the total); the page shows the same figures as a table beside it.
"""

from __future__ import annotations

from datetime import date, timedelta
from html import escape

WIDTH, HEIGHT = 640, 180
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 24  # room for the axis labels
MAX_DAYS = 366  # a longer history shows its last year (the description says so)


def days_filled(by_day: list[tuple[date, int]]) -> list[tuple[date, int]]:
    """Every day from the first redemption to the last (the last MAX_DAYS), 0 where
    nothing was redeemed: a gap in the chart is a day without redemptions."""
    if not by_day:
        return []
    counts = dict(by_day)
    first, last = by_day[0][0], by_day[-1][0]
    first = max(first, last - timedelta(days=MAX_DAYS - 1))
    span = (last - first).days + 1
    return [(d, counts.get(d, 0)) for d in (first + timedelta(days=i) for i in range(span))]


def describe(by_day: list[tuple[date, int]]) -> str:
    """The chart in one sentence (its SVG description and the text beside it)."""
    if not by_day:
        return "None of the codes sent has been redeemed yet."
    total = sum(n for _, n in by_day)
    busiest, most = max(by_day, key=lambda item: (item[1], -item[0].toordinal()))
    filled = days_filled(by_day)
    span = f"from {filled[0][0].isoformat()} to {filled[-1][0].isoformat()}"
    shown = "" if filled[0][0] == by_day[0][0] else " (the last year shown)"
    return (
        f"{total:,} redemptions {span}{shown}; the busiest day was "
        f"{busiest.isoformat()} with {most:,}."
    )


def svg(by_day: list[tuple[date, int]], *, ident: str, title: str) -> str:
    """The bar chart's markup; ``ident`` makes its element ids unique on the page."""
    days = days_filled(by_day)
    top = max((n for _, n in days), default=0) or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(days), 1)
    bar = max(step * 0.8, 1.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" aria-labelledby="{ident}-t {ident}-d">',
        f'<title id="{ident}-t">{escape(title)}</title>',
        f'<desc id="{ident}-d">{escape(describe(by_day))}</desc>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" '
        'stroke="currentColor" stroke-width="1"/>',
        _label(LEFT - 6, TOP + 10, f"{top:,}", "end"),
        _label(LEFT - 6, TOP + plot_h, "0", "end"),
    ]
    for i, (day, n) in enumerate(days):
        if n == 0:
            continue
        h = max(plot_h * n / top, 1.0)
        parts.append(
            f'<rect x="{LEFT + i * step:.2f}" y="{TOP + plot_h - h:.2f}" width="{bar:.2f}" '
            f'height="{h:.2f}" fill="currentColor"><title>{day.isoformat()}: '
            f"{n:,} redeemed</title></rect>"
        )
    if days:
        parts.append(_label(LEFT, HEIGHT - 6, days[0][0].isoformat(), "start"))
        if len(days) > 1:
            parts.append(_label(WIDTH - RIGHT, HEIGHT - 6, days[-1][0].isoformat(), "end"))
    parts.append("</svg>")
    return "".join(parts)


def _label(x: float, y: float, words: str, anchor: str) -> str:
    return (
        f'<text x="{x}" y="{y}" text-anchor="{anchor}" font-size="11" '
        f'fill="currentColor">{escape(words)}</text>'
    )


def duration(seconds: int | None) -> str:
    """A median time in words: "2 days 3 h", "3 h 20 min", "4 min 5 s"; "—" for none."""
    if seconds is None:
        return "—"
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''} {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"
