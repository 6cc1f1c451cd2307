"""The operator's daily work from the command line, as the API does it: issue, look up,
redeem one code, stock alerts, campaigns and events, erasure; each with ``--json`` in
the API's shape, and bad input as one sentence with exit code 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from promocodes.audit.models import AuditEntry
from promocodes.codes import alerts
from promocodes.codes.schemas import (
    AlertOut,
    CodeLookupOut,
    GroupOut,
    IssueOut,
    RedeemOut,
    RedemptionReport,
    UnredeemOut,
    ValidateOut,
)
from promocodes.customers.schemas import CustomerOut, PromoCodeOut
from promocodes.db import Database
from promocodes.messaging import campaigns
from promocodes.messaging.schemas import CampaignIn, CampaignOut, EventOut
from tests.audit.common import entries, only
from tests.codes.conftest import Cli
from tests.factories import assert_counters_exact, counts, make_customer


def _keys(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


def _world(cli: Cli, db: Database, codes: str = "P1\nP2\nP3\n") -> None:
    cli("groups", "create", "Promo")
    cli("codes", "upload", "Promo", "-", input=codes)
    with db.write() as s:
        make_customer(s, "alice", email="alice@example.com")
        make_customer(s, "bob")


def test_issue_with_an_idempotency_key(cli: Cli, db: Database) -> None:
    _world(cli, db)
    said = cli("codes", "issue", "Promo", "alice")
    assert "issued to alice from group 1 (Promo), initial" in " ".join(said.split())
    first = json.loads(cli("codes", "issue", "1", "alice", "--idempotency-key", "k-1", "--json"))
    assert set(first) == _keys(IssueOut)
    assert (first["customer_id"], first["kind"], first["group_id"]) == ("alice", "initial", 1)
    again = json.loads(cli("codes", "issue", "1", "alice", "--idempotency-key", "k-1", "--json"))
    assert again == first  # the same code, not a new one
    other = cli("codes", "issue", "1", "bob", "--idempotency-key", "k-1", code=1)
    assert "already used to issue a code to another customer" in " ".join(other.split())
    shown = json.loads(cli("codes", "issue", "Promo", "alice", "--repeat", "--json"))
    assert shown["kind"] == "repeat" and shown["code"] == first["code"]
    c = counts(db, 1)
    assert (c.issued, c.active) == (2, 1)
    assert_counters_exact(db, 1)


def test_issue_refusals_name_the_problem(cli: Cli, db: Database) -> None:
    _world(cli, db, codes="ONLY1\n")
    assert "has no code from group 1 (Promo) to show again" in " ".join(
        cli("codes", "issue", "Promo", "bob", "--repeat").split()
    )
    cli("codes", "issue", "Promo", "alice")
    for args, message in [
        (["Promo", "bob"], "group 'Promo' has no codes left to issue"),
        (["Promo", "carol"], "customer 'carol' does not exist"),
        (["Nope", "alice"], "no group with id or name 'Nope'"),
        (["Promo", ""], "customer_id"),
        (["Promo", "x" * 201], "customer_id"),
        (["Promo", "alice", "--idempotency-key", " "], "--idempotency-key"),
        (["Promo", "alice", "--idempotency-key", "k" * 201], "1 to 200 characters"),
    ]:
        out = cli("codes", "issue", *args, code=1)
        assert message in " ".join(out.split()) and "Traceback" not in out, args
    assert counts(db, 1).issued == 1


def test_lookup_tells_who_got_a_code_and_is_audited(cli: Cli, db: Database) -> None:
    _world(cli, db)
    code = json.loads(cli("codes", "issue", "Promo", "alice", "--json"))["code"]
    table = " ".join(cli("codes", "lookup", code).split())
    assert f"{code}: issued" in table and "alice" in table and "cli" in table
    found = json.loads(cli("codes", "lookup", code, "--json"))
    assert set(found) == _keys(CodeLookupOut)
    assert found["status"] == "issued" and found["group_name"] == "Promo"
    assert [(h["customer_id"], h["source"]) for h in found["issuances"]] == [("alice", "cli")]
    assert "Never issued" in cli("codes", "lookup", "P3")
    assert "code 'NOPE' does not exist" in cli("codes", "lookup", "NOPE", code=1)
    entries = [e for e in _looked_up(db) if e.target_name == code]
    assert len(entries) == 2 and all(e.actor_kind == "cli" for e in entries)


def _looked_up(db: Database) -> list[AuditEntry]:
    return entries(db, "code.looked_up")


def test_redeem_one_code_or_a_file(cli: Cli, db: Database, tmp_path: Path) -> None:
    _world(cli, db)
    code = json.loads(cli("codes", "issue", "Promo", "alice", "--json"))["code"]
    wrong = cli("codes", "redeem", "--code", code, "--customer", "bob", code=1)
    assert f"code {code!r} was not issued to customer 'bob'" in " ".join(wrong.split())
    done = json.loads(
        cli("codes", "redeem", "--code", code, "--order-id", "o-1", "--customer", "alice", "--json")
    )
    assert set(done) == _keys(RedeemOut)
    assert (done["status"], done["order_id"], done["customer_id"]) == ("redeemed", "o-1", "alice")
    # The retried checkout answers as the first; another order is refused.
    assert f"{code}: redeemed by order o-1" in cli(
        "codes", "redeem", "--code", code, "--order-id", "o-1"
    )
    assert "already redeemed (order o-1)" in cli(
        "codes", "redeem", "--code", code, "--order-id", "o-2", code=1
    )
    bobs = json.loads(cli("codes", "issue", "Promo", "bob", "--json"))["code"]
    file = tmp_path / "till.csv"
    file.write_text(f"code,order_id\n{bobs},o-9\nNOPE,o-9\n")
    report = json.loads(cli("codes", "redeem", str(file), "--json"))
    assert set(report) == _keys(RedemptionReport)
    assert (report["received"], report["redeemed"], report["rejected"]) == (2, 1, 1)
    assert counts(db, 1).redeemed == 2
    for args, message in [
        ([], "give either a FILE of codes or --code CODE"),
        ([str(file), "--code", "P2"], "give either a FILE of codes or --code CODE"),
        ([str(file), "--customer", "alice"], "--customer goes with --code"),
        (["--code", "P2", "--order-id", ""], "order_id"),
        (["--code", "P2", "--customer", "ghost"], "customer 'ghost' does not exist"),
    ]:
        out = cli("codes", "redeem", *args, code=1)
        assert message in " ".join(out.split()) and "Traceback" not in out, args
    assert_counters_exact(db, 1)


def test_validate_prints_the_api_answer(cli: Cli, db: Database) -> None:
    _world(cli, db)
    answer = json.loads(cli("codes", "validate", "P1", "--json", code=1))
    assert set(answer) == _keys(ValidateOut) and answer["reason"] == "code-not-issued"


def test_alerts_list(cli: Cli, db: Database) -> None:
    cli("groups", "create", "Low", "--low-stock", "5")
    cli("codes", "upload", "Low", "-", input="L1\nL2\n")
    assert "No alerts." in cli("alerts", "list")
    with db.write() as s:
        raised = alerts.scan(s)
    assert raised
    listed = json.loads(cli("alerts", "list", "--json"))
    assert all(set(a) == _keys(AlertOut) for a in listed)
    assert {a["kind"] for a in listed} == {r.kind for r in raised} and "low-stock" in {
        a["kind"] for a in listed
    }
    assert "Low" in cli("alerts", "list", "--group", "Low", "--kind", "low-stock", "--open")
    assert json.loads(cli("alerts", "list", "--kind", "expiring-soon", "--json")) == []
    assert "--kind must be one of" in cli("alerts", "list", "--kind", "soon", code=1)
    assert "no group with id or name" in cli("alerts", "list", "--group", "Nope", code=1)


@pytest.fixture
def campaign(cli: Cli, db: Database) -> int:
    _world(cli, db)
    with db.write() as s:
        made = campaigns.create(
            s,
            CampaignIn(
                name="Welcome",
                event="signup",
                subject="Hi {{ client.first_name or 'there' }}",
                body_text="Your code: {{ client.promocode('Promo') }}",
            ),
        )
        return made.id


def test_campaigns_list_and_show(cli: Cli, campaign: int) -> None:
    listed = json.loads(cli("campaigns", "list", "--json"))
    assert [c["name"] for c in listed] == ["Welcome"]
    assert all(set(c) == _keys(CampaignOut) for c in listed)
    assert "Welcome" in cli("campaigns", "list") and "signup" in cli("campaigns", "list")
    shown = json.loads(cli("campaigns", "show", str(campaign), "--json"))
    assert shown["event"] == "signup" and shown["id"] == campaign
    assert "Your code:" in cli("campaigns", "show", str(campaign))
    assert "campaign 999 does not exist" in " ".join(
        cli("campaigns", "show", "999", code=1).split()
    )


def test_events_send(cli: Cli, db: Database, campaign: int) -> None:
    sent = json.loads(cli("events", "send", "signup", "alice", "--event-id", "e-1", "--json"))
    assert set(sent) == _keys(EventOut)
    (message,) = sent["messages"]
    assert message["customer_id"] == "alice" and "Your code: P" in message["body_text"]
    again = json.loads(cli("events", "send", "signup", "alice", "--event-id", "e-1", "--json"))
    assert again["messages"][0]["id"] == message["id"]  # the same message, no second code
    assert counts(db, 1).issued == 1
    assert "No active campaign answers 'birthday'" in cli("events", "send", "birthday", "alice")
    for args, message_text in [
        (["signup", "ghost"], "customer 'ghost' does not exist"),
        (["", "alice"], "event"),
        (["signup", "alice", "--event-id", ""], "event_id"),
    ]:
        out = cli("events", "send", *args, code=1)
        assert message_text in " ".join(out.split()) and "Traceback" not in out, args
    assert counts(db, 1).issued == 1


def test_events_send_with_the_customer(cli: Cli, db: Database) -> None:
    _world(cli, db)
    with db.write() as s:
        campaigns.create(
            s,
            CampaignIn(
                name="Join",
                event="joined",
                subject="Hi",
                body_text="{{ client.first_name }}: {{ client.promocode('Promo') }}",
                creates_customers=True,
            ),
        )
    fields = '{"first_name": "Dora", "attributes": {"city": "Oslo"}}'
    sent = json.loads(
        cli("events", "send", "joined", "dora", "--customer-fields", fields, "--json")
    )
    assert sent["customer_change"] == "created" and sent["customer_id"] == "dora"
    assert sent["messages"][0]["body_text"].startswith("Dora: P")
    shown = json.loads(cli("customers", "show", "dora", "--json"))
    assert shown["customer"]["attributes"] == {"city": "Oslo"}
    for bad, message in [
        ("{not json", "--customer-fields is not valid JSON"),
        ('{"colour": "red"}', "customer.colour"),
        ('["a"]', "customer"),
    ]:
        out = cli("events", "send", "joined", "erin", "--customer-fields", bad, code=1)
        assert message in " ".join(out.split()) and "Traceback" not in out, bad
    assert "customer 'erin' does not exist" in cli("customers", "show", "erin", code=1)


def test_customers_erase_json(cli: Cli, db: Database) -> None:
    _world(cli, db)
    done = json.loads(cli("customers", "erase", "alice", "--yes", "--json"))
    assert set(done) == {"customer_id", "messages_redacted", "already"}
    assert done["customer_id"].startswith("erased-") and done["already"] is False
    entry = only(db, "customer.erased")
    assert entry.actor_kind == "cli" and "alice" not in json.dumps(entry.details)
    again = json.loads(cli("customers", "erase", done["customer_id"], "--yes", "--json"))
    assert again["already"] is True
    assert "customer 'alice' does not exist" in cli("customers", "erase", "alice", "--yes", code=1)


def test_every_daily_answer_has_json(cli: Cli, db: Database, tmp_path: Path) -> None:
    _world(cli, db)
    groups = json.loads(cli("groups", "list", "--json"))
    assert [(g["name"], g["total"]) for g in groups] == [("Promo", 3)]
    assert set(groups[0]) == _keys(GroupOut)
    assert json.loads(cli("groups", "show", "Promo", "--json")) == groups[0]
    code = json.loads(cli("codes", "issue", "Promo", "alice", "--json"))["code"]
    profile = json.loads(cli("customers", "show", "alice", "--json"))
    assert set(profile) == {"customer", "promo_codes"}
    assert set(profile["customer"]) == _keys(CustomerOut)
    assert [(p["code"], p["status"]) for p in profile["promo_codes"]] == [(code, "issued")]
    assert all(set(p) == _keys(PromoCodeOut) for p in profile["promo_codes"])
    blocked = json.loads(cli("codes", "block", code, "P3", "--json"))
    assert [(b["code"], b["previous_status"]) for b in blocked] == [
        (code, "issued"),
        ("P3", "available"),
    ]
    back = json.loads(cli("codes", "unblock", code, "--json"))
    assert back == [{"code": code, "status": "issued", "previous_status": "blocked"}]
    cli("codes", "redeem", "--code", code, "--order-id", "o-1")
    reversed_ = json.loads(cli("codes", "unredeem", code, "--order-id", "o-1", "--json"))
    assert set(reversed_) == _keys(UnredeemOut) and reversed_["status"] == "issued"
    tree = tmp_path / "tree.json"
    tree.write_text('{"type": "field", "field": "email", "op": "exists"}')
    preview = json.loads(cli("segments", "preview", str(tree), "--json"))
    assert preview["count"] == 1 and preview["sample"][0]["customer_id"] == "alice"
    assert_counters_exact(db, 1)


def test_several_codes_are_all_or_none(cli: Cli, db: Database) -> None:
    _world(cli, db)
    out = cli("codes", "block", "P1", "NOPE", code=1)
    assert "code 'NOPE' does not exist" in out and "P1: blocked" not in out
    assert counts(db, 1).blocked == 0


def test_an_id_past_64_bits_is_one_line_not_a_traceback(cli: Cli, db: Database) -> None:
    # SQLite's driver refused to bind it (OverflowError with a traceback); PostgreSQL's
    # refuses it as out of range. Either way: one line, exit 1.
    huge = str(2**64)
    for args in (("campaigns", "show", huge), ("groups", "show", huge)):
        out = cli(*args, code=1)
        assert out.startswith("Error: "), out
        assert "Traceback" not in out and len(out.strip().splitlines()) == 1, out
