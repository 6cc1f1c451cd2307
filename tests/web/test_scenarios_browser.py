"""Scenarios of the web UI in a real browser, each as a marketer would live it: a group
archived while a segment and a draft mailing still use it; a spreadsheet's file uploaded,
and a workbook refused. SQLite only, one browser for
the module."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import pytest

from promocodes.codes import uploads
from promocodes.db import Database
from tests.factories import group_with_codes, issue
from tests.live import LiveServer, live_server
from tests.messaging.test_mailings import mailing, people, segment
from tests.web.conftest import EMAIL, PASSWORD, make_user
from tests.web.session import logged_in_page
from tests.web.test_browser import browser as browser

with contextlib.suppress(ImportError):  # the browser fixture reports a missing install
    from playwright.sync_api import Browser, Page, expect


@pytest.fixture
def server(sqlite_db: Database) -> Iterator[LiveServer]:
    make_user(sqlite_db)
    with live_server(sqlite_db) as live:
        yield live


@pytest.fixture
def page(browser: Browser, server: LiveServer) -> Iterator[Page]:
    with logged_in_page(browser, server.url, 1280, 800) as page:
        yield page


def test_archiving_a_group_in_use_asks_names_it_everywhere_and_strands_nothing(
    sqlite_db: Database, page: Page
) -> None:
    db = sqlite_db
    people(db, 5)
    autumn = group_with_codes(db, "Autumn 5%", [f"AUT{i}" for i in range(10)])
    group_with_codes(db, "Winter 10%", [f"WIN{i}" for i in range(10)])
    issue(db, "p0", autumn, key="k0")  # history: deleting archives the group
    tree = {"type": "issued_from_group", "group_id": autumn}
    seg = segment(db, "Had autumn", {"type": "not", "filter": tree})
    draft = mailing(db, seg, "Your code: {{client.promocode('Autumn 5%')}}", name="Autumn reminder")

    # Archiving lists what uses the group, and asks.
    page.goto(f"/groups/{autumn}/delete")
    used = page.locator("#used-by")
    expect(used).to_contain_text("Had autumn")
    expect(used).to_contain_text("Autumn reminder")
    page.get_by_role("button", name="Archive group anyway").click()
    expect(page.locator(".flash")).to_contain_text("Group “Autumn 5%” archived.")

    # The profile's link to it still opens the group: read-only, badged, with its history.
    page.goto("/customers/p0")
    page.locator("#promo-codes").get_by_role("link", name="Autumn 5%").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Autumn 5%")
    expect(page.locator(".badge.archived")).to_have_text("Archived")
    expect(page.get_by_test_id("archived-notice")).to_be_visible()
    expect(page.get_by_role("button", name="Upload", exact=True)).to_have_count(0)

    # The segment shows the archived group by name, not another one in its place.
    page.goto(f"/segments/{seg}")
    expect(page.locator("#archived-groups")).to_contain_text("Autumn 5%")
    picker = page.locator(".cond.issued_from_group").get_by_label("from the group")
    expect(picker.locator("option:checked")).to_have_text("Autumn 5% (archived)")
    picker.select_option(label="Winter 10%")
    page.get_by_role("button", name="Save segment").click()
    expect(page.locator(".flash")).to_contain_text("saved")

    # The draft cannot be sent while its template names the archived group, and says why.
    page.goto(f"/mailings/{draft}/send")
    expect(page.locator("#send-blocked")).to_contain_text("Edit the mailing")
    expect(page.get_by_role("button", name="Send now")).to_be_disabled()
    page.goto(f"/mailings/{draft}")
    expect(page.locator("#problems-body_text")).to_contain_text("is archived: choose a live group")
    page.get_by_label("Text body").fill("Your code: {{client.promocode('Winter 10%')}}")
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator(".flash")).to_contain_text("saved")
    page.goto(f"/mailings/{draft}/send")
    expect(page.locator("#send-blocked")).to_have_count(0)
    expect(page.get_by_role("button", name="Send now")).to_be_enabled()


def test_a_refused_form_says_what_is_wrong_at_the_top_focuses_it_and_keeps_the_typing(
    page: Page,
) -> None:
    # A phone's height: the wrong field is far below the top of the form.
    page.set_viewport_size({"width": 390, "height": 700})
    page.goto("/groups/new")
    page.get_by_label("Name").fill("Dates")
    page.get_by_label("Valid from").fill("2027-02-01T00:00")
    page.get_by_label("Valid until").fill("2027-01-01T00:00")
    page.get_by_label("Upload promo codes").fill("ONE\nTWO")
    page.get_by_role("button", name="Create group").click()

    summary = page.locator("#error-summary")
    expect(summary).to_contain_text("Nothing was saved yet")
    expect(summary).to_contain_text("Valid until: “valid until” must be later than “valid from”")
    # At the top of the page, above the form; the focus (and the scroll) is on the field.
    top = summary.bounding_box()
    form = page.locator("main form").first.bounding_box()
    assert top is not None and form is not None and top["y"] < form["y"]
    expect(page.get_by_label("Valid until")).to_be_focused()
    expect(page.get_by_label("Name")).to_have_value("Dates")
    expect(page.get_by_label("Upload promo codes")).to_have_value("ONE\nTWO")

    # Its line leads to the field; corrected, the group is created.
    summary.get_by_role("link", name="Valid until").click()
    page.get_by_label("Valid until").fill("2027-03-01T00:00")
    page.get_by_role("button", name="Create group").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Dates")


def test_uploading_a_spreadsheet_file_warns_lists_repeats_and_refuses_a_workbook(
    sqlite_db: Database, page: Page
) -> None:
    spring = group_with_codes(sqlite_db, "Spring 10%", ["OLD-1"])
    table = (
        "code;valid_until\r\n"
        "SPR-1;2031-05-31\r\n"
        "SPR-2;2020-05-31\r\n"  # past its date: a warning, not added
        "SPR-3;\r\n"
        "SPR-1;2031-05-31\r\n"  # the same as line 2
        "OLD-1;\r\n"  # already in the group
    )
    page.goto(f"/groups/{spring}")
    history = page.locator("section[aria-labelledby=history-h] tbody tr")
    expect(history).to_have_count(1)
    file = page.get_by_label(re.compile(r"^File"))
    file.set_input_files({"name": "spring.csv", "mimeType": "text/csv", "buffer": table.encode()})
    page.get_by_role("button", name="Upload", exact=True).click()
    report = page.locator("#report")
    expect(report).to_contain_text("Upload report")
    expect(report.get_by_test_id("added")).to_have_text("2")
    expect(report.get_by_test_id("expired")).to_have_text("1")
    expect(report.get_by_test_id("duplicates")).to_have_text("1")
    expect(report.get_by_test_id("already")).to_have_text("1")
    expect(report.get_by_test_id("invalid")).to_have_text("0")
    warning = page.locator("#expired-lines tbody tr")
    expect(warning).to_have_count(1)
    expect(warning).to_contain_text("3")
    expect(warning).to_contain_text("SPR-2")
    expect(warning).to_contain_text("expired on 2020-05-31: not added")
    page.locator("#duplicate-lines summary").click()
    repeats = page.locator("#duplicate-lines tbody tr")
    expect(repeats).to_have_count(2)
    expect(repeats.nth(0)).to_contain_text("SPR-1")
    expect(repeats.nth(0)).to_contain_text("Same as line 2")
    expect(repeats.nth(1)).to_contain_text("OLD-1")
    expect(repeats.nth(1)).to_contain_text("Already in this group")
    expect(page.locator("#count-total")).to_have_text("3")
    expect(history).to_have_count(2)

    # A workbook saved as .xlsx (and renamed .csv) is refused above the form, in one
    # sentence, and leaves nothing in the history.
    workbook = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00[Content_Types].xml" + bytes(500)
    file.set_input_files({"name": "spring.csv", "mimeType": "text/csv", "buffer": workbook})
    page.get_by_role("button", name="Upload", exact=True).click()
    refused = page.locator("#upload-error")
    expect(refused).to_have_text(
        "This file is not a text file (it looks like an Excel workbook or another ZIP "
        "archive): save it as CSV or plain text and upload again."
    )
    said = refused.bounding_box()
    codes = page.get_by_label("Codes, one per line").bounding_box()
    assert said is not None and codes is not None and said["y"] < codes["y"]
    page.reload()
    expect(history).to_have_count(2)
    expect(page.locator("#count-total")).to_have_text("3")
    with sqlite_db.read() as s:
        assert uploads.count(s) == 2


def test_each_upload_submit_replaces_the_message_and_the_result_and_a_refusal_is_focused(
    sqlite_db: Database, page: Page
) -> None:
    group = group_with_codes(sqlite_db, "Phone", ["OLD-1"])
    page.set_viewport_size({"width": 390, "height": 700})  # a phone: the form is tall
    page.goto(f"/groups/{group}")
    file = page.get_by_label(re.compile(r"^File"))
    report, refused = page.locator("#report"), page.locator("#upload-error")
    old = "code;valid_until\nOLD-2;2020-01-31\n"
    file.set_input_files({"name": "expired.csv", "mimeType": "text/csv", "buffer": old.encode()})
    page.get_by_role("button", name="Check", exact=True).click()
    expect(report).to_contain_text("Check result")

    # Refused: the sentence at the top, focused and on screen; the earlier Check is gone.
    workbook = b"PK\x03\x04\x14\x00\x06\x00" + bytes(500)
    file.set_input_files({"name": "fake.xlsx", "mimeType": "application/zip", "buffer": workbook})
    page.get_by_role("button", name="Upload", exact=True).click()
    alert = refused.get_by_role("alert")
    expect(alert).to_contain_text("This file is not a text file")
    expect(alert).to_be_focused()
    expect(alert).to_be_in_viewport()
    expect(report).to_be_empty()

    # The reverse: a good Check after a refusal removes the refusal.
    file.set_input_files({"name": "good.csv", "mimeType": "text/csv", "buffer": b"code\nNEW-1\n"})
    page.get_by_role("button", name="Check", exact=True).click()
    expect(report).to_contain_text("Check result")
    expect(refused).to_be_empty()

    # "Not both" replaces the result too.
    page.get_by_label("Codes, one per line").fill("NEW-2")
    page.get_by_role("button", name="Check", exact=True).click()
    expect(refused).to_contain_text("Paste codes or choose a file, not both.")
    expect(report).to_be_empty()


def test_a_refusal_without_javascript_is_focused_on_a_phone(
    browser: Browser, server: LiveServer
) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 700}, base_url=server.url, java_script_enabled=False
    )
    try:
        page = context.new_page()
        page.goto("/login")
        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.goto("/groups/new")
        page.get_by_label("Name").fill("NoJs")
        page.get_by_role("button", name="Create group").click()
        page.get_by_label(re.compile(r"^File")).set_input_files(
            {
                "name": "fake.xlsx",
                "mimeType": "application/zip",
                "buffer": b"PK\x03\x04" + bytes(99),
            }
        )
        page.get_by_role("button", name="Upload", exact=True).click()
        alert = page.locator("#upload-error").get_by_role("alert")
        expect(alert).to_contain_text("This file is not a text file")
        expect(alert).to_be_focused()
        expect(alert).to_be_in_viewport()
    finally:
        context.close()
