"""The analytics panel on the pages (both backends, no browser): a campaign's page and a
deleted campaign's, a draft mailing (no panel), and the marketer's guide quoting the
panel's words."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from promocodes.codes import redemption
from promocodes.customers import service as customers
from promocodes.db import Database
from promocodes.messaging import campaigns
from promocodes.messaging.schemas import CampaignIn
from tests.factories import group_with_codes
from tests.messaging.test_mailings import EVERYONE, mailing, people, segment
from tests.web.conftest import Ui

ROOT = Path(__file__).parents[2]


def test_a_campaigns_page_shows_what_came_back(ui: Ui, db: Database) -> None:
    people(db, 2)
    group_with_codes(db, "Welcome", ["W1", "W2", "W3"])
    with db.write() as s:
        body = "{{ client.promocode('Welcome') }}"
        cid = campaigns.create(
            s, CampaignIn(name="Hi", event="signup", subject="Hi", body_text=body)
        ).id
    given = []
    for who in ("p0", "p1"):
        with db.write() as s:
            (message,) = campaigns.handle_event(s, customers.get(s, who), "signup", event_id=who)
            given.append(message.body_text or "")
    with db.write() as s:
        redemption.redeem(s, given[0], now=datetime(2030, 2, 1, 8, tzinfo=UTC))
    page = ui.get(f"/campaigns/{cid}").text
    assert 'id="funnel-sent">2<' in page and 'id="funnel-redeemed">1<' in page
    assert 'id="funnel-rate">50.0 %<' in page
    assert 'role="img"' in page and "<td>2030-02-01</td><td>1</td>" in page
    ui.post(f"/campaigns/{cid}/delete")
    kept = ui.get(f"/campaigns/{cid}").text  # a deleted campaign keeps its figures
    assert 'id="funnel-redeemed">1<' in kept


def test_a_draft_has_no_panel_and_a_group_without_issues_says_so(ui: Ui, db: Database) -> None:
    people(db, 1)
    gid = group_with_codes(db, "Spring", ["S1"])
    mid = mailing(db, segment(db, "All", EVERYONE), "{{ client.promocode('Spring') }}")
    assert 'id="funnel"' not in ui.get(f"/mailings/{mid}").text
    page = ui.get(f"/groups/{gid}").text
    assert 'id="funnel-sent">0<' in page and 'id="funnel-rate">—<' in page
    assert "None of the codes sent has been redeemed yet." in page and 'role="img"' not in page


def test_the_guide_quotes_the_panel() -> None:
    guide = (ROOT / "docs" / "marketers.md").read_text(encoding="utf-8")
    panel = (
        ROOT / "src" / "promocodes" / "web" / "templates" / "partials" / "analytics.html"
    ).read_text(encoding="utf-8")
    for label in (
        "Did it work?",
        "Codes sent",
        "Redeemed",
        "Redemption rate",
        "Median time to redeem",
        "Redemptions by day as a table",
    ):
        assert f"**{label}**" in guide and f">{label}<" in panel
