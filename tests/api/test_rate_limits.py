"""Rate limits per API key over HTTP: the call over the limit is a 429 problem with
Retry-After, other keys are unaffected, and the key may call again once refilled."""

from __future__ import annotations

import time

from promocodes.apikeys import service as apikeys
from promocodes.db import Database
from promocodes.ratelimit import RateLimiter
from tests.api.conftest import client_for


def test_over_the_limit_is_429_with_retry_after_and_per_key(db: Database) -> None:
    # 60 a minute = one a second, in bursts of at most 3.
    with client_for(db, api_rate_limit_per_minute=60, api_rate_limit_burst=3) as api:
        with db.write() as s:
            _, other = apikeys.create(s, "other")
        for _ in range(3):
            assert api.get("/api/v1/groups").status_code == 200
        refused = api.get("/api/v1/groups")
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["Retry-After"] == "1"
        body = refused.json()
        assert (body["type"], body["status"], body["title"]) == (
            "rate-limited",
            429,
            "Too many requests",
        )
        assert "60 requests a minute" in body["detail"]
        # Writes are refused too, before they do anything.
        assert api.post("/api/v1/groups", json={"name": "No"}).status_code == 429
        assert api.get("/api/v1/groups").json()["type"] == "rate-limited"

        other_key = {"Authorization": f"Bearer {other}"}
        assert api.get("/api/v1/groups", headers=other_key).status_code == 200

        time.sleep(1.1)  # one token back
        assert api.get("/api/v1/groups").status_code == 200
        assert api.get("/api/v1/groups").status_code == 429
        assert [
            g["name"] for g in api.get("/api/v1/groups", headers=other_key).json()["items"]
        ] == []


def test_zero_disables_the_limit(db: Database) -> None:
    with client_for(db, api_rate_limit_per_minute=0, api_rate_limit_burst=1) as api:
        assert all(api.get("/api/v1/groups").status_code == 200 for _ in range(20))


def test_the_bucket_refills_at_the_configured_rate() -> None:
    now = [100.0]
    limiter = RateLimiter(per_minute=120, burst=2, clock=lambda: now[0])  # 2 a second
    assert limiter.take(1) == 0 and limiter.take(1) == 0
    assert limiter.take(1) == 0.5  # the next token is half a second away
    assert limiter.take(2) == 0  # another key has its own bucket
    now[0] += 0.25
    assert limiter.take(1) == 0.25
    now[0] += 0.25
    assert limiter.take(1) == 0
    now[0] += 60  # a long pause refills to the burst, not beyond
    assert [limiter.take(1) for _ in range(3)] == [0, 0, 0.5]
