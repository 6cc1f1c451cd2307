"""A sent mailing with redemptions, in a real browser: its page shows the funnel and the
chart of redemptions by day (an image named for screen readers, its figures also in a
table). SQLite only, one browser for the module."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from promocodes.db import Database
from tests.factories import group_with_codes
from tests.messaging.test_mailings import EVERYONE, bodies, mailing, people, segment, send_and_work
from tests.web.test_browser import browser as browser
from tests.web.test_scenarios_browser import page as page
from tests.web.test_scenarios_browser import server as server

with contextlib.suppress(ImportError):  # the browser fixture reports a missing install
    from playwright.sync_api import Page, expect


def test_a_sent_mailing_shows_its_funnel_and_chart(sqlite_db: Database, page: Page) -> None:
    from promocodes.codes import redemption

    db = sqlite_db
    people(db, 3)
    gid = group_with_codes(db, "Spring 10%", [f"SPR{i}" for i in range(10)])
    mid = mailing(db, segment(db, "All", EVERYONE), "Code: {{ client.promocode('Spring 10%') }}")
    send_and_work(db, mid)
    codes = [(m.body_text or "").removeprefix("Code: ") for m in bodies(db, mid).values()]
    for code, day in zip(codes[:2], (3, 5), strict=True):
        with db.write() as s:
            redemption.redeem(s, code, now=datetime(2030, 1, day, 12, tzinfo=UTC))

    page.goto(f"/mailings/{mid}")
    funnel = page.get_by_label("Redemption funnel")
    expect(funnel.locator("#funnel-sent")).to_have_text("3")
    expect(funnel.locator("#funnel-redeemed")).to_have_text("2")
    expect(funnel.locator("#funnel-rate")).to_have_text("66.7 %")
    chart = page.get_by_role("img", name="Redemptions by day of this mailing's codes")
    expect(chart).to_be_visible()
    expect(chart.locator("rect")).to_have_count(2)  # two days with redemptions, a gap between
    expect(page.locator("#redemptions-chart figcaption")).to_contain_text(
        "2 redemptions from 2030-01-03 to 2030-01-05"
    )
    page.get_by_text("Redemptions by day as a table").click()
    cells = page.locator("#redemptions-by-day tbody td")
    expect(cells).to_have_text(["2030-01-03", "1", "2030-01-05", "1"])

    # The group's page tells the same story for every code it gave.
    page.goto(f"/groups/{gid}")
    expect(page.locator("#funnel-redeemed")).to_have_text("2")
    expect(page.get_by_role("img", name="Redemptions by day of this group's codes")).to_be_visible()
