"""The Promo codes section without a browser: list, create with codes, edit, upload
(check, file, background), withdraw, export, delete (both backends)."""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import UTC, datetime

from promocodes.codes import service, uploads
from promocodes.codes.schemas import GroupUpdate
from promocodes.db import Database
from promocodes.messaging.rendering import MessageTemplate
from promocodes.messaging.templates import check
from promocodes.web.formats import macro
from tests.factories import (
    assert_counters_exact,
    counts,
    group_with_codes,
    issue,
    make_customer,
    make_group,
)
from tests.web.conftest import Ui, app_client, find, log_in

FIELDS = {"description": "", "valid_from": "", "valid_until": "", "low_stock_threshold": ""}


def report_numbers(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-testid="([\w-]+)">([^<]*)<', html))


def count_of(html: str, name: str) -> str:
    found = re.search(rf'id="count-{name}">([^<]*)<', html)
    assert found, name
    return found.group(1)


def test_home_goes_to_the_groups_list(ui: Ui) -> None:
    response = ui.get("/", follow_redirects=False)
    assert response.headers["location"] == "/groups"


def test_list_shows_counts_badges_search_and_pages(ui: Ui, db: Database) -> None:
    low = group_with_codes(db, "Low 5%", [f"L{i}" for i in range(3)])
    with db.write() as s:
        service.update_group(
            s,
            low,
            GroupUpdate(low_stock_threshold=5, valid_until=datetime(2020, 1, 1, tzinfo=UTC)),
        )
        for i in range(55):
            make_group(s, f"Bulk {i:02d}")
    page = ui.get("/groups").text
    assert "Low 5%" in page and "Low stock" in page and "Expired" in page
    assert "Create new group" in page
    assert "Next page" in page and "Bulk 53" not in page
    second = ui.get(find(r'href="(/groups\?[^"]*after=[^"]+)"', page).replace("&amp;", "&"))
    assert "Bulk 53" in second.text and "First page" in second.text
    found = ui.get("/groups", params={"q": "low"}).text
    assert "Low 5%" in found and "Bulk 01" not in found
    assert "No group matches" in ui.get("/groups", params={"q": "zzz"}).text


def test_create_a_group_with_pasted_codes_shows_the_report(ui: Ui, db: Database) -> None:
    lines = [f"SUMMER{i:04d}" for i in range(1000)]
    lines[10] = "bad code"
    lines[500] = "ÄÖÜ"
    lines.append("SUMMER0001")  # a duplicate within the paste
    response = ui.post(
        "/groups/new",
        {**FIELDS, "name": "Summer 10%", "low_stock_threshold": "50", "codes": "\n".join(lines)},
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert re.fullmatch(r"/groups/\d+\?upload=\d+#report", location)
    page = ui.get(location).text
    assert report_numbers(page) == {
        "received": "1,001",
        "added": "998",
        "duplicates": "1",
        "already": "0",
        "other-groups": "0",
        "invalid": "2",
        "expired": "0",
    }
    assert "<td>11</td>" in page and "<td>501</td>" in page  # invalid lines by number
    assert count_of(page, "total") == "998" and count_of(page, "active") == "998"
    assert "998 codes added." in page  # the flash


def test_create_keeps_everything_on_a_validation_error(ui: Ui, db: Database) -> None:
    with db.write() as s:
        make_group(s, "Taken")
    response = ui.post(
        "/groups/new",
        {
            **FIELDS,
            "name": " taken ",
            "description": "Keep me",
            "low_stock_threshold": "-3",
            "codes": "KEEP1\nKEEP2",
        },
    )
    assert response.status_code == 422
    assert "enter a whole number of at least 0" in response.text
    assert "Keep me" in response.text and "KEEP1\nKEEP2" in response.text
    response = ui.post("/groups/new", {**FIELDS, "name": " taken ", "codes": "KEEP1"})
    assert response.status_code == 422
    assert "already exists" in response.text and 'aria-invalid="true"' in response.text
    response = ui.post(
        "/groups/new",
        {
            **FIELDS,
            "name": "Dates",
            "valid_from": "2027-02-01T00:00",
            "valid_until": "2027-01-01T00:00",
        },
    )
    assert response.status_code == 422
    assert "“valid until” must be later than “valid from”" in response.text


def test_edit_changes_only_what_was_changed(ui: Ui, db: Database) -> None:
    until = datetime(2030, 1, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    with db.write() as s:
        gid = make_group(s, "Old name", valid_until=until, description="d").id
    page = ui.get(f"/groups/{gid}").text
    assert 'value="2030-01-31T23:59:59"' in page
    response = ui.post(
        f"/groups/{gid}",
        {
            "name": "New name",
            "description": "d",
            "valid_from": "",
            "valid_until": "2030-01-31T23:59:59",
            "low_stock_threshold": "7",
        },
    )
    assert response.status_code == 303
    with db.read() as s:
        group = service.get_group(s, gid)
        assert (group.name, group.low_stock_threshold, group.valid_until) == ("New name", 7, until)
    response = ui.post(f"/groups/{gid}", {**FIELDS, "name": ""})
    assert response.status_code == 422
    assert "name must not be empty" in response.text


def test_check_is_a_dry_run_and_upload_adds(ui: Ui, db: Database) -> None:
    other = group_with_codes(db, "Other", ["TAKEN1"])
    gid = group_with_codes(db, "Mine", ["OLD1"])
    pasted = "NEW1\nNEW2\nOLD1\nTAKEN1\nNEW1\nno good\n"
    checked = ui.htmx(f"/groups/{gid}/upload", {"codes": pasted, "action": "check"})
    assert "Check result" in checked.text
    assert report_numbers(checked.text) == {
        "received": "6",
        "added": "2",
        "duplicates": "1",
        "already": "1",
        "other-groups": "1",
        "invalid": "1",
        "expired": "0",
    }
    assert f'href="/groups/{other}">Other</a>' in checked.text
    assert counts(db, gid).total == 1
    uploaded = ui.htmx(f"/groups/{gid}/upload", {"codes": pasted, "action": "upload"})
    assert uploaded.status_code == 204
    assert re.fullmatch(rf"/groups/{gid}\?upload=\d+#report", uploaded.headers["HX-Redirect"])
    assert counts(db, gid).total == 3
    # Without htmx the same form works as a plain post and keeps the pasted text on a check.
    plain = ui.post(f"/groups/{gid}/upload", {"codes": "NEW3", "action": "check"})
    assert (
        plain.status_code == 200
        and "Check result" in plain.text
        and ">NEW3</textarea>" in plain.text
    )


def test_upload_a_file_and_the_errors_of_an_empty_or_double_upload(ui: Ui, db: Database) -> None:
    gid = group_with_codes(db, "Files", [])
    body = "code,valid_until\nF1,2031-01-01\nF2,\nF3,not a date\n"
    response = ui.client.post(
        f"/groups/{gid}/upload",
        data={"csrf_token": ui.token, "action": "upload", "codes": ""},
        files={"file": ("codes.csv", body.encode(), "text/csv")},
        follow_redirects=False,
    )
    assert response.status_code == 303
    page = ui.get(response.headers["location"]).text
    assert report_numbers(page)["added"] == "2" and report_numbers(page)["invalid"] == "1"
    assert "codes.csv" in page and "invalid valid_until" in page
    neither = ui.htmx(f"/groups/{gid}/upload", {"codes": "  ", "action": "upload"})
    assert neither.status_code == 422 and "Paste some codes" in neither.text
    both = ui.client.post(
        f"/groups/{gid}/upload",
        data={"codes": "X1", "action": "check"},
        files={"file": ("c.txt", b"X2\n", "text/plain")},
        headers={"HX-Request": "true", "X-CSRF-Token": ui.token},
    )
    assert both.status_code == 422 and "not both" in both.text


def test_a_file_that_is_not_text_is_refused_above_the_form(ui: Ui, db: Database) -> None:
    gid = group_with_codes(db, "G", ["A1"])
    image = b"\x89PNG\r\n\x1a\n" + bytes(100)
    for htmx in (False, True):
        sent = ui.client.post(
            f"/groups/{gid}/upload",
            data={"csrf_token": ui.token, "action": "upload", "codes": ""},
            files={"file": ("photo.txt", image, "text/plain")},
            headers={"HX-Request": "true"} if htmx else {},
            follow_redirects=False,
        )
        assert sent.status_code == 422
        assert "This file is not a text file (it looks like an image)" in sent.text
        if htmx:  # swapped in at the top of the form, not in the report below it
            assert sent.headers["HX-Retarget"] == "#upload-error"
        else:
            form = sent.text.partition('id="upload-form"')[2]
            assert form.index("not a text file") < form.index('id="codes"')
    with db.read() as s:
        assert uploads.count(s) == 1  # only the group's first codes


def test_a_large_file_uploads_in_the_background_with_progress(db: Database) -> None:
    from tests.web.conftest import make_user

    make_user(db)
    gid = group_with_codes(db, "Big", [])
    with app_client(db, upload_background_bytes=1_000) as client:
        log_in(client)
        ui = Ui(client, db)
        body = "\n".join(f"BIG{i:06d}" for i in range(5_000)).encode()
        response = client.post(
            f"/groups/{gid}/upload",
            data={"csrf_token": ui.token, "action": "upload"},
            files={"file": ("big.txt", body, "text/plain")},
            follow_redirects=False,
        )
        assert response.status_code == 303
        location = response.headers["location"]
        upload_id = int(find(r"upload=(\d+)", location))
        deadline = time.monotonic() + 30
        while True:
            status = client.get(f"/uploads/{upload_id}/status", headers={"HX-Request": "true"})
            if status.headers.get("HX-Refresh") == "true":
                break
            assert "Uploading big.txt" in status.text and 'hx-trigger="every 1s"' in status.text
            assert time.monotonic() < deadline
            time.sleep(0.05)
        page = client.get(location).text
        assert report_numbers(page)["added"] == "5,000"
        assert counts(db, gid).active == 5_000


def test_withdraw_asks_first_then_removes_the_available_codes(ui: Ui, db: Database) -> None:
    gid = group_with_codes(db, "Oops", ["W1", "W2", "W3"])
    with db.write() as s:
        make_customer(s, "alice")
    issue(db, "alice", gid, key="k1")
    page = ui.get(f"/groups/{gid}").text
    withdraw = find(r'href="(/uploads/\d+/withdraw)"', page)
    confirm = ui.get(withdraw)
    assert "still available" in confirm.text and "Withdraw upload" in confirm.text
    response = ui.post(withdraw)
    assert response.status_code == 303
    assert "2 available codes removed" in ui.get(response.headers["location"]).text
    assert counts(db, gid).total == 1


def test_codes_list_filters_by_status_and_exports_csv(ui: Ui, db: Database) -> None:
    gid = group_with_codes(db, "Export", ["-A1", "E2", "E3"])
    with db.write() as s:
        make_customer(s, "bob")
    issued = issue(db, "bob", gid, key="k")
    assert issued is not None
    page = ui.get(f"/groups/{gid}", params={"status": "issued"}).text
    assert issued in page and 'href="/customers/bob"' in page
    assert page.count('class="status issued"') == 1
    export = ui.get(f"/groups/{gid}/codes.csv")
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.text)))
    assert rows[0] == ["code", "status", "customer_id", "issued_at", "redeemed_at", "valid_until"]
    assert {r[0] for r in rows[1:]} == {"'-A1", "E2", "E3"}
    only = list(csv.reader(io.StringIO(ui.get(f"/groups/{gid}/codes.csv?status=issued").text)))
    assert [r[2] for r in only[1:]] == ["bob"]


def test_delete_says_whether_it_archives_or_removes(ui: Ui, db: Database) -> None:
    unused = group_with_codes(db, "Unused", ["U1"])
    used = group_with_codes(db, "Used", ["S1", "S2"])
    with db.write() as s:
        make_customer(s, "carol")
    issue(db, "carol", used, key="k")
    assert 'data-outcome="removed"' in ui.get(f"/groups/{unused}/delete").text
    confirm = ui.get(f"/groups/{used}/delete").text
    assert 'data-outcome="archived"' in confirm and "Archive group" in confirm
    response = ui.post(f"/groups/{used}/delete")
    assert response.status_code == 303
    listing = ui.get("/groups").text
    assert "Group “Used” archived." in listing and ">Used</a>" not in listing
    archived = ui.get("/groups", params={"show": "archived"}).text
    assert f'href="/groups/{used}"' in archived and "Archived</span>" in archived
    assert ">Unused</a>" not in archived
    assert ui.post(f"/groups/{unused}/delete").status_code == 303
    gone = ui.get(f"/groups/{unused}")
    assert gone.status_code == 404 and "Group not found" in gone.text


def test_macros_are_quoted_for_any_group_name(ui: Ui, db: Database) -> None:
    name = "Tom's \\ 10% “gift”"
    assert macro("promocode", name) == "{{client.promocode('Tom\\'s \\\\ 10% “gift”')}}"
    assert macro("last_promocode", "A'B") == "{{client.last_promocode('A\\'B')}}"
    gid = group_with_codes(db, name, ["Q1"])
    with db.read() as s:
        result = check(
            s, MessageTemplate("", f"{macro('promocode', name)} {macro('last_promocode', name)}")
        )
    assert result.valid and result.groups == [name]
    page = ui.get(f"/groups/{gid}").text
    assert 'data-copy="{{client.promocode(&#39;Tom\\&#39;s \\\\ 10% “gift”&#39;)}}"' in page


def test_flyer_box_is_saved_and_shown(ui: Ui, db: Database) -> None:
    created = ui.post("/groups/new", {**FIELDS, "name": "Flyer", "redeem_unissued": "1"})
    assert created.status_code == 303
    gid = int(find(r"/groups/(\d+)", created.headers["location"]))
    with db.read() as s:
        assert service.get_group(s, gid).redeem_unissued is True
    assert 'name="redeem_unissued" value="1" checked' in ui.get(f"/groups/{gid}").text
    # An unticked box is not sent at all: saving the form switches the setting off.
    assert ui.post(f"/groups/{gid}", {**FIELDS, "name": "Flyer"}).status_code == 303
    with db.read() as s:
        assert service.get_group(s, gid).redeem_unissued is False


def test_unblock_from_the_codes_list(ui: Ui, db: Database) -> None:
    from promocodes.codes import redemption

    gid = group_with_codes(db, "G", ["U1", "U2"])
    with db.write() as s:
        redemption.block(s, "U1")
    page = ui.get(f"/groups/{gid}", params={"status": "blocked"}).text
    # Only the blocked code is listed (as a cell: the page's random CSRF token may hold "U2").
    assert f'action="/groups/{gid}/codes/U1/unblock"' in page
    assert '<td class="mono">U1</td>' in page and '<td class="mono">U2</td>' not in page
    refused = ui.client.post(f"/groups/{gid}/codes/U1/unblock", follow_redirects=False)
    assert refused.status_code == 403  # no CSRF token
    done = ui.post(f"/groups/{gid}/codes/U1/unblock")
    assert done.status_code == 303 and done.headers["location"] == f"/groups/{gid}#codes-list"
    c = counts(db, gid)
    assert (c.active, c.blocked) == (2, 0)
    assert_counters_exact(db, gid)


def test_generate_from_the_group_page_and_its_refusals(ui: Ui, db: Database) -> None:
    gid = group_with_codes(db, "Generated", [])
    page = ui.get(f"/groups/{gid}")
    assert f'action="/groups/{gid}/generate"' in page.text
    done = ui.post(f"/groups/{gid}/generate", {"pattern": "WEB-####-??", "count": "30"})
    assert done.status_code == 303
    assert re.fullmatch(rf"/groups/{gid}\?upload=\d+#report", done.headers["location"])
    assert counts(db, gid).active == 30
    shown = ui.get(done.headers["location"])
    assert "generated <code>WEB-####-??</code>" in shown.text
    for data, says in (
        ({"pattern": "WEB-#", "count": "1"}, "guessable"),
        ({"pattern": "WEB #", "count": "1"}, "not allowed"),
        ({"pattern": "WEB-####", "count": ""}, "how many"),
        ({"pattern": "WEB-####", "count": "-3"}, "whole number"),
        ({"pattern": "WEB-####", "count": "0"}, "give 1 to"),
    ):
        refused = ui.post(f"/groups/{gid}/generate", data)
        assert refused.status_code == 422 and says in refused.text, data
        assert f'value="{data["pattern"]}"' in refused.text  # the form keeps what was typed
    assert (
        ui.client.post(
            f"/groups/{gid}/generate", data={"pattern": "X-****", "count": "1"}
        ).status_code
        == 403
    )
    assert counts(db, gid).active == 30


def test_benefit_and_limit_set_in_the_form_shown_on_list_and_page(ui: Ui, db: Database) -> None:
    bad = ui.post(
        "/groups/new",
        {
            **FIELDS,
            "name": "Autumn",
            "benefit_type": "amount",
            "benefit_value": "5.001",
            "benefit_currency": "EURO",
            "customer_limit": "0",
        },
    )
    assert bad.status_code == 422
    page = bad.text
    assert "three letters" in page and "decimal" in page and "greater than or equal to 1" in page
    assert 'value="5.001"' in page  # what was typed stays
    ok = ui.post(
        "/groups/new",
        {
            **FIELDS,
            "name": "Autumn",
            "benefit_type": "amount",
            "benefit_value": "5",
            "benefit_currency": "eur",
            "customer_limit": "2",
            "limit_action": "skip",
        },
    )
    assert ok.status_code == 303, ok.text
    location = ok.headers["location"]
    shown = ui.get(location).text
    assert "5 EUR off" in shown and "At most 2 new codes per customer" in shown
    assert "client.benefit(&#39;Autumn&#39;)" in shown
    assert "5 EUR off" in ui.get("/groups").text
    gid = int(location.rsplit("/", 1)[1])
    saved = ui.post(
        f"/groups/{gid}",
        {
            **FIELDS,
            "name": "Autumn",
            "benefit_type": "other",
            "benefit_value": "",
            "benefit_currency": "",
            "benefit_text": "Double points",
            "customer_limit": "",
            "limit_action": "repeat",
        },
    )
    assert saved.status_code == 303, saved.text
    with db.read() as s:
        group = service.to_out(s, service.get_group(s, gid))
    assert group.benefit is not None and group.benefit.text == "Double points"
    assert (group.customer_limit, group.limit_action) == (None, "repeat")
