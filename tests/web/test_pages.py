"""Every page renders for a logged-in user (with data in every section), the static files
are served with the app, and errors are HTML pages (or fragments for htmx)."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from promocodes.db import Database
from promocodes.messaging import campaigns
from promocodes.messaging.schemas import CampaignIn
from tests.factories import group_with_codes, issue
from tests.messaging.test_mailings import EVERYONE, mailing, people, segment
from tests.web.conftest import Ui


class _Controls(HTMLParser):
    """Form controls and labels: every visible control needs a <label for> or a
    wrapping <label>."""

    def __init__(self) -> None:
        super().__init__()
        self.label_for: set[str] = set()
        self.depth = 0
        self.controls: list[tuple[str, str | None, bool]] = []  # (tag, id, wrapped)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "label":
            self.depth += 1
            if a.get("for"):
                self.label_for.add(a["for"] or "")
        elif tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.controls.append((tag, a.get("id"), self.depth > 0))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.depth -= 1


def unlabelled(html: str) -> list[str]:
    parser = _Controls()
    parser.feed(html)
    return [
        f"{tag}#{id_}"
        for tag, id_, wrapped in parser.controls
        if not wrapped and (id_ is None or id_ not in parser.label_for)
    ]


def test_every_page_renders(ui: Ui, db: Database) -> None:
    gid = group_with_codes(db, "Autumn", ["A1", "A2", "A3"])
    people(db, 3)
    issue(db, "p1", gid, key="k")
    sid = segment(db, "All", EVERYONE)
    mid = mailing(db, sid, "Code {{ client.promocode('Autumn') }}")
    with db.write() as s:
        cid = campaigns.create(
            s, CampaignIn(name="Hello", event="signup", body_text="Hi", subject="Hi")
        ).id
    pages = {
        "/groups": "Autumn",
        "/groups/new": "Create new group",
        f"/groups/{gid}": "Upload promo codes",
        f"/groups/{gid}/delete": "archived",
        "/customers": "p1",
        "/customers/p1": "Autumn",
        "/segments": "All",
        "/segments/new": "Customers who match",
        f"/segments/{sid}": "All",
        "/mailings": "M",
        "/mailings/new": "New mailing",
        f"/mailings/{mid}": "Pre-send check",
        f"/mailings/{mid}/send": "Send now",
        f"/mailings/{mid}/cancel": "Cancel mailing",
        "/campaigns": "Hello",
        "/campaigns/new": "New campaign",
        f"/campaigns/{cid}": "Hello",
        "/settings": "API keys",
    }
    for path, text in pages.items():
        response = ui.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html"), path
        assert text in response.text, path
        assert unlabelled(response.text) == [], path


def test_static_files_are_served_and_vendored(ui: Ui) -> None:
    htmx = ui.get("/static/js/htmx.min.js")
    assert htmx.status_code == 200 and "javascript" in htmx.headers["content-type"]
    assert htmx.text.startswith("/*! htmx.org 2.")
    css = ui.get("/static/css/pico.min.css")
    assert css.status_code == 200 and "Pico CSS" in css.text
    for path in ("/static/css/app.css", "/static/js/app.js", "/static/js/segments.js"):
        assert ui.get(path).status_code == 200, path
    page = ui.get("/groups").text
    assert "https://" not in page.split("<body")[0]  # no CDN in the head


def test_errors_are_pages_and_fragments(ui: Ui) -> None:
    missing = ui.get("/groups/999")
    assert missing.status_code == 404 and "Group not found" in missing.text
    assert "<html" in missing.text
    invalid = ui.get("/groups/0")
    assert invalid.status_code == 422 and "<html" in invalid.text
    # ``int()`` would read this as group 10.
    assert ui.get("/groups/1_0").status_code == 422
    fragment = ui.get("/uploads/999/status", headers={"HX-Request": "true"})
    assert fragment.status_code == 404
    assert "<html" not in fragment.text and "Upload not found" in fragment.text
    inline = ui.htmx("/groups/999/upload", {"codes": "X1", "action": "check"})
    assert inline.status_code == 422 and "group 999 does not exist" in inline.text
    assert ui.get("/mailings/999").status_code == 404
    assert ui.get("/segments/999").status_code == 404
    assert ui.get("/campaigns/999").status_code == 404


def test_an_unknown_address_is_a_page_for_browsers_and_json_for_the_api(ui: Ui) -> None:
    browser = {"accept": "text/html,application/xhtml+xml"}
    page = ui.get("/no/such/page", headers=browser)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Page not found" in page.text
    api = ui.get("/api/v1/no-such-thing", headers=browser)
    assert api.status_code == 404 and api.headers["content-type"].startswith("application/")
    assert ui.get("/no/such/page").headers["content-type"].startswith("application/")


def test_the_login_page_points_to_the_administrator(anon: Any) -> None:
    text = anon.get("/login").text
    assert "administrator" in text and "promocodes users create" not in text
