"""A newcomer's first run in a real browser: `promocodes serve` on a fresh SQLite file
prints the first administrator's login, the demo fills the database while the server
runs, and the printed credentials open a UI where every page of the main navigation
shows the demo's data — names, counts, codes — not just a page that loads.

SQLite only (the path a newcomer takes), at a tenth of the demo's size.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from promocodes.apikeys.models import ApiKey
from promocodes.codes import repository
from promocodes.codes.models import INITIAL, REDEEMED, Code, CodeGroup, Issuance
from promocodes.customers.models import Customer
from promocodes.db import Database
from promocodes.demo import KIDS, SHIPPING, WELCOME, DemoResult, build
from promocodes.messaging import campaigns, mailings
from promocodes.segments import service as segments
from promocodes.users.bootstrap import DEFAULT_EMAIL
from tests.users.test_bootstrap import serving
from tests.web.test_browser import browser  # noqa: F401 - the module's chromium fixture

with contextlib.suppress(ImportError):  # test_browser's fixture reports it missing
    from playwright.sync_api import Browser, Page, expect


def _num(n: int) -> str:
    return f"{n:,}"


@pytest.fixture
def first_run(tmp_path: Path) -> Iterator[tuple[str, str, str, Database, DemoResult]]:
    url = f"sqlite:///{tmp_path}/promocodes.db"
    env = {"PROMOCODES_ADMIN_EMAIL": "", "PROMOCODES_ADMIN_PASSWORD": ""}
    with serving(url, PROMOCODES_WORKER_POLL_SECONDS="0.2", **env) as (base, out):
        email = out.until(r"First administrator created: (\S+)").group(1)
        password = out.until(r"Password:  (\S+)").group(1)
        db = Database(url)
        try:
            result = build(db, scale=0.1)
            yield base, email, password, db, result
        finally:
            db.dispose()


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


def test_a_newcomer_logs_in_and_every_page_shows_the_demo(
    browser: Browser,  # noqa: F811 - pytest injects the fixture imported above by this name
    first_run: tuple[str, str, str, Database, DemoResult],
) -> None:
    base, email, password, db, result = first_run
    assert email == DEFAULT_EMAIL
    with db.read() as s:
        groups = {g.name: g for g in s.scalars(select(CodeGroup))}
        counts = repository.counts(s, [g.id for g in groups.values()])
        # A customer whose welcome code (sent by a mailing) was redeemed.
        found = s.execute(
            select(Customer.external_id, Customer.first_name, Code.code)
            .join(Issuance, Issuance.customer_id == Customer.id)
            .join(Code, Code.id == Issuance.code_id)
            .where(
                Issuance.kind == INITIAL,
                Issuance.source == "mailing",
                Issuance.group_id == groups[WELCOME].id,
                Code.status == REDEEMED,
            )
            .order_by(Customer.id)
            .limit(1)
        ).one()
        profile_id, profile_name, redeemed_code = found
        n_customers = s.scalar(select(func.count()).select_from(Customer)) or 0
        first_customer = s.scalar(select(Customer.external_id).order_by(Customer.id).limit(1))
        sent = {m.name: mailings.to_out(s, m) for m in mailings.list_mailings(s)}
        saved = {
            seg.name: segments.count(s, segments.tree_of(seg)) for seg in segments.list_segments(s)
        }
        key_name = s.scalar(select(ApiKey.name))
        kids_sent = campaigns.stats(s, [result.campaigns["Kid's Club welcome"]])
    assert profile_id and redeemed_code and first_customer and key_name

    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=base)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        # --- log in with what the banner printed -----------------------------------------
        page.goto("/")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Promo codes")).to_be_visible()

        # --- promo codes: every group with its counts ------------------------------------
        main = page.locator("main")
        for name, group in groups.items():
            row = main.locator("tr", has_text=name)
            expect(row).to_contain_text(_num(counts[group.id].total))
        # The nearly exhausted group's page: its counts and the upload history.
        main.get_by_role("link", name=SHIPPING, exact=True).click()
        expect(page.locator("#count-active")).to_have_text(_num(counts[groups[SHIPPING].id].active))
        expect(page.locator("#count-issued")).to_have_text(_num(counts[groups[SHIPPING].id].issued))
        expect(main).to_contain_text("free-shipping.txt")
        # The group with an apostrophe: its page, macro and the problems of its uploads.
        page.goto(f"/groups/{groups[WELCOME].id}")
        expect(main).to_contain_text("welcome-batch-2.csv")
        expect(page.locator("#count-blocked")).to_have_text("5")
        page.goto(f"/groups/{groups[KIDS].id}")
        expect(page.get_by_role("heading", level=1)).to_contain_text(KIDS)
        expect(page.locator("#macro-initial")).to_contain_text("Kid\\'s Club 10%")

        # --- customers and a profile with an issued, redeemed and repeated code ----------
        nav(page, "Customers")
        expect(main).to_contain_text(first_customer)
        expect(main.locator("tbody tr").first).to_contain_text("@example.com")
        page.goto(f"/customers/{profile_id}")
        expect(page.get_by_role("heading", level=1)).to_contain_text(profile_name or profile_id)
        history = main.locator("#promo-codes")
        expect(history.locator("tr", has_text=redeemed_code).first).to_contain_text("redeemed")
        expect(history).to_contain_text(WELCOME)
        expect(history).to_contain_text(re.compile(r"mailing [A-Z]"))  # its name, not its id

        # --- segments: names, and a saved promo code filter counting its customers -------
        nav(page, "Segments")
        for name in saved:
            expect(main).to_contain_text(name)
        main.get_by_role("link", name="Welcome code not redeemed").click()
        count = _num(saved["Welcome code not redeemed"])
        expect(page.locator("#segment-count")).to_have_text(count)

        # --- mailings: the sent ones with their totals, then one mailing's report ---------
        nav(page, "Mailings")
        for name, m in sent.items():
            row = main.locator("tr", has_text=name)
            expect(row).to_contain_text(m.status)
            if m.status == "sent":
                expect(row).to_contain_text(_num(m.total))
        main.get_by_role("link", name="Welcome reminder").click()
        expect(page.locator("#count-sent")).to_have_text(_num(sent["Welcome reminder"].sent))
        expect(main).to_contain_text("last_promocode")

        # --- campaigns: the triggered one with the messages its events sent ---------------
        nav(page, "Campaigns")
        kids = main.locator("tr", has_text="Kid's Club welcome")
        expect(kids).to_contain_text("kids_club_joined")
        sent_by_kids = next(iter(kids_sent.values()))["sent"]
        assert sent_by_kids > 0
        expect(kids.locator("td.num").first).to_have_text(_num(sent_by_kids))
        expect(main.locator("tr", has_text="Birthday surprise")).to_contain_text("paused")

        # --- settings: the demo's API key -----------------------------------------------
        nav(page, "Settings")
        expect(main).to_contain_text(key_name)

        # --- any other page of the main navigation shows rows of data --------------------
        known = {"Promo codes", "Customers", "Segments", "Mailings", "Campaigns", "Settings"}
        known.add("API reference")  # Swagger UI, not a page of data (its own browser test)
        links = page.get_by_role("navigation", name="Main").get_by_role("link")
        others = [t.strip() for t in links.all_inner_texts()]
        for label in [t for t in others if t and t not in known and t != "Promocodes"]:
            nav(page, label)
            expect(main.locator("tbody tr").first).to_be_visible()
    finally:
        context.close()
    assert errors == [], f"JavaScript errors in the page: {errors}"
    assert n_customers == 1_000
