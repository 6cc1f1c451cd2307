"""Mailings and campaigns without a browser: compose with live validation, preview (no
code consumed), test send, send, progress to the final report, cancel, campaigns."""

from __future__ import annotations

import re

from sqlalchemy import text

from promocodes.config import Settings
from promocodes.db import Database
from promocodes.messaging import campaigns
from promocodes.worker import run_until
from tests.factories import counts, group_with_codes
from tests.messaging.test_mailings import EVERYONE, people, segment
from tests.messaging.test_resend import messages_of, poisoned_then_mended
from tests.web.conftest import Ui, app_client, log_in, make_user

BODY = "Hi {{ client.first_name }}, your code: {{client.promocode('Spring')}}"


CAMPAIGN = {
    "name": "Welcome",
    "event": "signup",
    "channel": "outbox",
    "subject": "Welcome",
    "body_text": "Code: {{ client.promocode('Spring') }}",
    "body_html": "",
    "active": "1",
}


def compose(segment_id: int, **fields: str) -> dict[str, str]:
    return {
        "name": "Spring sale",
        "segment_id": str(segment_id),
        "channel": "outbox",
        "subject": "Spring",
        "body_text": BODY,
        "body_html": "",
        **fields,
    }


def test_live_validation_points_at_line_and_column(ui: Ui, db: Database) -> None:
    group_with_codes(db, "Spring", ["S1"])
    response = ui.htmx(
        "/templates/check",
        {
            "subject": "ok",
            "body_text": "line one\n{{ client.promocode('Sprong') }}",
            "body_html": "{% if %}",
        },
    )
    problems = dict(re.findall(r'id="problems-(\w+)"[^>]*>(.*?)</div>', response.text, re.S))
    assert "line 2, column" in problems["body_text"] and "Spring" in problems["body_text"]
    assert "line 1" in problems["body_html"]
    assert "error-text" not in problems["subject"]
    assert 'hx-swap-oob="true"' in response.text


def test_compose_save_errors_are_inline_and_keep_the_text(ui: Ui, db: Database) -> None:
    group_with_codes(db, "Spring", ["S1"])
    people(db, 2)
    sid = segment(db, "All", EVERYONE)
    response = ui.post("/mailings/new", compose(sid, body_text="Hi {{ client.promocode('Nope') }}"))
    assert response.status_code == 422
    assert "line 1, column" in response.text and "Nope" in response.text
    assert "Hi {{ client.promocode(&#39;Nope&#39;) }}" in response.text
    response = ui.post("/mailings/new", {**compose(sid, name=""), "segment_id": ""})
    assert response.status_code == 422 and "choose a segment" in response.text


def test_preview_issues_nothing_and_test_send_needs_smtp(ui: Ui, db: Database) -> None:
    gid = group_with_codes(db, "Spring", ["S1", "S2"])
    people(db, 2)
    sid = segment(db, "All", EVERYONE)
    response = ui.post("/mailings/new", compose(sid))
    assert response.status_code == 303
    mailing_url = response.headers["location"]
    page = ui.get(mailing_url).text
    assert "Pre-send check" in page and "short by" not in page and ">Spring</a>" in page
    preview = ui.htmx("/templates/preview", {**compose(sid), "customer_id": "p1"})
    assert "Hi P1, your code: PREVIEW-SPRING-" in preview.text
    assert counts(db, gid).active == 2
    missing = ui.htmx("/templates/preview", {**compose(sid), "customer_id": "ghost"})
    assert "does not exist" in missing.text
    test = ui.htmx(f"{mailing_url}/test", {**compose(sid), "test_email": "me@example.com"})
    assert "SMTP is not configured" in test.text
    bad = ui.htmx(f"{mailing_url}/test", {**compose(sid), "test_email": "nope"})
    assert "is not an email address" in bad.text


def test_send_shows_progress_until_the_report(ui: Ui, db: Database) -> None:
    gid = group_with_codes(db, "Spring", [f"S{i}" for i in range(3)])
    people(db, 5)
    sid = segment(db, "All", EVERYONE)
    mailing_url = ui.post("/mailings/new", compose(sid)).headers["location"]
    confirm = ui.get(f"{mailing_url}/send").text
    assert (
        'id="recipients">5<' in confirm and "short by 2" in confirm and "allow_partial" in confirm
    )
    refused = ui.post(f"{mailing_url}/send")
    assert refused.status_code == 409 and "has 3 usable codes for 5 recipients" in refused.text
    started = ui.post(f"{mailing_url}/send", {"allow_partial": "1"})
    assert started.status_code == 303
    progress = ui.get(f"{mailing_url}/progress").text
    assert 'hx-trigger="every 1s"' in progress and "0%" in progress
    run_until(db, Settings(database_url=db.url), timeout=60)
    done = ui.get(f"{mailing_url}/progress").text
    assert 'id="progress-percent">100%' in done and "every 1s" not in done
    assert 'id="count-sent">3<' in done and 'id="count-skipped">2<' in done
    assert "Group out of codes" in done
    assert counts(db, gid).active == 0
    listing = ui.get("/mailings").text
    assert "Spring sale" in listing and "100%" in listing
    assert 'data-count="sent">3<' in listing and 'data-count="skipped">2<' in listing
    assert 'data-count="failed">0<' in listing


def test_cancel_asks_first(ui: Ui, db: Database) -> None:
    group_with_codes(db, "Spring", ["S1", "S2"])
    people(db, 2)
    sid = segment(db, "All", EVERYONE)
    mailing_url = ui.post("/mailings/new", compose(sid)).headers["location"]
    ui.post(f"{mailing_url}/send")
    assert "Cancel mailing" in ui.get(f"{mailing_url}/cancel").text
    response = ui.post(f"{mailing_url}/cancel")
    assert response.status_code == 303
    assert "cancelled" in ui.get(mailing_url).text


def test_edit_a_draft(ui: Ui, db: Database) -> None:
    group_with_codes(db, "Spring", ["S1"])
    people(db, 1)
    sid = segment(db, "All", EVERYONE)
    mailing_url = ui.post("/mailings/new", compose(sid)).headers["location"]
    response = ui.post(mailing_url, compose(sid, name="Renamed", body_text="{{ oops"))
    assert response.status_code == 422 and "{{ oops" in response.text
    assert ui.post(mailing_url, compose(sid, name="Renamed")).status_code == 303
    assert "Renamed" in ui.get(mailing_url).text


def test_campaigns_create_pause_resume(ui: Ui, db: Database) -> None:
    group_with_codes(db, "Spring", ["S1"])
    form = CAMPAIGN
    bad = ui.post("/campaigns/new", {**form, "body_text": "{{ client.promocode('Nope') }}"})
    assert bad.status_code == 422 and "Nope" in bad.text
    assert ui.post("/campaigns/new", form).status_code == 303
    with db.read() as s:
        (campaign,) = campaigns.list_campaigns(s)
    listing = ui.get("/campaigns").text
    assert "Welcome" in listing and "signup" in listing and ">active<" in listing
    # The channel as the mailing form says it; the intro in words, not an API path.
    assert "<td>Outbox (stored, exportable)</td>" in listing and "<td>outbox</td>" not in listing
    assert "events your shop sends through the API" in listing and "POST /api" not in listing
    form_page = ui.get("/campaigns/new").text
    assert '<option value="smtp">Email (SMTP)</option>' in form_page
    assert '<option value="outbox" selected>Outbox (stored, exportable)</option>' in form_page
    own = ui.get(f"/campaigns/{campaign.id}").text  # its page: its figures and messages
    assert 'id="count-sent">0<' in own and 'id="count-failed">0<' in own
    assert f'href="/campaigns/{campaign.id}/messages"' in own
    ui.post(f"/campaigns/{campaign.id}/pause")
    assert ">paused<" in ui.get("/campaigns").text
    ui.post(f"/campaigns/{campaign.id}/resume")
    assert ">active<" in ui.get("/campaigns").text
    assert (
        ui.post(f"/campaigns/{campaign.id}", {**form, "name": "Hello", "active": ""}).status_code
        == 303
    )
    with db.read() as s:
        saved = campaigns.get(s, campaign.id)
        assert (saved.name, saved.active) == ("Hello", False)
    assert 'value="Hello"' in ui.get(f"/campaigns/{campaign.id}").text


def test_the_campaign_form_sets_whether_events_add_customers(ui: Ui, db: Database) -> None:
    group_with_codes(db, "Spring", ["S1"])
    fresh = ui.get("/campaigns/new").text
    assert "Add new customers from the event" in fresh
    assert 'name="creates_customers" value="1" aria-describedby' in fresh  # unticked
    assert ui.post("/campaigns/new", {**CAMPAIGN, "creates_customers": "1"}).status_code == 303
    with db.read() as s:
        (campaign,) = campaigns.list_campaigns(s)
        assert campaign.creates_customers is True
    page = ui.get(f"/campaigns/{campaign.id}").text
    assert 'aria-describedby="creates-customers-help" checked' in page
    # Saved without the box: off again, the rest kept.
    assert ui.post(f"/campaigns/{campaign.id}", CAMPAIGN).status_code == 303
    with db.read() as s:
        saved = campaigns.get(s, campaign.id)
        assert (saved.creates_customers, saved.name) == (False, CAMPAIGN["name"])


def test_smtp_errors_are_shown_clearly(db: Database) -> None:
    from tests.live import free_port

    make_user(db)
    group_with_codes(db, "Spring", ["S1"])
    people(db, 1)
    sid = segment(db, "All", EVERYONE)
    with app_client(db, smtp_host="127.0.0.1", smtp_port=free_port(), smtp_timeout=2) as client:
        log_in(client)
        ui = Ui(client, db)
        mailing_url = ui.post("/mailings/new", compose(sid)).headers["location"]
        response = ui.htmx(f"{mailing_url}/test", {**compose(sid), "test_email": "me@example.com"})
        assert "test send to me@example.com failed" in response.text
        assert 'role="alert"' in response.text


def test_deleting_a_campaign_keeps_its_messages(ui: Ui, db: Database) -> None:
    from promocodes.customers.models import Customer

    gid = group_with_codes(db, "Spring", ["S1", "S2"])
    people(db, 1)
    form = CAMPAIGN
    assert ui.post("/campaigns/new", form).status_code == 303
    with db.write() as s:
        (campaign,) = campaigns.list_campaigns(s)
        cid = campaign.id
        customer = s.query(Customer).one()
        (sent,) = campaigns.handle_event(s, customer, "signup")
        assert sent.status == "sent"
    assert f'href="/campaigns/{cid}/delete"' in ui.get(f"/campaigns/{cid}").text
    confirm = ui.get(f"/campaigns/{cid}/delete").text
    assert "Its 1 message stays readable" in confirm
    assert ui.post(f"/campaigns/{cid}/delete").status_code == 303
    listing = ui.get("/campaigns").text
    assert "Campaign “Welcome” deleted." in listing and f'href="/campaigns/{cid}"' not in listing
    with db.write() as s:
        assert campaigns.list_campaigns(s) == []
        assert campaigns.handle_event(s, customer, "signup") == []  # it never sends again
    assert counts(db, gid).issued == 1
    # A profile's link to the campaign still opens it: read-only, badged, with its figures.
    landing = ui.get(f"/campaigns/{cid}").text
    assert 'id="archived-campaign"' in landing and "Archived</span>" in landing
    assert "<fieldset disabled" in landing and "Save campaign" not in landing
    assert 'id="count-sent">' in landing and f'href="/campaigns/{cid}/messages"' in landing
    messages = ui.get(f"/campaigns/{cid}/messages").text
    assert "Welcome (deleted)" in messages and "Code: S1" in messages
    assert ui.get(f"/campaigns/{cid}/delete").status_code == 404
    assert ui.post(f"/campaigns/{cid}/delete").status_code == 404
    # The Archived tab lists it, badged, with its figures and no pause/resume.
    assert 'href="/campaigns?show=archived"' in listing
    tab = ui.get("/campaigns", params={"show": "archived"}).text.partition('id="campaigns"')[2]
    assert f'href="/campaigns/{cid}"' in tab and "Archived</span>" in tab
    assert "Pause" not in tab and "Resume" not in tab
    with db.write() as s:
        assert [c.id for c in campaigns.list_campaigns(s, archived=True)] == [cid]


def test_schedule_a_mailing_for_later(ui: Ui, db: Database) -> None:
    from datetime import UTC, datetime, timedelta

    from promocodes.messaging import mailings

    gid = group_with_codes(db, "Spring", ["S1", "S2"])
    people(db, 2)
    sid = segment(db, "All", EVERYONE)
    mailing_url = ui.post("/mailings/new", compose(sid)).headers["location"]
    mid = int(mailing_url.rsplit("/", 1)[1])
    assert 'id="schedule"' in ui.get(f"{mailing_url}/send").text
    past = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    refused = ui.post(f"{mailing_url}/send", {"when": "later", "send_at": past})
    assert refused.status_code == 422 and "must be in the future" in refused.text
    assert f'value="{past}"' in refused.text  # what was typed is kept
    empty = ui.post(f"{mailing_url}/send", {"when": "later", "send_at": ""})
    assert empty.status_code == 422 and "enter the date and time to send at" in empty.text
    garbled = ui.post(f"{mailing_url}/send", {"when": "later", "send_at": "next tuesday"})
    assert garbled.status_code == 422 and "like 2027-01-31 23:59" in garbled.text
    at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    done = ui.post(
        f"{mailing_url}/send", {"when": "later", "send_at": at.strftime("%Y-%m-%dT%H:%M:%S")}
    )
    assert done.status_code == 303
    page = ui.get(mailing_url).text
    assert f"Scheduled for {at:%Y-%m-%d %H:%M} UTC" in page and "Cancel mailing" in page
    run_until(db, Settings(database_url=db.url), timeout=60)  # nothing is due yet
    with db.read() as s:
        scheduled = mailings.get(s, mid)
        assert (scheduled.status, scheduled.send_at) == ("scheduled", at)
    assert counts(db, gid).active == 2


def test_the_send_page_runs_the_template_over_a_sample_first(ui: Ui, db: Database) -> None:
    """The dry run: codes needed from the share of the sample that takes one, and the
    recipients who would be skipped, with the reason and the line."""
    group_with_codes(db, "Spring", [f"S{i}" for i in range(10)])
    people(db, 6, vip=True)  # p0..p5; p1 and p4 get no visit count below
    with db.write() as s:
        from promocodes.customers import service as customers
        from promocodes.customers.schemas import CustomerIn

        for i in (0, 2, 3, 5):
            customers.upsert(s, CustomerIn(customer_id=f"p{i}", attributes={"visits": i}))
    sid = segment(db, "All", EVERYONE)
    body = (
        "Hi\n"
        "{% if client.attributes.visits > 2 %}{{ client.promocode('Spring') }}{% endif %}\n"
        "{{ client.attributes.visits + 1 }} visits"
    )
    mailing_url = ui.post("/mailings/new", compose(sid, body_text=body)).headers["location"]
    page = ui.get(f"{mailing_url}/send").text
    assert "A dry run of the template for all 6 recipients" in page
    # p3 and p5 take a code; p1 and p4 fail on line 3 (no visits to add to).
    assert re.search(r'<td class="num">\s*2\s*</td>', page), page
    assert "<strong>2 of 6</strong> would be skipped" in page
    assert "Template error" in page and "“text body” line 3" in page


def test_the_web_resend_button(ui: Ui, db: Database) -> None:
    mid = poisoned_then_mended(db)
    page = ui.get(f"/mailings/{mid}").text
    assert "Resend to 1 failed recipient" in page
    done = ui.post(f"/mailings/{mid}/resend")
    assert done.status_code == 303
    twice = ui.post(f"/mailings/{mid}/resend")  # a double click
    assert twice.status_code == 303
    run_until(db, Settings(database_url=db.url), timeout=60)
    page = ui.get(f"/mailings/{mid}").text
    assert "Resend 1" in page and "Resend to" not in page
    assert [n for r, n, st in messages_of(db, mid) if r.startswith("p1@")] == [0, 1]


def test_the_send_page_says_an_expired_group_cannot_send(ui: Ui, db: Database) -> None:
    group_with_codes(db, "Spring", ["S1", "S2"])
    people(db, 1)
    sid = segment(db, "All", EVERYONE)
    mailing_url = ui.post("/mailings/new", compose(sid)).headers["location"]
    with db.write() as s:
        s.execute(text("UPDATE code_groups SET valid_until = '2020-01-01 00:00:00'"))
    confirm = ui.get(f"{mailing_url}/send").text
    assert "cannot send" in confirm and "expired on 2020-01-01" in confirm
