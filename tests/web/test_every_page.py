"""Every page of the web UI in a real browser, at a phone's width and a laptop's, with the
demo's data and a group whose name is as long as names may be: the page never scrolls
sideways, no script fails, and no developer word reaches the marketer.

The pages come from the route table (every GET route of the UI that answers with a
page), so a new page is visited without anyone listing it here. SQLite only, one
browser for the module (~20 s).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import pytest

from promocodes.app import create_app
from promocodes.codes import service as groups
from promocodes.codes.schemas import GroupCreate
from promocodes.config import Settings
from promocodes.db import Database
from promocodes.demo import build
from tests.live import LiveServer, live_server
from tests.test_access_matrix import routes
from tests.web.conftest import EMAIL, PASSWORD, make_user
from tests.web.test_browser import browser as browser

with contextlib.suppress(ImportError):  # the browser fixture reports a missing install
    from playwright.sync_api import Browser, Page

WIDTHS = (390, 1366)
LONG_NAME = ("Spring clearance for loyal customers in every region " * 4)[:200].strip()
# Not pages: downloads, and pieces htmx swaps into a page.
NOT_PAGES = re.compile(r"\.csv$|/status$|/progress$|^/$|^/login$")
DEV_WORDS = (
    re.compile(r"\b[a-z]+_[a-z]+\b"),
    re.compile(r"filters\["),
    re.compile(r"\b(?:mailing|campaign|segment|group|key)\s*#\s*\d+|api[-_]key:\d+", re.I),
)
# The text a marketer reads: code samples, fields and scripts are theirs or ours.
VISIBLE_TEXT = """() => {
  const copy = document.body.cloneNode(true);
  copy.querySelectorAll('code, pre, textarea, script, style, select, .mono')
    .forEach(e => e.remove());
  return copy.innerText;
}"""

# What sticks out, for the failure message: the first element reaching past the window
# whose children all stay inside it.
CULPRIT = """() => {
  const w = window.innerWidth;
  const out = [...document.querySelectorAll('body *')].filter(
    e => e.getBoundingClientRect().right > w + 1 && !e.closest('.table-wrap'));
  const leaf = out.find(e => ![...e.children].some(c => out.includes(c))) || out[0];
  return leaf ? leaf.tagName.toLowerCase() + '.' + leaf.className + ' ' + (leaf.id || '') +
    ' ' + (leaf.textContent || '').trim().slice(0, 40) : '?';
}"""


def page_paths(db: Database) -> list[str]:
    app = create_app(Settings(database_url=db.url), db)
    paths = []
    for method, path, module in routes(app):
        if method == "GET" and module.startswith("promocodes.web") and not NOT_PAGES.search(path):
            paths.append(path)
    return paths


def ids(db: Database) -> dict[str, list[str]]:
    """Real ids for each path parameter: the demo's and the long-named group's."""
    from sqlalchemy import text  # the test reads what the demo left; no service lists it all

    def column(sql: str) -> list[str]:
        with db.read() as s:
            return [str(v) for v in s.execute(text(sql)).scalars()]

    return {
        "group_id": column("SELECT id FROM code_groups ORDER BY id DESC LIMIT 2"),
        "segment_id": column("SELECT id FROM segments ORDER BY id LIMIT 2"),
        "mailing_id": column("SELECT id FROM mailings ORDER BY id DESC LIMIT 2"),
        "campaign_id": column("SELECT id FROM campaigns ORDER BY id LIMIT 2"),
        # The first customer, and one who got a code through the API (its key is named).
        "customer_id:path": column("SELECT external_id FROM customers ORDER BY id LIMIT 1")
        + column(
            "SELECT c.external_id FROM customers c JOIN issuances i ON i.customer_id = c.id"
            " WHERE i.source = 'api' ORDER BY c.id LIMIT 1"
        ),
        "upload_id": column("SELECT id FROM uploads ORDER BY id LIMIT 1"),
        "key_id": column("SELECT id FROM api_keys ORDER BY id LIMIT 1"),
        "user_id": column("SELECT id FROM users ORDER BY id DESC LIMIT 1"),
    }


def urls(db: Database) -> list[str]:
    found = ids(db)
    out: list[str] = []
    for path in page_paths(db):
        params = re.findall(r"\{([^}]+)\}", path)
        if not params:
            out.append(path)
            continue
        assert len(params) == 1, path
        values = found[params[0]]
        assert values, f"the demo has nothing for {path}"
        out.extend(path.replace("{" + params[0] + "}", v) for v in values)
    return out


@pytest.fixture
def server(sqlite_db: Database) -> Iterator[LiveServer]:
    build(sqlite_db, scale=0.05)
    make_user(sqlite_db)
    with sqlite_db.write() as s:
        groups.create_group(s, GroupCreate(name=LONG_NAME))
        # A second user, so the pages about another user have someone to show.
        from promocodes.users import service as users

        users.create_user(s, "colleague@example.com", "a long password", role="viewer")
    with live_server(sqlite_db) as live:
        yield live


def visit(page: Page, url: str, errors: list[str]) -> list[str]:
    problems = []
    errors.clear()
    answer = page.goto(url)
    if answer is None or answer.status >= 400:
        problems.append(f"{url}: answered {answer.status if answer else 'nothing'}")
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if width[0] > width[1]:
        culprit = page.evaluate(CULPRIT)
        problems.append(f"{url}: {width[0]} px wide in a {width[1]} px window ({culprit})")
    if errors:
        problems.append(f"{url}: console {errors}")
    text: str = page.evaluate(VISIBLE_TEXT)
    for pattern in DEV_WORDS:
        for hit in set(pattern.findall(text)):
            problems.append(f"{url}: developer word {hit!r}")
    return problems


def test_every_page_fits_and_speaks_human(
    browser: Browser,
    server: LiveServer,
    sqlite_db: Database,
) -> None:
    targets = urls(sqlite_db)
    problems: list[str] = []
    errors: list[str] = []  # the open page's, emptied before each visit
    for width in WIDTHS:
        context = browser.new_context(viewport={"width": width, "height": 800}, base_url=server.url)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.goto("/login")
        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(r"/groups$"))
        for url in targets:
            problems += [f"{width}: {p}" for p in visit(page, url, errors)]
        context.close()
    assert problems == [], "\n".join(problems)
