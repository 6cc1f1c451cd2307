"""The first administrator: created once on an empty database, with a generated password
shown once or the one from the environment; and the banner of a real `promocodes serve`."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from promocodes.config import Settings
from promocodes.db import Database
from promocodes.errors import ValidationFailed
from promocodes.users import service as users
from promocodes.users.bootstrap import DEFAULT_EMAIL, ensure_first_admin
from promocodes.users.models import User
from tests.live import free_port


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Minimal argon2 cost in this process (the same code, faster); the server
    processes started below hash at the real cost."""
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))


def settings(
    db: Database, admin_email: str | None = None, admin_password: str | None = None
) -> Settings:
    return Settings(database_url=db.url, admin_email=admin_email, admin_password=admin_password)


def user_count(db: Database) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(User)) or 0


def test_a_generated_password_logs_in_and_is_shown_only_once(db: Database) -> None:
    with db.write() as s:
        admin = ensure_first_admin(s, settings(db))
    assert admin is not None and admin.source == "generated"
    assert admin.email == DEFAULT_EMAIL
    assert admin.password is not None and len(admin.password) >= 16
    with db.write() as s:
        assert users.authenticate(s, admin.email, admin.password).email == DEFAULT_EMAIL
    with db.write() as s:
        assert ensure_first_admin(s, settings(db)) is None
    assert user_count(db) == 1


def test_the_generated_password_differs_every_time(db: Database) -> None:
    from tests.conftest import reset

    seen = set()
    for _ in range(3):
        reset(db)
        with db.write() as s:
            admin = ensure_first_admin(s, settings(db))
        assert admin is not None and admin.password
        seen.add(admin.password)
    assert len(seen) == 3


def test_email_and_password_from_the_environment(db: Database) -> None:
    env = settings(db, admin_email=" Boss@Example.COM ", admin_password="a long secret 42")
    with db.write() as s:
        admin = ensure_first_admin(s, env)
    assert admin is not None
    assert (admin.email, admin.password, admin.source) == ("boss@example.com", None, "environment")
    with db.write() as s:
        users.authenticate(s, "boss@example.com", "a long secret 42")
        with pytest.raises(users.InvalidCredentials):
            users.authenticate(s, DEFAULT_EMAIL, "a long secret 42")


def test_an_existing_user_means_nothing_is_created(db: Database) -> None:
    with db.write() as s:
        users.create_user(s, "someone@example.com", "their own password", role="admin")
    env = settings(db, admin_email="boss@example.com", admin_password="a long secret 42")
    with db.write() as s:
        assert ensure_first_admin(s, env) is None
    assert user_count(db) == 1


def test_a_too_short_password_from_the_environment_is_refused(db: Database) -> None:
    with db.write() as s, pytest.raises(ValidationFailed, match="at least 8"):
        ensure_first_admin(s, settings(db, admin_password="short"))
    assert user_count(db) == 0


# --- the real server ----------------------------------------------------------------------


class Output:
    """A process's merged output, read by a thread so waiting for a line never blocks."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert proc.stdout is not None
        stream = proc.stdout

        def pump() -> None:
            for line in stream:
                self.lines.put(line)

        threading.Thread(target=pump, daemon=True).start()

    def until(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(line)
            if found := re.search(pattern, line):
                return found
        raise AssertionError(f"{pattern!r} not printed; output: {''.join(self.seen)}")


@contextmanager
def serving(database_url: str, **env: str) -> Iterator[tuple[str, Output]]:
    port = free_port()
    exe = Path(sys.executable).parent / "promocodes"
    proc = subprocess.Popen(
        [str(exe), "serve", "--port", str(port)],
        env={**os.environ, "PROMOCODES_DATABASE_URL": database_url, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        out = Output(proc)
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, f"serve exited: {''.join(out.seen)}"
                assert time.monotonic() < deadline, "server did not start within 30 s"
                time.sleep(0.2)
        yield url, out
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def log_in(url: str, email: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=url) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token, "no CSRF token on the login page"
        return client.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": token.group(1)},
            follow_redirects=False,
        )


def test_serve_prints_the_banner_and_the_printed_login_works(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path}/p.db"
    env = {"PROMOCODES_ADMIN_EMAIL": "", "PROMOCODES_ADMIN_PASSWORD": ""}
    with serving(database_url, **env) as (url, out):
        out.until(re.escape(f"Web UI:    {url}"))
        out.until(re.escape(f"API docs:  {url}/docs"))
        email = out.until(r"First administrator created: (\S+)").group(1)
        password = out.until(r"Password:  (\S+)").group(1)
        assert email == DEFAULT_EMAIL
        assert httpx.get(f"{url}/docs").status_code == 200
        assert log_in(url, email, password).status_code == 303
        assert log_in(url, email, password + "x").status_code != 303
    # The second start creates no one and shows no password.
    with serving(database_url, **env) as (url, out):
        out.until(r"Log in with an existing user")
        assert not any("Password:" in line for line in out.seen)
        assert log_in(url, email, password).status_code == 303


def test_serve_takes_the_administrator_from_the_environment(tmp_path: Path) -> None:
    env = {
        "PROMOCODES_ADMIN_EMAIL": "boss@example.com",
        "PROMOCODES_ADMIN_PASSWORD": "a long secret 42",
    }
    with serving(f"sqlite:///{tmp_path}/p.db", **env) as (url, out):
        out.until(r"First administrator created: boss@example\.com \(password from ")
        assert not any("Password:" in line for line in out.seen)
        assert log_in(url, "boss@example.com", "a long secret 42").status_code == 303
