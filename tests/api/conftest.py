"""An API client per backend: the real app over HTTP (ASGI), authenticated with a real key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from promocodes.apikeys import service as apikeys
from promocodes.app import create_app
from promocodes.config import Settings
from promocodes.db import Database


def client_for(db: Database, **settings: Any) -> TestClient:
    app = create_app(Settings(database_url=db.url, **settings), db)
    with db.write() as s:
        _, token = apikeys.create(s, "tests")
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def api(db: Database) -> Iterator[TestClient]:
    with client_for(db) as client:
        yield client
