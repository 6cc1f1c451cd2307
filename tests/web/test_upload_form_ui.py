"""The upload form's answers without a browser: a refusal replaces the result and a
result the refusal, files refused up front leave no history, the history's columns and
the report's file warnings (both backends)."""

from __future__ import annotations

import httpx

from promocodes.codes import uploads
from promocodes.db import Database
from tests.factories import group_with_codes
from tests.web.conftest import Ui


def _send(
    ui: Ui, gid: int, name: str, body: bytes, action: str = "check", htmx: bool = True
) -> httpx.Response:
    response: httpx.Response = ui.client.post(
        f"/groups/{gid}/upload",
        data={"csrf_token": ui.token, "action": action, "codes": ""},
        files={"file": (name, body, "text/csv")},
        headers={"HX-Request": "true"} if htmx else {},
        follow_redirects=False,
    )
    return response


def test_a_refusal_empties_the_result_and_a_result_removes_the_refusal(
    ui: Ui, db: Database
) -> None:
    gid = group_with_codes(db, "G", ["A1"])
    refused = _send(ui, gid, "image.png", b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert refused.status_code == 422 and refused.headers["HX-Retarget"] == "#upload-error"
    assert 'role="alert" tabindex="-1" autofocus' in refused.text
    assert '<div id="report" hx-swap-oob="innerHTML"></div>' in refused.text
    checked = _send(ui, gid, "good.csv", b"code\nB1\n")
    assert checked.status_code == 200 and "Check result" in checked.text
    assert '<div id="upload-error" hx-swap-oob="innerHTML"></div>' in checked.text
    both = ui.client.post(
        f"/groups/{gid}/upload",
        data={"codes": "X1", "action": "check"},
        files={"file": ("c.txt", b"X2\n", "text/plain")},
        headers={"HX-Request": "true", "X-CSRF-Token": ui.token},
    )
    assert "not both" in both.text and 'id="report" hx-swap-oob' in both.text
    # Without htmx the page comes back with the refusal focused (and so scrolled to).
    plain = _send(ui, gid, "image.png", b"\x89PNG\r\n\x1a\n" + bytes(100), htmx=False)
    assert 'role="alert" tabindex="-1" autofocus>This file is not a text file' in plain.text


def test_empty_files_and_headers_without_a_code_column_are_refused_without_history(
    ui: Ui, db: Database
) -> None:
    gid = group_with_codes(db, "G", ["A1"])
    for body in (b"", b"\n \r\n"):
        sent = _send(ui, gid, "empty.csv", body, action="upload")
        assert sent.status_code == 422 and "The file is empty: nothing to upload." in sent.text
    unknown = _send(ui, gid, "x.csv", b"name;Note\nPR-1;x\n", action="upload")
    assert unknown.status_code == 422
    assert (
        "No column of this file holds the codes" in unknown.text
        and "&#39;Note&#39;" in unknown.text
    )
    with db.read() as s:
        assert uploads.count(s) == 1  # only the group's first codes


def test_a_file_or_a_paste_of_a_header_alone_is_refused_at_the_top(ui: Ui, db: Database) -> None:
    gid = group_with_codes(db, "G", ["A1"])
    sent = _send(ui, gid, "codes.csv", b"code;valid_until\n", action="upload")
    assert sent.status_code == 422 and sent.headers["HX-Retarget"] == "#upload-error"
    assert (
        "The file has only a header line (&#39;code;valid_until&#39;) and no codes below it"
        in sent.text
    )
    pasted = ui.client.post(
        f"/groups/{gid}/upload",
        data={"csrf_token": ui.token, "action": "upload", "codes": "Code\n"},
        headers={"HX-Request": "true"},
    )
    assert pasted.status_code == 422 and pasted.headers["HX-Retarget"] == "#upload-error"
    assert "The pasted text has only a header line (&#39;Code&#39;)" in pasted.text
    with db.read() as s:
        assert uploads.count(s) == 1  # only the group's first codes


def test_history_counts_codes_past_their_date_and_the_report_warns_of_columns(
    ui: Ui, db: Database
) -> None:
    gid = group_with_codes(db, "G", [])
    body = "Promo Code;Expires;Note\nOK-1;31.01.2099;a\nOLD-1;2020-01-31;b\nOLD-2;2020-01-31;c\n"
    sent = _send(ui, gid, "spring.csv", body.encode(), action="upload", htmx=False)
    assert sent.status_code == 303
    page = ui.get(sent.headers["location"]).text
    assert "<li>column &#39;Note&#39; is not read</li>" in page
    history = page.partition('id="history-h"')[2]
    assert '<th scope="col" class="num">Past their date</th>' in history
    row = history.partition("<tbody>")[2].partition("</tr>")[0]
    cells = [c.strip() for c in row.split('<td class="num">')[1:]]
    assert [c.partition("<")[0] for c in cells] == ["3", "1", "0", "0", "0", "0", "2", "0"]
    assert 'accept=".txt,.csv,.tsv,' in page
