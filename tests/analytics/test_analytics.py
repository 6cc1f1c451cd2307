"""Redemption analytics on both backends, figures computed by hand: a mailing whose codes
were redeemed on different days, one message voided, one customer given a repeat; the
group and a campaign over the same history; the API, the CLI and bad ids."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from promocodes.analytics import service
from promocodes.cli import app
from promocodes.codes import issuance, redemption
from promocodes.codes.models import Issuance
from promocodes.customers import service as customers
from promocodes.db import Database
from promocodes.messaging import campaigns
from promocodes.messaging.schemas import CampaignIn
from tests.api.conftest import client_for
from tests.api.test_groups_api import _problem
from tests.factories import issue, make_group, upload
from tests.messaging.test_mailings import EVERYONE, bodies, mailing, people, segment, send_and_work

R1 = datetime(2030, 1, 1, 10, 0, tzinfo=UTC)
R2 = datetime(2030, 1, 1, 14, 0, tzinfo=UTC)
R4 = datetime(2030, 1, 2, 8, 0, tzinfo=UTC)
R3 = datetime(2030, 1, 3, 9, 0, tzinfo=UTC)
KEYS = {"of", "id", "sent", "redeemed", "redemption_rate", "median_seconds_to_redeem"}
KEYS |= {"redemptions_by_day"}


@dataclass
class History:
    group_id: int
    mailing_id: int
    campaign_id: int
    issued: dict[str, datetime]  # customer → when the mailing (or, for p0, the API) issued
    welcome_at: datetime  # when the campaign issued p0's welcome code


def _issued_at(db: Database, source: str, ref: str | None = None) -> datetime:
    with db.read() as s:
        stmt = select(Issuance.issued_at).where(Issuance.source == source)
        if ref is not None:
            stmt = stmt.where(Issuance.source_ref == ref)
        return s.scalars(stmt.order_by(Issuance.id).limit(1)).one()


def _redeem(db: Database, code: str, when: datetime) -> None:
    with db.write() as s:
        redemption.redeem(s, code, now=when)


def _history(db: Database) -> History:
    """p0..p5. The group gives one new code per customer, then the last one again: p0 got
    one by the API first, so the mailing gives p0 a repeat; p1..p5 new codes; p4's
    message is then voided (refused). p1, p2, p3 redeem on 1 and 3 January, p0 on the
    2nd; p5 never. A campaign gives p0 and p1 a welcome code; p0 redeems it."""
    people(db, 6)
    with db.write() as s:
        gid = make_group(s, "Spring", customer_limit=1, limit_action="repeat").id
        upload(s, gid, [f"SPR{i:03d}" for i in range(20)])
        welcome = make_group(s, "Welcome").id
        upload(s, welcome, [f"WEL{i:03d}" for i in range(5)])
    early = issue(db, "p0", gid, key="before-the-mailing")
    mid = mailing(db, segment(db, "All", EVERYONE), "Code: {{ client.promocode('Spring') }}")
    send_and_work(db, mid)
    sent = {cid: (m.body_text or "").removeprefix("Code: ") for cid, m in bodies(db, mid).items()}
    assert sent["p0"] == early  # the repeat: p0's code again
    with db.write() as s:
        p4 = customers.get(s, "p4")
        assert issuance.void(s, f"m{mid}.{p4.id}") == 1
    for who, when in (("p1", R1), ("p2", R2), ("p3", R3), ("p0", R4)):
        _redeem(db, sent[who], when)
    with db.write() as s:
        data = CampaignIn(
            name="Welcome",
            event="signup",
            subject="Hi",
            body_text="{{ client.promocode('Welcome') }}",
        )
        cid = campaigns.create(s, data).id
    welcome_codes = {}
    for who in ("p0", "p1"):
        with db.write() as s:
            (message,) = campaigns.handle_event(s, customers.get(s, who), "signup", event_id=who)
            welcome_codes[who] = message.body_text or ""
    _redeem(db, welcome_codes["p0"], R1)
    mailing_at = _issued_at(db, "mailing", str(mid))
    issued = {who: mailing_at for who in ("p1", "p2", "p3", "p5")}
    issued["p0"] = _issued_at(db, "api")
    return History(gid, mid, cid, issued, _issued_at(db, "campaign", str(cid)))


def _seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()


def test_mailing_campaign_and_group_figures(db: Database) -> None:
    h = _history(db)
    with db.read() as s:
        m = service.of_mailing(s, h.mailing_id)
        g = service.of_group(s, h.group_id)
        c = service.of_campaign(s, h.campaign_id)
    # Sent: p1, p2, p3, p5 (p0's was a repeat, p4's voided); redeemed p1, p2, p3.
    assert (m.sent, m.redeemed, m.rate) == (4, 3, 0.75)
    # Three times to redeem: the middle one is p2's.
    assert m.median_seconds == round(_seconds(R2, h.issued["p2"]))
    assert m.by_day == [(date(2030, 1, 1), 2), (date(2030, 1, 3), 1)]
    # The group: p0's API code too (sent 5, redeemed 4); an even count, two middles.
    assert (g.sent, g.redeemed, g.rate) == (5, 4, 0.8)
    middles = sorted(
        [
            _seconds(R1, h.issued["p1"]),
            _seconds(R2, h.issued["p2"]),
            _seconds(R3, h.issued["p3"]),
            _seconds(R4, h.issued["p0"]),
        ]
    )[1:3]
    assert g.median_seconds == round(sum(middles) / 2)
    assert g.by_day == [(date(2030, 1, 1), 2), (date(2030, 1, 2), 1), (date(2030, 1, 3), 1)]
    assert (c.sent, c.redeemed, c.rate) == (2, 1, 0.5)
    assert c.median_seconds == round(_seconds(R1, h.welcome_at))
    assert c.by_day == [(date(2030, 1, 1), 1)]


def _get(api: TestClient, path: str) -> dict[str, Any]:
    r = api.get(path)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == KEYS
    return dict(body)


def test_the_api_and_the_cli_give_the_same_figures(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = _history(db)
    monkeypatch.setenv("PROMOCODES_DATABASE_URL", db.url)
    run = CliRunner().invoke
    with client_for(db) as api:
        got = _get(api, f"/api/v1/mailings/{h.mailing_id}/analytics")
        assert got["of"] == "mailing" and got["id"] == h.mailing_id
        assert (got["sent"], got["redeemed"], got["redemption_rate"]) == (4, 3, 0.75)
        assert got["median_seconds_to_redeem"] == round(_seconds(R2, h.issued["p2"]))
        assert got["redemptions_by_day"] == [
            {"day": "2030-01-01", "redeemed": 2},
            {"day": "2030-01-03", "redeemed": 1},
        ]
        for kind, id_ in (
            ("mailings", h.mailing_id),
            ("campaigns", h.campaign_id),
            ("groups", h.group_id),
        ):
            answer = _get(api, f"/api/v1/{kind}/{id_}/analytics")
            printed = run(app, [kind, "analytics", str(id_), "--json"])
            assert printed.exit_code == 0, printed.output
            assert json.loads(printed.output) == answer
        table = run(app, ["mailings", "analytics", str(h.mailing_id)])
        assert table.exit_code == 0 and "75.0%" in table.output and "2030-01-03" in table.output


def test_nothing_sent_yet_has_no_rate(db: Database) -> None:
    people(db, 2)
    with db.write() as s:
        make_group(s, "Spring")
    mid = mailing(db, segment(db, "All", EVERYONE), "Code: {{ client.promocode('Spring') }}")
    with client_for(db) as api:
        got = _get(api, f"/api/v1/mailings/{mid}/analytics")
    assert got == {
        "of": "mailing",
        "id": mid,
        "sent": 0,
        "redeemed": 0,
        "redemption_rate": None,
        "median_seconds_to_redeem": None,
        "redemptions_by_day": [],
    }


@pytest.mark.parametrize(
    ("path", "status", "slug"),
    [
        ("/api/v1/mailings/999/analytics", 404, "mailing-not-found"),
        ("/api/v1/campaigns/999/analytics", 404, "campaign-not-found"),
        ("/api/v1/groups/999/analytics", 404, "group-not-found"),
        ("/api/v1/mailings/0/analytics", 422, "validation-error"),
        ("/api/v1/groups/abc/analytics", 422, "validation-error"),
        ("/api/v1/campaigns/99999999999/analytics", 422, "validation-error"),
    ],
)
def test_unknown_or_malformed_ids_are_problems(
    db: Database, path: str, status: int, slug: str
) -> None:
    with client_for(db) as api:
        body = _problem(api.get(path), status, slug)
    # The answer names what was wrong: the missing thing, or the path's id.
    assert ("999 does not exist" if status == 404 else "_id") in json.dumps(body)


def test_the_cli_names_an_unknown_mailing(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMOCODES_DATABASE_URL", db.url)
    got = CliRunner().invoke(app, ["groups", "analytics", "42", "--json"])
    assert got.exit_code == 1 and "group 42 does not exist" in got.output
