"""A paste over its limit is answered on the page in plain words (never a JSON problem),
and the page keeps what it can: with htmx only the report area changes, so the pasted
text stays in the form; without it the group's page comes back with the message."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from promocodes.db import Database
from tests.factories import counts, group_with_codes
from tests.web.conftest import Ui, app_client, log_in, make_user

LIMIT = 4096
TOO_MUCH = "\n".join(f"PASTE{i:06d}" for i in range(1000))  # ~12 kB, one form field
SAID = "What you sent is larger than 4,096 bytes, more than this form takes."


@pytest.fixture
def small_ui(db: Database) -> Iterator[Ui]:
    make_user(db)
    with app_client(db, max_body_bytes=LIMIT) as client:
        assert log_in(client).status_code == 303
        yield Ui(client, db)


def test_a_paste_over_the_limit_is_a_message_on_the_page(small_ui: Ui, db: Database) -> None:
    gid = group_with_codes(db, "Pasted", ["KEEP1"])
    url = f"/groups/{gid}/upload"
    # htmx (the browser's way): an HTML fragment for the report area.
    swapped = small_ui.htmx(url, {"codes": TOO_MUCH, "action": "upload"})
    assert swapped.status_code == 413
    assert swapped.headers["content-type"].startswith("text/html")
    assert SAID in swapped.text and "choose the file instead" in swapped.text
    assert "payload-too-large" not in swapped.text
    # A plain multipart post (no JavaScript): the group's page, with the message.
    plain = small_ui.client.post(
        url,
        data={"csrf_token": small_ui.token, "codes": TOO_MUCH, "action": "check"},
        files={"file": ("", b"", "application/octet-stream")},
    )
    assert plain.status_code == 413 and plain.headers["content-type"].startswith("text/html")
    assert SAID in plain.text and "Upload promo codes" in plain.text and "Pasted" in plain.text
    # A paste within the limit still works on the same page.
    fine = small_ui.htmx(url, {"codes": "NEW1\nNEW2", "action": "check"})
    assert fine.status_code == 200 and "Check result" in fine.text
    assert counts(db, gid).total == 1


def test_a_new_group_form_over_the_body_limit_is_a_page(small_ui: Ui) -> None:
    sent = small_ui.post("/groups/new", {"name": "Big", "codes": TOO_MUCH})
    assert sent.status_code == 413 and sent.headers["content-type"].startswith("text/html")
    assert SAID in sent.text
    assert small_ui.client.get("/groups").text.count(">Big<") == 0
