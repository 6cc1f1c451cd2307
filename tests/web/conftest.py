"""The web UI over HTTP: the real app (TestClient) with a real user who logs in through
the login form, on both backends."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from promocodes.app import create_app
from promocodes.config import Settings
from promocodes.db import Database
from promocodes.users import service as users

EMAIL = "marketer@example.com"
PASSWORD = "correct horse battery staple"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2's defaults take ~0.2 s a hash here, on purpose; these tests hash and verify
    a password in nearly every test, so they use minimal cost parameters (same code)."""
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(users, "_hasher", cheap)
    dummy = cheap.hash("not a password anyone types")
    monkeypatch.setattr(users, "_dummy_hash", lambda: dummy)


def make_user(db: Database, email: str = EMAIL, password: str = PASSWORD) -> None:
    with db.write() as s:
        users.create_user(s, email, password, role="admin")


def find(pattern: str, text: str, group: int = 1) -> str:
    """The ``group`` of the first match of ``pattern`` in ``text`` (the test fails if none)."""
    found = re.search(pattern, text, re.S)
    assert found, f"{pattern!r} not found"
    return found.group(group)


def csrf_of(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def log_in(client: TestClient, email: str = EMAIL, password: str = PASSWORD) -> httpx.Response:
    page = client.get("/login")
    response: httpx.Response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    return response


class Ui:
    """A logged-in browser without JavaScript: forms carry the session's CSRF token."""

    def __init__(self, client: TestClient, db: Database) -> None:
        self.client = client
        self.db = db
        self.token = csrf_of(client.get("/groups").text)

    def get(self, url: str, **kw: Any) -> httpx.Response:
        response: httpx.Response = self.client.get(url, **kw)
        return response

    def post(self, url: str, data: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
        kw.setdefault("follow_redirects", False)
        response: httpx.Response = self.client.post(
            url, data={"csrf_token": self.token, **(data or {})}, **kw
        )
        return response

    def htmx(self, url: str, data: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
        headers = {"HX-Request": "true", "X-CSRF-Token": self.token}
        response: httpx.Response = self.client.post(url, data=data or {}, headers=headers, **kw)
        return response


def app_client(db: Database, **settings: Any) -> TestClient:
    return TestClient(create_app(Settings(database_url=db.url, **settings), db))


@pytest.fixture
def anon(db: Database) -> Iterator[TestClient]:
    with app_client(db) as client:
        yield client


@pytest.fixture
def ui(db: Database) -> Iterator[Ui]:
    make_user(db)
    with app_client(db) as client:
        assert log_in(client).status_code == 303
        yield Ui(client, db)
