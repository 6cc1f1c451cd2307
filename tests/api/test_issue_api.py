"""HTTP: issue, redeem, block, look-up, customers, idempotency — and under real concurrency."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime, timedelta

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from promocodes.codes.models import Code, Issuance
from promocodes.customers.models import Customer
from promocodes.db import Database
from tests.api.test_groups_api import _problem
from tests.factories import assert_counters_exact, group_with_codes, make_customer
from tests.live import live_server


def _group(api: TestClient, codes: list[str], **fields: object) -> int:
    r = api.post("/api/v1/groups", json={"name": "G", "codes": codes, **fields})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_issue_initial_and_repeat_with_idempotency(api: TestClient, db: Database) -> None:
    gid = _group(api, ["A1", "A2", "A3"])
    api.put("/api/v1/customers/ann", json={"first_name": "Ann"})
    api.put("/api/v1/customers/bob", json={})
    url = f"/api/v1/groups/{gid}/issue"
    first = api.post(url, json={"customer_id": "ann"}, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 200, first.text
    again = api.post(url, json={"customer_id": "ann"}, headers={"Idempotency-Key": "k1"})
    assert again.json() == first.json()
    assert set(first.json()) == {"code", "kind", "group_id", "customer_id", "issued_at"}
    _problem(
        api.post(url, json={"customer_id": "bob"}, headers={"Idempotency-Key": "k1"}),
        422,
        "idempotency-key-reused",
    )
    other = api.post(url, json={"customer_id": "ann"})  # no key: a new code each time
    assert other.json()["code"] != first.json()["code"]
    repeat = api.post(url, json={"customer_id": "ann", "kind": "repeat"}).json()
    assert (repeat["code"], repeat["kind"]) == (other.json()["code"], "repeat")
    none = api.post(url, json={"customer_id": "bob", "kind": "repeat"}).json()
    assert none["code"] is None
    api.post(url, json={"customer_id": "bob"})
    _problem(api.post(url, json={"customer_id": "bob"}), 409, "group-exhausted")
    _problem(api.post(url, json={"customer_id": "zed"}), 404, "customer-not-found")
    _problem(
        api.post("/api/v1/groups/999/issue", json={"customer_id": "ann"}), 404, "group-not-found"
    )
    _problem(api.post(url, json={"customer_id": "ann", "kind": "other"}), 422, "validation-error")
    assert_counters_exact(db, gid)
    history = api.get("/api/v1/customers/ann/promo-codes").json()["items"]
    assert [(h["kind"], h["group_name"], h["source"]) for h in history] == [
        ("repeat", "G", "api"),
        ("initial", "G", "api"),
        ("initial", "G", "api"),
    ]


def test_expired_group_is_a_conflict(api: TestClient) -> None:
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    gid = _group(api, ["E1"], valid_until=past)
    api.put("/api/v1/customers/ann", json={})
    _problem(
        api.post(f"/api/v1/groups/{gid}/issue", json={"customer_id": "ann"}), 409, "group-expired"
    )


def test_redeem_block_lookup(api: TestClient) -> None:
    gid = _group(api, ["R1", "R2", "R3"])
    api.put("/api/v1/customers/ann", json={})
    code = api.post(f"/api/v1/groups/{gid}/issue", json={"customer_id": "ann"}).json()["code"]
    done = api.post(f"/api/v1/codes/{code}/redeem", json={"customer_id": "ann", "order_id": "o-1"})
    assert done.status_code == 200 and done.json()["status"] == "redeemed"
    again = api.post(f"/api/v1/codes/{code}/redeem", json={"customer_id": "ann", "order_id": "o-1"})
    assert again.json() == done.json()
    _problem(
        api.post(f"/api/v1/codes/{code}/redeem", json={"order_id": "o-2"}),
        409,
        "code-already-redeemed",
    )
    looked = api.get(f"/api/v1/codes/{code}").json()
    assert looked["status"] == "redeemed" and looked["order_id"] == "o-1"
    assert looked["issuances"][0]["customer_id"] == "ann"
    blocked = api.post("/api/v1/codes/R2/block").json()
    assert (blocked["status"], blocked["previous_status"]) == ("blocked", "available")
    _problem(api.post("/api/v1/codes/R2/redeem", json={}), 409, "code-blocked")
    _problem(
        api.post("/api/v1/codes/R3/redeem", json={"customer_id": "ann"}), 409, "code-not-issued"
    )
    _problem(api.get("/api/v1/codes/NOPE"), 404, "code-not-found")
    _problem(api.post("/api/v1/codes/NOPE/block"), 404, "code-not-found")
    group = api.get(f"/api/v1/groups/{gid}").json()
    assert (group["issued"], group["redeemed"], group["blocked"], group["active"]) == (1, 1, 1, 1)


def test_customers_endpoints(api: TestClient) -> None:
    put = api.put(
        "/api/v1/customers/ann", json={"email": "ann@x.io", "attributes": {"city": "Oslo"}}
    )
    assert put.status_code == 200 and put.json()["customer_id"] == "ann"
    merged = api.put("/api/v1/customers/ann", json={"attributes": {"tier": "gold"}}).json()
    assert merged["attributes"] == {"city": "Oslo", "tier": "gold"}
    _problem(api.put("/api/v1/customers/ann", json={"email": "nope"}), 422, "validation-error")
    _problem(api.get("/api/v1/customers/zed"), 404, "customer-not-found")
    ndjson = '{"customer_id": "c1"}\n{"customer_id": ""}\n{"customer_id": "c2"}\n'
    report = api.post(
        "/api/v1/customers/import", content=ndjson, headers={"Content-Type": "application/x-ndjson"}
    ).json()
    assert (report["created"], report["invalid_count"], report["invalid"][0]["line"]) == (2, 1, 2)
    csv = api.post(
        "/api/v1/customers/import",
        content="customer_id,city\nc3,Rome\n",
        headers={"Content-Type": "text/csv"},
    ).json()
    assert csv["created"] == 1
    arr = api.post("/api/v1/customers/import", json=[{"customer_id": "c4"}]).json()
    assert arr["created"] == 1
    _problem(
        api.post("/api/v1/customers/import", content="x", headers={"Content-Type": "text/plain"}),
        422,
        "validation-error",
    )
    ids = []
    cursor = None
    while True:
        page = api.get(
            "/api/v1/customers", params={"limit": 2, **({"cursor": cursor} if cursor else {})}
        ).json()
        ids += [c["customer_id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert ids == ["ann", "c1", "c2", "c3", "c4"]


def test_health_and_metrics(api: TestClient) -> None:
    _group(api, ["M1", "M2"])
    assert api.get("/healthz").json()["status"] == "ok"
    text = api.get("/metrics").text
    assert 'promocodes_group_codes{group_id="1",group="G",state="active"} 2' in text
    assert (
        'promocodes_http_requests_total{method="POST",route="/api/v1/groups",status="201"} 1'
        in text
    )
    assert "promocodes_http_request_seconds_bucket" in text
    assert api.get("/openapi.json").json()["info"]["title"] == "Promocodes"


def test_an_idempotency_key_as_long_as_allowed_issues_once(api: TestClient) -> None:
    """200 characters is the header's limit; with the API key's prefix the operation key
    is longer than its column, which PostgreSQL refused with a 500."""
    gid = _group(api, ["L1", "L2"])
    api.put("/api/v1/customers/ann", json={})
    api.put("/api/v1/customers/bob", json={})
    url, longest = f"/api/v1/groups/{gid}/issue", {"Idempotency-Key": "k" * 200}
    first = api.post(url, json={"customer_id": "ann"}, headers=longest)
    assert first.status_code == 200, first.text
    assert api.post(url, json={"customer_id": "ann"}, headers=longest).json() == first.json()
    other = {"Idempotency-Key": "k" * 199 + "j"}
    second = api.post(url, json={"customer_id": "bob"}, headers=other)
    assert second.status_code == 200 and second.json()["code"] != first.json()["code"]


def test_a_blank_idempotency_key_is_refused_not_ignored(api: TestClient, db: Database) -> None:
    gid = _group(api, ["B1", "B2"])
    api.put("/api/v1/customers/ann", json={})
    url = f"/api/v1/groups/{gid}/issue"
    for _ in range(2):  # each issued a new code, the blank key ignored
        answer = api.post(url, json={"customer_id": "ann"}, headers={"Idempotency-Key": ""})
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"] == "header.idempotency-key"
    assert_counters_exact(db, gid)
    assert api.get(f"/api/v1/groups/{gid}").json()["issued"] == 0


def test_fifty_concurrent_identical_issue_requests(db: Database) -> None:
    with live_server(db) as server:
        with httpx.Client(base_url=server.url, headers=server.headers) as c:
            gid = c.post(
                "/api/v1/groups", json={"name": "G", "codes": [f"C{i}" for i in range(100)]}
            ).json()["id"]
            c.put("/api/v1/customers/ann", json={})

        async def fire() -> list[httpx.Response]:
            async with httpx.AsyncClient(
                base_url=server.url,
                headers={**server.headers, "Idempotency-Key": "same"},
                timeout=60,
            ) as ac:
                return await asyncio.gather(
                    *(
                        ac.post(f"/api/v1/groups/{gid}/issue", json={"customer_id": "ann"})
                        for _ in range(50)
                    )
                )

        responses = asyncio.run(fire())
    assert {r.status_code for r in responses} == {200}
    assert len({r.text for r in responses}) == 1
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Issuance)) == 1
    assert_counters_exact(db, gid)


def test_concurrent_issues_each_answered_for_itself(db: Database) -> None:
    """Issues in flight together (on SQLite: one transaction, groupcommit.py), some of
    them bound to fail: each failure is its own, every other issue stands."""
    with live_server(db) as server:
        with httpx.Client(base_url=server.url, headers=server.headers) as c:
            gid = c.post(
                "/api/v1/groups", json={"name": "G", "codes": [f"C{i}" for i in range(30)]}
            ).json()["id"]
            small = c.post("/api/v1/groups", json={"name": "S", "codes": ["S1"]}).json()["id"]
            for i in range(30):
                c.put(f"/api/v1/customers/c{i}", json={})

        async def fire() -> list[httpx.Response]:
            async with httpx.AsyncClient(
                base_url=server.url, headers=server.headers, timeout=60
            ) as ac:
                calls = [
                    ac.post(
                        f"/api/v1/groups/{gid}/issue",
                        json={"customer_id": f"c{i}"},
                        headers={"Idempotency-Key": f"k{i}"},
                    )
                    for i in range(30)
                ]
                calls += [  # an unknown customer, and a group with one code for two
                    ac.post(f"/api/v1/groups/{gid}/issue", json={"customer_id": "nobody"}),
                    ac.post(f"/api/v1/groups/{small}/issue", json={"customer_id": "c0"}),
                    ac.post(f"/api/v1/groups/{small}/issue", json={"customer_id": "c1"}),
                ]
                return await asyncio.gather(*calls)

        responses = asyncio.run(fire())
        with httpx.Client(base_url=server.url, headers=server.headers) as c:
            figures = c.get("/metrics").text.splitlines()
    good, unknown, small_ones = responses[:30], responses[30], responses[31:]
    assert [r.status_code for r in good] == [200] * 30, [r.text for r in good]
    assert len({r.json()["code"] for r in good}) == 30
    assert unknown.status_code == 404 and unknown.json()["type"].endswith("customer-not-found")
    assert sorted(r.status_code for r in small_ones) == [200, 409]
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Issuance)) == 31
    assert_counters_exact(db, gid, small)
    # The grouped writes' figures: every issue that stood, in as many commits or fewer.
    assert "promocodes_grouped_writes_total 31.0" in figures
    [commits] = [f for f in figures if f.startswith("promocodes_write_commits_total ")]
    assert 1 <= float(commits.split()[1]) <= 31


def test_a_server_killed_mid_issue_loses_nothing_and_issues_nothing_twice(db: Database) -> None:
    """SIGKILL while issues are in flight (on SQLite: grouped into shared commits), then
    every call retried with its Idempotency-Key on a new server: each customer holds one
    code, each answer given before the kill is given again, no code went to two."""
    n = 300
    with db.write() as s:
        for i in range(n):
            make_customer(s, f"c{i}")
    gid = group_with_codes(db, "G", [f"C{i}" for i in range(n + 50)])

    async def fire(url: str, headers: dict[str, str], kill: int | None) -> list[object]:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as ac:
            calls = [
                asyncio.ensure_future(
                    ac.post(
                        f"/api/v1/groups/{gid}/issue",
                        json={"customer_id": f"c{i}"},
                        headers={"Idempotency-Key": f"k{i}"},
                    )
                )
                for i in range(n)
            ]
            if kill is not None:
                await asyncio.wait(calls, return_when=asyncio.FIRST_COMPLETED)
                os.kill(kill, signal.SIGKILL)
            return list(await asyncio.gather(*calls, return_exceptions=True))

    with live_server(db) as first:
        headers = first.headers
        before = asyncio.run(fire(first.url, headers, first.pid))
    answered = {
        i: r.json()["code"]
        for i, r in enumerate(before)
        if isinstance(r, httpx.Response) and r.status_code == 200
    }
    assert 0 < len(answered) < n  # the kill came while issues were in flight
    # Every answer given was on disk before it was given.
    with db.read() as s:
        held = dict(
            s.execute(
                select(Customer.external_id, Code.code)
                .join(Issuance, Issuance.customer_id == Customer.id)
                .join(Code, Code.id == Issuance.code_id)
            ).all()
        )
    assert all(held.get(f"c{i}") == code for i, code in answered.items())
    with live_server(db) as second:
        after = asyncio.run(fire(second.url, headers, None))
    codes = {}
    for i, r in enumerate(after):
        assert isinstance(r, httpx.Response) and r.status_code == 200, r
        codes[i] = r.json()["code"]
    assert all(codes[i] == code for i, code in answered.items())
    assert len(set(codes.values())) == n
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Issuance)) == n
    assert_counters_exact(db, gid)
