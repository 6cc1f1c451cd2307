"""The chart and the words of the analytics panel (pure: no database)."""

from __future__ import annotations

from datetime import date, timedelta
from xml.etree import ElementTree

import pytest

from promocodes.analytics.chart import MAX_DAYS, days_filled, describe, duration, svg

NS = "{http://www.w3.org/2000/svg}"


def test_gaps_are_days_without_redemptions() -> None:
    days = [(date(2030, 1, 1), 2), (date(2030, 1, 4), 5)]
    assert days_filled(days) == [
        (date(2030, 1, 1), 2),
        (date(2030, 1, 2), 0),
        (date(2030, 1, 3), 0),
        (date(2030, 1, 4), 5),
    ]
    assert describe(days) == (
        "7 redemptions from 2030-01-01 to 2030-01-04; the busiest day was 2030-01-04 with 5."
    )


def test_a_long_history_shows_its_last_year_and_says_so() -> None:
    first = date(2028, 1, 1)
    days = [(first + timedelta(days=i), 1) for i in range(0, 800, 7)]
    filled = days_filled(days)
    assert len(filled) == MAX_DAYS and filled[-1][0] == days[-1][0]
    assert "(the last year shown)" in describe(days)


def test_the_svg_is_well_formed_named_and_escapes_its_words() -> None:
    markup = svg([(date(2030, 1, 1), 3), (date(2030, 1, 3), 1)], ident="c", title="A <b> & c")
    root = ElementTree.fromstring(markup)
    assert root.get("role") == "img" and root.get("aria-labelledby") == "c-t c-d"
    assert root.findtext(f"{NS}title") == "A <b> & c"
    bars = root.findall(f"{NS}rect")
    assert len(bars) == 2
    heights = [float(b.get("height", "0")) for b in bars]
    assert heights[0] == pytest.approx(3 * heights[1], abs=0.02)  # bars are to scale
    assert [b.findtext(f"{NS}title") for b in bars] == [
        "2030-01-01: 3 redeemed",
        "2030-01-03: 1 redeemed",
    ]


def test_nothing_redeemed_draws_an_empty_chart() -> None:
    root = ElementTree.fromstring(svg([], ident="e", title="t"))
    assert root.findall(f"{NS}rect") == []
    assert root.findtext(f"{NS}desc") == "None of the codes sent has been redeemed yet."


def test_durations_in_words() -> None:
    assert [duration(s) for s in (None, 45, 245, 12_000, 86_400, 2 * 86_400 + 3 * 3_600)] == [
        "—",
        "45 s",
        "4 min 5 s",
        "3 h 20 min",
        "1 day 0 h",
        "2 days 3 h",
    ]
