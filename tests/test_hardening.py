"""The rest of who-sees-what: a metrics token and metrics without names, security headers
on every answer, no start with a published webhook secret, Secure cookies behind a proxy."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from promocodes.app import create_app
from promocodes.cli import app as cli
from promocodes.config import Settings
from promocodes.db import Database
from promocodes.users import service as users
from tests.api.conftest import client_for
from tests.factories import group_with_codes
from tests.web.conftest import csrf_of


def test_metrics_ask_for_their_token_and_can_leave_names_out(sqlite_db: Database) -> None:
    group_with_codes(sqlite_db, "Secret launch", ["M1"])
    app = create_app(
        Settings(database_url=sqlite_db.url, metrics_token="t0k3n", metrics_names=False),
        sqlite_db,
    )
    client = TestClient(app)
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    shown = client.get("/metrics", headers={"Authorization": "Bearer t0k3n"})
    assert shown.status_code == 200
    assert 'promocodes_group_codes{group_id="1",state="total"} 1' in shown.text
    assert "Secret launch" not in shown.text
    named = TestClient(create_app(Settings(database_url=sqlite_db.url), sqlite_db))
    assert 'group="Secret launch"' in named.get("/metrics").text  # the default: names, open


def test_every_answer_carries_the_security_headers(sqlite_db: Database) -> None:
    with client_for(sqlite_db) as api:
        for answer in (
            api.get("/api/v1/groups"),
            api.get("/api/v1/groups/999"),  # a problem from an error handler
            api.post("/api/v1/groups", content=b"x" * 3_000_000),  # the body limit's 413
        ):
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["cache-control"] == "no-store"
        health = api.get("/healthz")
        assert health.headers["x-content-type-options"] == "nosniff"
        assert "cache-control" not in health.headers  # not an API answer: probes may cache
        # Uptime checks often ask with HEAD: a 405 would read as "down".
        for probe in ("/healthz", "/readyz"):
            assert api.head(probe).status_code == 200


def test_a_problem_is_compact_json_with_its_text_as_sent(sqlite_db: Database) -> None:
    # The wire form of every problem (``apikit.ProblemResponse``): Starlette's JSON, no
    # spaces, text not escaped to ASCII.
    with client_for(sqlite_db) as api:
        answer = api.get("/api/v1/nö")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert (
        answer.content
        == (
            '{"type":"not-found","title":"Not Found","status":404,"detail":"Not Found",'
            '"instance":"/api/v1/nö"}'
        ).encode()
    )


@pytest.mark.parametrize("variable", ["PROMOCODES_WEBHOOK_URL", "PROMOCODES_ALERTS_WEBHOOK_URL"])
@pytest.mark.parametrize("command", ["serve", "worker"])
def test_no_start_with_the_published_webhook_secret(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch, variable: str, command: str
) -> None:
    monkeypatch.setenv("PROMOCODES_DATABASE_URL", sqlite_db.url)
    monkeypatch.setenv(variable, "https://hooks.example.com/in")
    refused = CliRunner().invoke(cli, [command])
    assert refused.exit_code == 1
    assert "PROMOCODES_WEBHOOK_SECRET is the default 'change-me'" in refused.output
    assert Settings(webhook_url="https://x", webhook_secret="s3cret").unsafe_to_start() is None


def test_an_https_public_url_makes_the_cookies_secure(sqlite_db: Database) -> None:
    with sqlite_db.write() as s:
        users.create_user(s, "boss@example.com", "a long password", role="admin")
    for public, secure in (("https://promo.example.com", True), (None, False)):
        settings = Settings(database_url=sqlite_db.url, public_url=public)
        client = TestClient(create_app(settings, sqlite_db))  # plain http, as behind a proxy
        page = client.get("/login")
        assert ("secure" in page.headers["set-cookie"].lower()) is secure
        # The browser is on https: it sends back the Secure cookie httpx keeps for https.
        login_cookie = page.headers["set-cookie"].split(";")[0]
        logged = client.post(
            "/login",
            data={"email": "boss@example.com", "password": "a long password",
                  "csrf_token": csrf_of(page.text)},
            headers={"Cookie": login_cookie},
            follow_redirects=False,
        )  # fmt: skip
        assert ("secure" in logged.headers["set-cookie"].lower()) is secure
