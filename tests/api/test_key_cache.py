"""Checked API keys are kept a few seconds per process: most calls skip the key's read,
and a revoked key is refused at the latest ``api_key_cache_seconds`` after revoking."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from sqlalchemy import event

from promocodes.apikeys import service as apikeys
from promocodes.app import create_app
from promocodes.config import Settings
from promocodes.db import Database


def test_a_revoked_key_is_refused_within_the_cache_time(db: Database) -> None:
    with db.write() as s:
        key, token = apikeys.create(s, "shop")
    app = create_app(Settings(database_url=db.url, api_key_cache_seconds=0.5), db)
    client = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    assert client.get("/api/v1/groups").status_code == 200
    with db.write() as s:
        apikeys.revoke(s, key.id)
    revoked_at = time.monotonic()
    while client.get("/api/v1/groups").status_code == 200:
        assert time.monotonic() - revoked_at < 0.5 + 0.5, "revoked key still accepted"
        time.sleep(0.05)
    assert client.get("/api/v1/groups").json()["type"] == "unauthorized"


def test_kept_keys_spare_the_database_their_read(sqlite_db: Database) -> None:
    with sqlite_db.write() as s:
        _, token = apikeys.create(s, "shop")
    client = TestClient(
        create_app(Settings(database_url=sqlite_db.url), sqlite_db),
        headers={"Authorization": f"Bearer {token}"},
    )
    client.get("/api/v1/nope")  # the first call reads the key (and touches it)
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    event.listen(sqlite_db.engine, "before_cursor_execute", count)
    try:
        for _ in range(5):
            assert client.get("/api/v1/nope").status_code == 404
    finally:
        event.remove(sqlite_db.engine, "before_cursor_execute", count)
    assert not [s for s in seen if "api_keys" in s]
