"""Login, sessions, logout, CSRF and redirects of the web UI (both backends)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from promocodes.codes import service
from promocodes.db import Database
from promocodes.web.kit import UiRoute
from promocodes.web.routes import ROUTERS
from tests.factories import make_group
from tests.web.conftest import EMAIL, PASSWORD, Ui, app_client, csrf_of, log_in, make_user

PAGES = [
    "/groups",
    "/groups/new",
    "/customers",
    "/segments",
    "/segments/new",
    "/mailings",
    "/mailings/new",
    "/campaigns",
    "/campaigns/new",
    "/settings",
]


@pytest.mark.parametrize("path", ["/groups?q=summer", "/settings"])
def test_pages_redirect_to_login_with_next(anon: TestClient, path: str) -> None:
    response = anon.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
    page = anon.get(response.headers["location"])
    assert f'name="next" value="{path}"' in page.text


def test_every_page_needs_a_login(anon: TestClient) -> None:
    for path in [*PAGES, "/", "/customers/alice", "/groups/1"]:
        response = anon.get(path, follow_redirects=False)
        if path == "/":
            assert response.headers["location"] == "/groups"
            continue
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next="), path


def test_htmx_requests_without_a_session_are_sent_to_login(anon: TestClient) -> None:
    response = anon.post(
        "/segments/preview",
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/segments/new"},
        follow_redirects=False,
    )
    assert response.headers["HX-Redirect"] == "/login?next=%2Fsegments%2Fnew"


def test_login_sets_a_safe_session_cookie_and_goes_to_next(db: Database) -> None:
    make_user(db)
    with app_client(db) as client:
        page = client.get("/login?next=/customers")
        response = client.post(
            "/login",
            data={
                "email": "  Marketer@Example.com ",
                "password": PASSWORD,
                "csrf_token": csrf_of(page.text),
                "next": "/customers",
            },
            follow_redirects=False,
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/customers"
        cookie = next(
            c for c in response.headers.get_list("set-cookie") if c.startswith("pc_session=")
        )
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        assert "Secure" not in cookie  # plain http (a test server); see the https test
        assert client.get("/customers").status_code == 200


def test_session_cookie_is_secure_over_https(db: Database) -> None:
    make_user(db)
    with TestClient(app_client(db).app, base_url="https://testserver") as client:
        response = log_in(client)
        cookie = next(
            c for c in response.headers.get_list("set-cookie") if c.startswith("pc_session=")
        )
        assert "Secure" in cookie and "HttpOnly" in cookie


def test_next_never_leaves_the_site(db: Database) -> None:
    make_user(db)
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
        with app_client(db) as client:
            page = client.get("/login", params={"next": target})
            response = client.post(
                "/login",
                data={
                    "email": EMAIL,
                    "password": PASSWORD,
                    "csrf_token": csrf_of(page.text),
                    "next": target,
                },
                follow_redirects=False,
            )
            assert response.headers["location"] == "/groups"


def test_wrong_password_shows_an_inline_error_and_keeps_the_email(db: Database) -> None:
    make_user(db)
    with app_client(db) as client:
        response = log_in(client, password="wrong password")
        assert response.status_code == 401
        assert "The email or the password is not right." in response.text
        assert f'value="{EMAIL}"' in response.text
        assert client.get("/groups", follow_redirects=False).status_code == 303
        unknown = log_in(client, email="nobody@example.com")
        assert unknown.status_code == 401
        assert "The email or the password is not right." in unknown.text


def test_password_guessing_is_throttled_per_email(db: Database) -> None:
    make_user(db)
    with app_client(db) as client:
        for _ in range(10):
            assert log_in(client, password="wrong password").status_code == 401
        throttled = log_in(client, password="wrong password")
        assert throttled.status_code == 429
        assert "Too many login attempts. Try again in" in throttled.text
        # Even the right password waits: the throttle comes before checking it.
        assert log_in(client).status_code == 429
        # Another account from the same address is not held up by this one.
        assert log_in(client, email="other@example.com").status_code == 401


def test_login_form_without_its_token_is_refused(db: Database) -> None:
    make_user(db)
    with app_client(db) as client:
        response = client.post(
            "/login", data={"email": EMAIL, "password": PASSWORD}, follow_redirects=False
        )
        assert response.status_code == 403
        assert "pc_session" not in response.headers.get("set-cookie", "")


def test_logout_ends_the_session_for_good(ui: Ui) -> None:
    stolen = ui.client.cookies.get("pc_session")
    response = ui.post("/logout")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert ui.get("/groups", follow_redirects=False).status_code == 303
    with app_client(ui.db) as other:
        other.cookies.set("pc_session", stolen or "")
        assert other.get("/groups", follow_redirects=False).status_code == 303


def test_logout_needs_the_csrf_token(ui: Ui) -> None:
    response = ui.client.post("/logout", follow_redirects=False)
    assert response.status_code == 403
    assert ui.get("/groups").status_code == 200


def test_a_form_post_without_the_token_is_refused(ui: Ui, db: Database) -> None:
    form = {"name": "Sneaky", "description": "", "codes": "A1\nA2"}
    for headers, data in (
        ({}, form),
        ({}, {**form, "csrf_token": "forged"}),
        ({"X-CSRF-Token": "forged", "HX-Request": "true"}, form),
    ):
        response = ui.client.post("/groups/new", data=data, headers=headers, follow_redirects=False)
        assert response.status_code == 403
        assert "Request refused" in response.text
    with db.read() as s:
        assert service.list_groups(s) == []


def test_the_htmx_header_carries_the_token(ui: Ui, db: Database) -> None:
    with db.write() as s:
        group_id = make_group(s, "Header").id
    response = ui.htmx(f"/groups/{group_id}/upload", {"codes": "H1\nH2", "action": "check"})
    assert response.status_code == 200
    assert "Check result" in response.text


def test_the_token_is_per_session(db: Database) -> None:
    make_user(db)
    with app_client(db) as first, app_client(db) as second:
        log_in(first)
        log_in(second)
        one, two = Ui(first, db), Ui(second, db)
        assert one.token != two.token
        response = second.post(
            "/groups/new",
            data={"csrf_token": one.token, "name": "Cross"},
            follow_redirects=False,
        )
        assert response.status_code == 403


def test_the_api_keeps_its_own_key_auth(ui: Ui) -> None:
    response = ui.get("/api/v1/groups")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


def test_pages_send_security_headers(ui: Ui) -> None:
    response = ui.get("/groups")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert f'hx-headers=\'{{"X-CSRF-Token": "{ui.token}"}}\'' in response.text


def test_every_ui_post_route_checks_the_token(ui: Ui) -> None:
    """Structural: no state-changing UI route can forget the CSRF check."""
    routes = [
        r
        for router in ROUTERS
        for r in router.routes
        if isinstance(r, UiRoute) and "POST" in (r.methods or ()) and r.path != "/login"
    ]
    assert len(routes) >= 20
    for route in routes:
        path = re.sub(r"\{[^}]+\}", "1", route.path)
        response = ui.client.post(path, data={"name": "x"}, follow_redirects=False)
        assert response.status_code == 403, route.path


def test_the_login_page_sends_a_logged_in_user_on(ui: Ui) -> None:
    response = ui.get("/login?next=/settings", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/settings"
