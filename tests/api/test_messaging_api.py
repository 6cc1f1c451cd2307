"""HTTP: templates, segments, mailings, campaigns and events."""

from __future__ import annotations

from fastapi.testclient import TestClient

from promocodes.config import Settings
from promocodes.db import Database
from promocodes.worker import run_until
from tests.api.test_groups_api import _problem
from tests.factories import assert_counters_exact


def _setup(api: TestClient) -> tuple[int, int]:
    gid = api.post(
        "/api/v1/groups", json={"name": "Mother's Day", "codes": [f"MD{i}" for i in range(10)]}
    ).json()["id"]
    for i in range(3):
        api.put(f"/api/v1/customers/c{i}", json={"email": f"c{i}@x.io", "first_name": f"C{i}"})
    seg = api.post(
        "/api/v1/segments",
        json={
            "name": "All",
            "filter": {"type": "field", "field": "email", "op": "ends_with", "value": "@x.io"},
        },
    )
    assert seg.status_code == 201, seg.text
    return gid, seg.json()["id"]


def test_templates_validate_and_preview(api: TestClient) -> None:
    _setup(api)
    ok = api.post(
        "/api/v1/templates/validate",
        json={"subject": "Hi", "body_text": "{{ client.promocode('Mother\\'s Day') }}"},
    ).json()
    assert ok == {"valid": True, "errors": [], "groups": ["Mother's Day"]}
    bad = api.post(
        "/api/v1/templates/validate",
        json={"body_text": "line one\n{{ client.promocode('Mothers Day') }}"},
    ).json()
    assert not bad["valid"] and bad["errors"][0]["line"] == 2
    assert "Mother's Day" in bad["errors"][0]["message"]
    shown = api.post(
        "/api/v1/templates/preview",
        json={
            "subject": "Hi {{ client.first_name }}",
            "customer_id": "c1",
            "body_text": "{{ client.promocode('Mother\\'s Day') }}",
        },
    ).json()
    assert shown["subject"] == "Hi C1" and "PREVIEW" in shown["body_text"] and shown["preview"]
    assert api.get("/api/v1/groups").json()["items"][0]["active"] == 10


def test_mailing_lifecycle_over_http(api: TestClient, db: Database) -> None:
    gid, seg = _setup(api)
    bad = api.post(
        "/api/v1/mailings",
        json={
            "name": "M",
            "segment_id": seg,
            "subject": "x",
            "body_text": "{{ client.promocode('Nope') }}",
        },
    )
    body = _problem(bad, 422, "validation-error")
    assert body["errors"][0]["field"] == "body_text" and body["errors"][0]["line"] == 1
    created = api.post(
        "/api/v1/mailings",
        json={
            "name": "M",
            "segment_id": seg,
            "subject": "For {{ client.first_name }}",
            "body_text": "{{ client.promocode('mother\\'s day') }}",
        },
    )
    assert created.status_code == 201 and created.json()["status"] == "draft"
    mid = created.json()["id"]
    check = api.post(f"/api/v1/mailings/{mid}/check").json()
    assert check == {
        "recipients": 3,
        "sample": 3,
        "estimated": False,
        "groups": [
            {
                "group_id": gid,
                "name": "Mother's Day",
                "needed": 3,
                "active": 10,
                "enough": True,
                "drawing": 3,
                "closed": None,
            }
        ],
        "skipped": [],
    }
    preview = api.post(f"/api/v1/mailings/{mid}/preview", json={"customer_id": "c0"}).json()
    assert "PREVIEW" in preview["body_text"]
    assert api.post(f"/api/v1/mailings/{mid}/send", json={}).status_code == 202
    run_until(db, Settings(database_url=db.url), timeout=60)
    done = api.get(f"/api/v1/mailings/{mid}").json()
    assert (done["status"], done["total"], done["sent"], done["skipped"]) == ("sent", 3, 3, 0)
    page = api.get(f"/api/v1/mailings/{mid}/messages").json()
    assert len(page["items"]) == 3
    assert {m["customer_id"] for m in page["items"]} == {"c0", "c1", "c2"}
    assert all(
        m["body_text"].startswith("MD") and m["message_id"].startswith("<m") for m in page["items"]
    )
    _problem(api.post(f"/api/v1/mailings/{mid}/send", json={}), 409, "conflict")
    _problem(api.get("/api/v1/mailings/999"), 404, "mailing-not-found")
    assert_counters_exact(db, gid)


def test_short_stock_send_is_a_409(api: TestClient) -> None:
    _, seg = _setup(api)
    api.post("/api/v1/groups", json={"name": "One", "codes": ["ONLY1"]})
    mid = api.post(
        "/api/v1/mailings",
        json={
            "name": "M",
            "segment_id": seg,
            "subject": "x",
            "body_text": "{{ client.promocode('One') }}",
        },
    ).json()["id"]
    body = _problem(api.post(f"/api/v1/mailings/{mid}/send", json={}), 409, "stock-short")
    assert body["groups"][0]["needed"] == 3


def test_campaign_event_is_idempotent_and_counts(api: TestClient, db: Database) -> None:
    gid, _ = _setup(api)
    made = api.post(
        "/api/v1/campaigns",
        json={
            "name": "Welcome",
            "event": "signup",
            "subject": "Welcome",
            "body_text": "{{ client.promocode('Mother\\'s Day') }}",
        },
    )
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    first = api.post(
        "/api/v1/events", json={"customer_id": "c0", "event": "signup", "event_id": "e-1"}
    ).json()
    again = api.post(
        "/api/v1/events", json={"customer_id": "c0", "event": "signup", "event_id": "e-1"}
    ).json()
    assert first == again and len(first["messages"]) == 1
    assert first["messages"][0]["body_text"].startswith("MD")
    # The same event id from another customer is another event: their own message and code.
    other = api.post(
        "/api/v1/events", json={"customer_id": "c2", "event": "signup", "event_id": "e-1"}
    ).json()
    assert len(other["messages"]) == 1
    assert other["messages"][0]["id"] != first["messages"][0]["id"]
    assert other["messages"][0]["body_text"].startswith("MD")
    assert other["messages"][0]["body_text"] != first["messages"][0]["body_text"]
    api.post("/api/v1/events", json={"customer_id": "c1", "event": "signup"})
    api.post("/api/v1/events", json={"customer_id": "c1", "event": "other"})
    stats = api.get(f"/api/v1/campaigns/{cid}").json()["stats"]
    assert stats == {"sent": 3}
    paused = api.patch(f"/api/v1/campaigns/{cid}", json={"active": False}).json()
    assert paused["active"] is False
    none = api.post("/api/v1/events", json={"customer_id": "c2", "event": "signup"}).json()
    assert none["messages"] == []
    assert api.get(f"/api/v1/groups/{gid}").json()["issued"] == 3
    listed = api.get(f"/api/v1/campaigns/{cid}/messages", params={"limit": 2}).json()
    assert [m["customer_id"] for m in listed["items"]] == ["c0", "c2"]
    rest = api.get(
        f"/api/v1/campaigns/{cid}/messages", params={"cursor": listed["next_cursor"]}
    ).json()
    assert [m["customer_id"] for m in rest["items"]] == ["c1"] and rest["next_cursor"] is None
    assert first["messages"][0] == listed["items"][0]
    _problem(api.get("/api/v1/campaigns/999/messages"), 404, "campaign-not-found")
    _problem(
        api.post("/api/v1/events", json={"customer_id": "zz", "event": "signup"}),
        404,
        "customer-not-found",
    )


def test_campaign_on_exhausted_group_skips_without_issuing(api: TestClient, db: Database) -> None:
    api.post("/api/v1/groups", json={"name": "Empty"})
    api.put("/api/v1/customers/c0", json={"email": "c0@x.io"})
    api.post(
        "/api/v1/campaigns",
        json={
            "name": "W",
            "event": "e",
            "subject": "s",
            "body_text": "{{ client.promocode('Empty') }}",
        },
    )
    out = api.post("/api/v1/events", json={"customer_id": "c0", "event": "e"}).json()
    assert out["messages"][0]["status"] == "skipped"
    assert out["messages"][0]["skip_reason"] == "group-exhausted"
    cid = api.get("/api/v1/campaigns").json()[0]["id"]
    skipped = api.get(f"/api/v1/campaigns/{cid}/messages", params={"status": "skipped"})
    assert skipped.json()["items"] == out["messages"]
    assert api.get(f"/api/v1/campaigns/{cid}/messages?status=sent").json()["items"] == []
    bad = _problem(
        api.get(f"/api/v1/campaigns/{cid}/messages?status=gone"), 422, "validation-error"
    )
    assert "status must be one of queued, sent, failed, skipped" in bad["detail"]


def test_an_event_made_before_keys_named_the_customer_is_still_found(
    api: TestClient, db: Database
) -> None:
    import hashlib

    from sqlalchemy import select

    from promocodes.customers.models import Customer
    from promocodes.messaging.models import Message

    gid, _ = _setup(api)
    cid = api.post(
        "/api/v1/campaigns",
        json={"name": "W", "event": "signup", "subject": "Hi", "body_text": "x"},
    ).json()["id"]
    legacy = f"c{cid}.{hashlib.sha256(b'old-1').hexdigest()[:32]}"
    with db.write() as s:
        customer = s.scalar(select(Customer).where(Customer.external_id == "c0"))
        assert customer is not None
        s.add(
            Message(key=legacy, campaign_id=cid, customer_id=customer.id, channel="outbox",
                    status="sent", body_text="the first one", attempts=0)
        )  # fmt: skip
    again = api.post(
        "/api/v1/events", json={"customer_id": "c0", "event": "signup", "event_id": "old-1"}
    ).json()
    assert [m["body_text"] for m in again["messages"]] == ["the first one"]
    other = api.post(
        "/api/v1/events", json={"customer_id": "c1", "event": "signup", "event_id": "old-1"}
    ).json()
    assert [m["body_text"] for m in other["messages"]] == ["x"]
    assert api.get(f"/api/v1/groups/{gid}").json()["issued"] == 0


def test_deleting_a_campaign(api: TestClient, db: Database) -> None:
    gid, _ = _setup(api)
    cid = api.post(
        "/api/v1/campaigns",
        json={
            "name": "W",
            "event": "e",
            "subject": "s",
            "body_text": "{{ client.promocode('Mother\\'s Day') }}",
        },
    ).json()["id"]
    made = api.post("/api/v1/events", json={"customer_id": "c0", "event": "e"}).json()
    assert len(made["messages"]) == 1
    assert api.delete(f"/api/v1/campaigns/{cid}").status_code == 204
    assert api.get("/api/v1/campaigns").json() == []
    _problem(api.get(f"/api/v1/campaigns/{cid}"), 404, "campaign-not-found")
    _problem(
        api.patch(f"/api/v1/campaigns/{cid}", json={"active": True}), 404, "campaign-not-found"
    )
    _problem(api.delete(f"/api/v1/campaigns/{cid}"), 404, "campaign-not-found")
    assert (
        api.post("/api/v1/events", json={"customer_id": "c1", "event": "e"}).json()["messages"]
        == []
    )
    kept = api.get(f"/api/v1/campaigns/{cid}/messages").json()["items"]
    assert kept == made["messages"]
    assert api.get(f"/api/v1/groups/{gid}").json()["issued"] == 1


def test_moving_a_draft_to_a_missing_segment_is_a_404(api: TestClient) -> None:
    # The look-up came after the change and flushed it first: a foreign-key error, a 500.
    _, seg = _setup(api)
    mid = api.post(
        "/api/v1/mailings", json={"name": "M", "segment_id": seg, "body_text": "Hi"}
    ).json()["id"]
    gone = api.patch(f"/api/v1/mailings/{mid}", json={"segment_id": seg + 1000})
    _problem(gone, 404, "segment-not-found")
    assert api.get(f"/api/v1/mailings/{mid}").json()["segment_id"] == seg
    removed = api.patch(f"/api/v1/mailings/{mid}", json={"segment_id": None})
    _problem(removed, 422, "validation-error")
    moved = api.patch(f"/api/v1/mailings/{mid}", json={"name": "N"})
    assert moved.status_code == 200 and moved.json()["name"] == "N", moved.text
