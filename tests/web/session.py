"""A browser page logged in as the test user, failing its test on any JavaScript error."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from tests.web.conftest import EMAIL, PASSWORD

with contextlib.suppress(ImportError):  # the browser fixture reports a missing install
    from playwright.sync_api import Browser, Page


@contextlib.contextmanager
def logged_in_page(browser: Browser, base_url: str, width: int, height: int) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": width, "height": height}, base_url=base_url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/groups$"))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors in the page: {errors}"
