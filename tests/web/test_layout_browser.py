"""Pages as a person sees them in a real browser: the menu button only where the menu
folds, the stock alerts, codes and a Check's result at a phone's width, and the segment
builder's limit on conditions about issued codes. SQLite only, one browser for the module."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator

import pytest

from promocodes.codes import alerts, service
from promocodes.codes.schemas import GroupUpdate
from promocodes.db import Database
from tests.factories import group_with_codes, issue
from tests.live import LiveServer, live_server
from tests.messaging.test_mailings import people
from tests.web.conftest import make_user
from tests.web.session import logged_in_page
from tests.web.test_browser import browser as browser

with contextlib.suppress(ImportError):  # the browser fixture reports a missing install
    from playwright.sync_api import Browser, Page, expect

WIDTH = 390  # a phone


@pytest.fixture
def server(sqlite_db: Database) -> Iterator[LiveServer]:
    make_user(sqlite_db)
    with live_server(sqlite_db) as live:
        yield live


@pytest.fixture
def page(browser: Browser, server: LiveServer) -> Iterator[Page]:
    with logged_in_page(browser, server.url, 1366, 768) as page:
        yield page


def within_width(page: Page, selector: str) -> None:
    """The element is wholly inside the viewport's width (not off to the side)."""
    box = page.locator(selector).first.bounding_box()
    width = page.viewport_size["width"] if page.viewport_size else 0
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box


def test_the_menu_button_shows_only_where_the_menu_folds(page: Page) -> None:
    menu = page.locator("label.menu-button")
    expect(menu).to_be_hidden()
    main_menu = page.get_by_role("navigation", name="Main")
    expect(main_menu.get_by_role("link", name="Customers")).to_be_visible()
    page.set_viewport_size({"width": WIDTH, "height": 844})
    expect(menu).to_be_visible()
    expect(page.locator(".menu-links")).to_be_hidden()


def test_stock_alerts_fit_a_phone_and_say_which_was_acknowledged(
    sqlite_db: Database, page: Page
) -> None:
    low = group_with_codes(sqlite_db, "Winter 15%", ["W1", "W2"])
    with sqlite_db.write() as s:
        service.update_group(s, low, GroupUpdate(low_stock_threshold=10))
        alerts.scan(s)
    page.set_viewport_size({"width": WIDTH, "height": 844})
    page.goto("/alerts")
    button = page.get_by_role("button", name="Acknowledge")
    expect(button).to_be_visible()
    within_width(page, "#alerts button")
    within_width(page, "#alerts .badge")
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= WIDTH, wide
    button.click()
    expect(page.locator(".flash")).to_have_text("Alert “Low stock” of “Winter 15%” acknowledged.")


def test_a_code_never_breaks_inside_at_a_phones_width(sqlite_db: Database, page: Page) -> None:
    people(sqlite_db, 1)
    group = group_with_codes(sqlite_db, "Expiring", ["EXP-1", "EXP-2"])
    issue(sqlite_db, "p0", group, key="k0")
    page.set_viewport_size({"width": WIDTH, "height": 844})
    for path in ("/customers/p0", f"/groups/{group}"):
        page.goto(path)
        cell = page.locator("td.mono", has_text="EXP-").first
        expect(cell).to_have_text(re.compile(r"EXP-\d"))
        lines = cell.evaluate(
            "td => { const r = document.createRange(); r.selectNodeContents(td);"
            " return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; }"
        )
        assert lines == 1, f"{path}: the code wraps over {lines} lines"


def test_the_builder_stops_at_three_promo_code_conditions_and_says_why(
    sqlite_db: Database, page: Page
) -> None:
    group = group_with_codes(sqlite_db, "Autumn", ["A1"])
    page.set_viewport_size({"width": WIDTH, "height": 844})
    page.goto("/segments/new")
    adders = page.locator("#builder > fieldset > .adders")
    for _ in range(3):
        adders.get_by_role("button", name="+ Promo codes issued from the group").click()
    note = adders.locator(".limit-note")
    expect(note).to_contain_text("A segment can hold 3 promo code conditions")
    for name in ("Quantity of issued promo codes", "Promo codes issued from the group"):
        expect(adders.get_by_role("button", name=f"+ {name}")).to_be_disabled()
    expect(adders.get_by_role("button", name="+ Customer field")).to_be_enabled()
    within_width(page, "#builder > fieldset > .adders .limit-note")

    # A tree made elsewhere (the API, an older version) with a fourth one, in a group.
    condition = {"type": "issued_from_group", "group_id": group}
    tree = {"type": "and", "filters": [{"type": "or", "filters": [condition] * 4}]}
    page.evaluate("t => { document.getElementById('filter').value = t; }", json.dumps(tree))
    page.get_by_label("Segment name").fill("Too many")
    # The builder would redraw from the field on load only: post it as it is.
    page.evaluate("document.getElementById('segment-form').submit()")
    problems = page.locator("#tree-problems")
    expect(problems).to_contain_text("The highlighted condition — a segment has at most 3")
    expect(page.locator("main")).not_to_contain_text("Condition 4")
    assert page.locator("main").inner_text().count("at most 3 conditions") == 1
    highlighted = page.locator(".node.problem")
    expect(highlighted).to_have_count(1)
    expect(page.locator(".node.cond").nth(3)).to_have_class(re.compile(r"\bproblem\b"))
    summary = page.locator("#error-summary")
    summary.get_by_role("link", name="Conditions").click()
    expect(page.locator("#conditions")).to_be_focused()

    # Removing it clears the message, the highlight and the summary's line.
    highlighted.get_by_role("button", name="Remove").click()
    expect(problems).to_be_empty()
    expect(page.locator(".node.problem")).to_have_count(0)
    expect(summary).to_have_count(0)
    expect(page.locator("#segment-count")).to_be_visible()
    page.get_by_role("button", name="Save segment").click()
    expect(page.locator(".flash")).to_contain_text("Segment “Too many” saved.")


def _check_result_is_focused_and_in_view(page: Page) -> None:
    heading = page.locator("#report-h")
    expect(heading).to_have_text("Check result — nothing was uploaded yet")
    expect(heading).to_be_focused()
    box = heading.bounding_box()
    height = page.viewport_size["height"] if page.viewport_size else 0
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height, box


def test_a_checks_result_is_focused_and_in_view_on_a_phone(
    sqlite_db: Database, browser: Browser, server: LiveServer, page: Page
) -> None:
    """The form above the result is taller than a phone's screen: the result is focused
    (so read, and scrolled to), with htmx and when the page comes back whole."""
    group = group_with_codes(sqlite_db, "Spring", ["OLD-1"])
    page.set_viewport_size({"width": WIDTH, "height": 800})
    page.goto(f"/groups/{group}")
    page.get_by_label("Codes, one per line").fill("\n".join(f"NEW-{i}" for i in range(40)))
    page.get_by_role("button", name="Check", exact=True).click()
    _check_result_is_focused_and_in_view(page)
    # Without JavaScript: the same session in a browser that runs no scripts.
    plain = browser.new_context(
        viewport={"width": WIDTH, "height": 800}, base_url=server.url, java_script_enabled=False
    )
    cookies = page.context.cookies()
    plain.add_cookies(
        [{"name": c["name"], "value": c["value"], "url": server.url} for c in cookies]
    )
    try:
        bare = plain.new_page()
        bare.goto(f"/groups/{group}")
        bare.get_by_label("Codes, one per line").fill("NEW-1\nNEW-2")
        bare.get_by_role("button", name="Check", exact=True).click()
        _check_result_is_focused_and_in_view(bare)
    finally:
        plain.close()
