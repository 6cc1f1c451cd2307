"""The web UI in a real browser (Debian's chromium driven by Playwright) against a real
`promocodes serve` process — its in-process worker sends the mailing.

One scenario, step by step, as a marketer would work: log in; create a group by pasting
1,000 codes with bad lines; upload a file (Check, then Upload) and a large file that
runs in the background; copy the macro; build a segment with both promo code filters;
compose, preview (no code consumed), send and watch a mailing reach 100 %; open a
recipient's profile; delete a group after its confirmation. Screenshots of the main
pages at 1280x800 go to test-artifacts/screenshots/.

Runs on both backends (~17 s each): the server's background upload and its in-process
worker behave differently enough on PostgreSQL to be worth the second run. Screenshots
are taken in the SQLite run only, so there is one consistent set.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from promocodes.codes import service
from promocodes.codes.schemas import GroupUpdate
from promocodes.db import Database
from tests.conftest import unavailable
from tests.factories import counts, group_with_codes, issue
from tests.live import LiveServer, live_server
from tests.messaging.test_mailings import people
from tests.web.conftest import EMAIL, PASSWORD, make_user

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
GROUP = "Tom's 10%"
MACRO = "{{client.promocode('Tom\\'s 10%')}}"

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    # The browser fixture sees None and reports Playwright unavailable (a loud skip
    # locally, a failure in CI), so a missing install never passes silently.
    sync_playwright = None  # type: ignore[assignment]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if sync_playwright is None:
        unavailable("chromium", "the playwright package is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.exists() or not os.access(CHROMIUM, os.X_OK):
        unavailable("chromium", f"{CHROMIUM} not found (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def server(db: Database) -> Iterator[LiveServer]:
    # Files over 50 kB upload in the background here, so a modest file shows progress.
    with live_server(
        db, PROMOCODES_UPLOAD_BACKGROUND_BYTES="50000", PROMOCODES_WORKER_POLL_SECONDS="0.2"
    ) as live:
        yield live


@pytest.fixture
def page(browser: Browser, server: LiveServer) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=server.url)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # A form refused with 422 (what was typed is shown with the error) is logged by
    # chromium as a failed resource load; it is the page working, not a script error.
    expected = ("favicon", "responded with a status of 422")
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and not any(e in msg.text for e in expected)
            else None
        ),
    )
    yield page
    context.close()
    assert errors == [], f"JavaScript errors in the page: {errors}"


class Shots:
    """Screenshots at the viewport's 1280x800, taken in one backend's run only."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(
        self,
        page: Page,
        name: str,
        *,
        top: bool = True,
        path: Path | None = None,
        full: bool = False,
    ) -> None:
        if not self.enabled:
            return
        SHOTS.mkdir(parents=True, exist_ok=True)
        if top:
            page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(path or SHOTS / f"{name}.png"), full_page=full)


def world(db: Database) -> dict[str, Any]:
    """Customers p0..p29; p0..p4 already received a code of "Old"; a few more groups so
    the list shows its badges."""
    make_user(db)
    people(db, 30)
    old = group_with_codes(db, "Old", [f"OLD{i}" for i in range(10)])
    for i in range(5):
        issue(db, f"p{i}", old, key=f"seed{i}")
    soon = datetime.now(UTC) + timedelta(days=5)
    low = group_with_codes(db, "Winter 15%", [f"WIN{i}" for i in range(8)])
    expiring = group_with_codes(db, "Black Friday", [f"BF{i}" for i in range(40)])
    with db.write() as s:
        service.update_group(s, low, GroupUpdate(low_stock_threshold=10))
        service.update_group(s, expiring, GroupUpdate(valid_until=soon))
    return {"old": old}


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


def group_id_of(page: Page) -> int:
    found = re.search(r"/groups/(\d+)", page.url)
    assert found, page.url
    return int(found.group(1))


def test_a_marketers_day(db: Database, server: LiveServer, page: Page, tmp_path: Path) -> None:
    shot = Shots(enabled=db.dialect == "sqlite")
    seeded = world(db)

    # --- log in (an unauthenticated page redirects to the login form) ------------------
    page.goto("/groups")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fgroups$"))
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    shot(page, "login")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/groups$"))
    expect(page.get_by_role("heading", name="Promo codes")).to_be_visible()

    # --- create a group by pasting 1,000 codes with some bad lines ----------------------
    page.get_by_role("button", name="Create new group").click()
    lines = [f"TOM{i:05d}" for i in range(1000)]
    lines.insert(100, "bad code")  # line 101
    lines.insert(500, "TOO-LONG-" + "X" * 60)  # line 501
    lines.insert(700, "Ünïcödé")  # line 701
    page.get_by_label("Name").fill(GROUP)
    page.get_by_label("Low-stock warning at").fill("100")
    page.get_by_label("Upload promo codes").fill("\n".join(lines))
    shot(page, "group-create", top=False)
    page.get_by_role("button", name="Create group").click()
    expect(page.locator('[data-testid="added"]')).to_have_text("1,000")
    expect(page.locator('[data-testid="invalid"]')).to_have_text("3")
    invalid = page.locator("table.invalid-lines tbody tr td:first-child")
    expect(invalid).to_have_text(["101", "501", "701"])
    expect(page.locator("#count-total")).to_have_text("1,000")
    expect(page.locator("#count-active")).to_have_text("1,000")
    gid = group_id_of(page)

    # --- edit: upload a file, Check first (a dry run), then Upload ----------------------
    codes_file = tmp_path / "codes.txt"
    codes_file.write_text("\n".join([*(f"FILE{i:03d}" for i in range(200)), "TOM00001", "FILE001"]))
    page.get_by_label(re.compile(r"^File")).set_input_files(str(codes_file))
    page.get_by_role("button", name="Check").click()
    report = page.locator("#report")
    expect(report).to_contain_text("Check result — nothing was uploaded yet")
    expect(report.locator('[data-testid="added"]')).to_have_text("200")
    expect(report.locator('[data-testid="already"]')).to_have_text("1")
    expect(report.locator('[data-testid="duplicates"]')).to_have_text("1")
    expect(page.locator("#count-total")).to_have_text("1,000")
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#report")).to_contain_text("Upload report")
    expect(page.locator("#count-total")).to_have_text("1,200")

    # A large file runs in the background: progress, then the report, without a reload.
    big = tmp_path / "big.txt"
    big.write_text("\n".join(f"BIG{i:06d}" for i in range(20_000)))
    page.get_by_label(re.compile(r"^File")).set_input_files(str(big))
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#report")).to_contain_text("Upload report", timeout=30_000)
    expect(page.locator("#count-total")).to_have_text("21,200")
    shot(page, "group-edit")
    shot(page, "group-edit-full", full=True)

    # --- copy the macro (the name has an apostrophe) ------------------------------------
    expect(page.locator("#macro-initial")).to_have_text(MACRO)
    copy = page.get_by_role("button", name="Copy macro: a new code")
    copy.click()
    expect(page.locator(".copied").first).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == MACRO

    # --- the groups list -----------------------------------------------------------------
    nav(page, "Promo codes")
    row = page.locator("table.groups tr", has_text=GROUP)
    expect(row).to_contain_text("21,200")
    expect(page.locator("table.groups tr", has_text="Winter 15%")).to_contain_text("Low stock")
    expect(page.locator("table.groups tr", has_text="Black Friday")).to_contain_text("Expires in")
    shot(page, "groups")
    if os.environ.get("PROMOCODES_DOCS_SCREENSHOT") == "1":  # `make docs`: the README's
        shot(page, "groups", path=ROOT / "docs" / "screenshot-groups.png")
        # And at a phone's width, its menu open.
        page.set_viewport_size({"width": 390, "height": 844})
        page.get_by_text("Menu", exact=True).click()
        shot(page, "groups-phone", path=ROOT / "docs" / "screenshot-groups-phone.png")
        page.get_by_text("Menu", exact=True).click()
        page.set_viewport_size({"width": 1280, "height": 800})

    # --- build a segment with both promo code filters -----------------------------------
    nav(page, "Segments")
    page.get_by_role("button", name="New segment").click()
    page.get_by_label("Segment name").fill("No codes yet")
    expect(page.locator("#segment-count")).to_have_text("30")  # no conditions: everyone
    page.get_by_role("button", name="+ Quantity of issued promo codes").click()
    count_cond = page.locator(".cond.issued_count")
    count_cond.get_by_label("Comparison").select_option("lt")
    count_cond.get_by_label("Number").fill("1")
    count_cond.get_by_label("from", exact=True).select_option(label=GROUP)
    expect(page.locator("#segment-count")).to_have_text("30")
    page.get_by_role("button", name="+ Promo codes issued from the group").click()
    from_cond = page.locator(".cond.issued_from_group")
    from_cond.get_by_label("Received").select_option("1")  # did not receive
    from_cond.get_by_label("from the group").select_option(label="Old")
    expect(page.locator("#segment-count")).to_have_text("25")
    # A text condition compares exactly unless "any case" is ticked.
    page.get_by_role("button", name="+ Customer field").click()
    field_cond = page.locator(".cond.field")
    field_cond.get_by_label("Comparison").select_option("ends_with")
    field_cond.get_by_label("Value").fill("@EXAMPLE.COM")
    expect(page.locator("#segment-count")).to_have_text("0")
    field_cond.get_by_label("any case").check()
    expect(page.locator("#segment-count")).to_have_text("25")
    expect(page.locator("#preview")).to_contain_text("p5")
    shot(page, "segment-builder")
    page.get_by_role("button", name="Save segment").click()
    expect(page.locator(".flash")).to_contain_text("Segment “No codes yet” saved.")

    # --- compose a mailing with the macro; live validation points at the problem --------
    nav(page, "Mailings")
    page.get_by_role("button", name="New mailing").click()
    page.get_by_label("Name").fill("Welcome gift")
    page.get_by_label("Segment").select_option(label="No codes yet")
    page.get_by_label("Subject").fill("A gift for you, {{ client.first_name }}")
    body = page.get_by_label("Text body")
    body.fill("Hello!\nYour code: {{client.promocode('Toms 10%')}}")
    expect(page.locator("#problems-body_text")).to_contain_text("line 2, column")
    body.fill(f"Hello {{{{ client.first_name }}}}!\nYour code: {MACRO}")
    expect(page.locator("#problems-body_text")).to_have_text("")
    expect(page.locator("#template-groups")).to_contain_text(GROUP)
    page.get_by_role("button", name="Save as draft").click()
    expect(page.locator(".flash")).to_contain_text("Mailing saved as a draft.")
    expect(page.locator("table.stock")).to_contain_text("enough")

    # Preview as a chosen customer: placeholder code, nothing consumed.
    before = counts(db, gid).active
    page.get_by_label("As customer").fill("p7")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview-text")).to_contain_text("Hello P7!")
    expect(page.locator("#preview-text")).to_contain_text("Your code: PREVIEW-TOM-S-10-")
    assert counts(db, gid).active == before
    page.get_by_label("Send the preview to (email)").fill("me@example.com")
    page.get_by_role("button", name="Send test").click()
    expect(page.locator("#test-result")).to_contain_text("SMTP is not configured")
    shot(page, "mailing-compose")

    # --- send, and watch the progress reach 100 % --------------------------------------
    page.get_by_role("button", name="Send…").click()
    expect(page.locator("#recipients")).to_have_text("25")
    # Enter in the time field schedules (here: asks for a time); it never sends at once.
    page.get_by_label("Start at (UTC, optional)").press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("enter the date and time to send at")
    page.get_by_role("button", name="Send now").click()
    expect(page.locator("#progress-percent")).to_have_text("100%", timeout=30_000)
    expect(page.locator("#mailing-status")).to_have_text("sent", timeout=30_000)
    expect(page.locator("#count-sent")).to_have_text("25")
    expect(page.locator("#count-skipped")).to_have_text("0")
    shot(page, "mailing-report")
    assert counts(db, gid).active == before - 25

    # --- its messages: browsed by status, and exported as CSV ---------------------------
    page.get_by_role("link", name="Messages", exact=True).click()
    expect(page.locator("#messages tbody tr")).to_have_count(25)
    expect(page.locator("#messages")).to_contain_text("Hello P7!")
    page.get_by_role("link", name="Skipped", exact=True).click()
    expect(page.get_by_text("No skipped messages.")).to_be_visible()
    page.get_by_role("link", name="All", exact=True).click()
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    with Path(download.value.path()).open(newline="") as f:
        exported = list(csv.reader(f))
    assert len(exported) == 1 + 25 and exported[0][:2] == ["message_id", "customer_id"]
    assert {row[1] for row in exported[1:]} == {f"p{i}" for i in range(5, 30)}
    shot(page, "mailing-messages")
    page.go_back()

    # --- a recipient's profile shows the initial issue ---------------------------------
    nav(page, "Customers")
    page.get_by_label("Search customers").fill("p7")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="p7", exact=True).click()
    history = page.locator("#promo-codes tbody tr")
    expect(history).to_have_count(1)
    expect(history.first).to_contain_text(GROUP)
    expect(history.first).to_contain_text("initial")
    expect(history.first).to_contain_text("mailing")
    expect(history.first).to_contain_text("not redeemed")
    shot(page, "customer-profile")

    # --- delete a group, after its confirmation -----------------------------------------
    page.goto(f"/groups/{gid}")
    page.get_by_role("button", name="Delete").click()
    expect(page.locator("[data-outcome]")).to_contain_text("archived")
    shot(page, "group-delete")
    page.get_by_role("button", name="Archive group").click()
    expect(page.locator(".flash")).to_contain_text(f"Group “{GROUP}” archived.")
    expect(page.locator("table.groups")).not_to_contain_text(GROUP)
    page.goto(f"/groups/{seeded['old']}")
    expect(page.get_by_role("heading", name="Old")).to_be_visible()

    # --- add a colleague: their password is shown once --------------------------------
    nav(page, "Settings")
    page.get_by_label("New user’s email").fill("colleague@example.com")
    page.get_by_role("button", name="Add user").click()
    expect(page.locator("#new-password")).to_have_text(re.compile(r"^[\w-]{16}$"))
    expect(page.locator("#users")).to_contain_text("colleague@example.com")
    shot(page, "settings", full=True)

    # The remaining pages render; screenshots for the record.
    for path, name in (("/campaigns/new", "campaign-new"), ("/settings/password", "password")):
        page.goto(path)
        shot(page, name)


def test_the_api_reference_works_offline(db: Database, server: LiveServer, page: Page) -> None:
    """``/docs`` from the packaged Swagger UI, with every request off this machine refused:
    an admin reaches it from the menu and finds the operations listed."""
    make_user(db)
    local = re.compile(r"^(https?|wss?)://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?/")
    blocked: list[str] = []

    def only_local(route: Any) -> None:
        url = route.request.url
        if local.match(url) or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    page.context.route("**/*", only_local)
    page.goto("/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/groups$"))
    nav(page, "API reference")
    expect(page).to_have_url(re.compile(r"/docs$"))
    operations = page.locator(".opblock-summary-path")
    expect(operations.first).to_be_visible()
    expect(page.get_by_text("/api/v1/groups/{group_id}/issue", exact=True)).to_be_visible()
    assert operations.count() >= 15
    assert blocked == [], f"the reference reached off this machine: {blocked}"
