"""The outbox on the web UI: a mailing's messages page by page with a status filter, and
the CSV export (formula-safe, paged, audited)."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from promocodes.config import Settings
from promocodes.db import Database
from promocodes.messaging import outbox
from promocodes.worker import run_until
from tests.audit.common import entries, only
from tests.factories import group_with_codes
from tests.messaging.test_mailings import EVERYONE, mailing, people, segment
from tests.messaging.test_outbox import FORMULA, store
from tests.web.conftest import Ui


def test_the_export_is_formula_safe_paged_and_audited(
    ui: Ui, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    people(db, 2)
    seg = segment(db, "All", EVERYONE)
    mid = mailing(db, seg, "x", name="Spring")
    monkeypatch.setattr(outbox, "EXPORT_PAGE", 2)  # several pages from a few messages
    ids = store(db, mid, ["sent", "skipped", "sent", "sent", "failed"], subject=FORMULA)
    response = ui.get(f"/mailings/{mid}/messages.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert f'filename="mailing-{mid}-messages.csv"' in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == outbox.EXPORT_COLUMNS
    assert len(rows) == 1 + len(ids)
    cells = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert [c["status"] for c in cells] == ["sent", "skipped", "sent", "sent", "failed"]
    assert all(c["subject"] == "'" + FORMULA for c in cells)
    assert cells[1]["skip_reason"] == "group-exhausted" and cells[0]["body_text"] == "body 0"
    assert cells[0]["message_id"].startswith("<k-") and cells[0]["message_id"].endswith(
        "@promocodes.local>"
    )
    entry = only(db, "export.messages")
    assert (entry.target_type, entry.target_id, entry.target_name) == (
        "mailing",
        str(mid),
        "Spring",
    )
    skipped = ui.get(f"/mailings/{mid}/messages.csv?status=skipped")
    assert len(list(csv.reader(io.StringIO(skipped.text)))) == 2
    assert len(entries(db, "export.messages")) == 2
    missing = ui.get("/mailings/999/messages.csv")
    assert missing.status_code == 404 and len(entries(db, "export.messages")) == 2


def test_the_outbox_needs_a_login(anon: TestClient, db: Database) -> None:
    people(db, 1)
    mid = mailing(db, segment(db, "All", EVERYONE), "x")
    store(db, mid, ["sent"])
    for url in (f"/mailings/{mid}/messages", f"/mailings/{mid}/messages.csv"):
        response = anon.get(url, follow_redirects=False)
        assert response.status_code == 303 and "/login" in response.headers["location"]
    assert entries(db, "export.messages") == []


def test_a_sent_mailing_is_browsed_by_status(ui: Ui, db: Database) -> None:
    group_with_codes(db, "Spring", ["S1", "S2"])
    people(db, 3)
    sid = segment(db, "All", EVERYONE)
    mid = mailing(db, sid, "Code: {{ client.promocode('Spring') }}", name="Spring sale")
    assert ui.post(f"/mailings/{mid}/send", {"allow_partial": "1"}).status_code == 303
    run_until(db, Settings(database_url=db.url), timeout=60)
    assert f'href="/mailings/{mid}/messages"' in ui.get(f"/mailings/{mid}").text
    page = ui.get(f"/mailings/{mid}/messages").text
    assert page.count("<tr>") == 1 + 3  # the header and three messages
    assert "Code: S1" in page and "Code: S2" in page and "Group out of codes" in page
    skipped = ui.get(f"/mailings/{mid}/messages?status=skipped").text
    assert skipped.count("<tr>") == 2 and "Code: S" not in skipped
    assert f'href="/mailings/{mid}/messages.csv?status=skipped"' in skipped
    assert "No failed messages." in ui.get(f"/mailings/{mid}/messages?status=failed").text
    # A status that does not exist shows every message.
    assert ui.get(f"/mailings/{mid}/messages?status=nope").text.count("<tr>") == 4
    assert ui.get("/mailings/999/messages").status_code == 404


def test_pages_link_to_the_next(ui: Ui, db: Database) -> None:
    people(db, 2)
    mid = mailing(db, segment(db, "All", EVERYONE), "x")
    store(db, mid, ["sent"] * 51)
    first = ui.get(f"/mailings/{mid}/messages").text
    assert first.count("<tr>") == 1 + 50 and 'rel="next"' in first
    after = first.split(f"/mailings/{mid}/messages?after=")[1].split('"')[0]
    second = ui.get(f"/mailings/{mid}/messages?after={after}").text
    assert second.count("<tr>") == 2 and "body 50" in second and 'rel="next"' not in second


def test_a_messages_html_is_shown_rendered_in_a_sandbox(ui: Ui, db: Database) -> None:
    group_with_codes(db, "Spring", ["S1"])
    people(db, 1)
    sid = segment(db, "All", EVERYONE)
    html = "<p>Code: <b>{{ client.promocode('Spring') }}</b></p><script>alert(1)</script>"
    mid = mailing(db, sid, "Code", name="Spring html", body_html=html)
    assert ui.post(f"/mailings/{mid}/send").status_code == 303
    run_until(db, Settings(database_url=db.url), timeout=60)
    page = ui.get(f"/mailings/{mid}/messages").text
    # Rendered in a frame allowed nothing (no script, no form, no access to the page),
    # its HTML escaped into srcdoc; the source stays one click away.
    assert 'sandbox="" loading="lazy" srcdoc="&lt;p&gt;Code: &lt;b&gt;S1' in page
    assert "<script>alert" not in page and "HTML source" in page
