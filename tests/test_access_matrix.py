"""Every person only their own powers: each web route with each role, and each API
operation with each scope, asserted from the route table. A new route without a decision
here fails ``test_every_route_has_a_decision``; a decision the code does not keep fails
the matrix. (Inputs are placeholders: an allowed call may well answer 404 or 422, what
matters is whether the answer is the 403 of a missing role or scope.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from promocodes.apikeys import service as apikeys
from promocodes.apikeys.scopes import SCOPES, Scope
from promocodes.app import create_app
from promocodes.config import Settings
from promocodes.db import Database
from promocodes.users import service as users
from promocodes.users.roles import ROLES, Role, allows
from tests.web.conftest import csrf_of

# The decision for every route of the web UI: the least role that may use it.
WEB: dict[tuple[str, str], Role] = {
    ("POST", "/logout"): "viewer",
    ("GET", "/"): "viewer",
    ("GET", "/groups"): "viewer",
    ("GET", "/groups/new"): "viewer",
    ("POST", "/groups/new"): "marketer",
    ("GET", "/groups/{group_id}"): "viewer",
    ("POST", "/groups/{group_id}"): "marketer",
    ("POST", "/groups/{group_id}/codes/{code}/unblock"): "marketer",
    ("GET", "/groups/{group_id}/delete"): "viewer",
    ("POST", "/groups/{group_id}/delete"): "marketer",
    ("POST", "/groups/{group_id}/upload"): "marketer",
    ("POST", "/groups/{group_id}/generate"): "marketer",
    ("GET", "/uploads/{upload_id}/status"): "viewer",
    ("GET", "/uploads/{upload_id}/withdraw"): "viewer",
    ("POST", "/uploads/{upload_id}/withdraw"): "marketer",
    ("GET", "/groups/{group_id}/codes.csv"): "marketer",
    ("GET", "/customers"): "viewer",
    ("GET", "/customers/{customer_id:path}"): "viewer",
    ("GET", "/customer-erasure/{customer_id:path}"): "viewer",
    ("POST", "/customer-erasure/{customer_id:path}"): "marketer",
    ("GET", "/segments"): "viewer",
    ("GET", "/segments/new"): "viewer",
    ("GET", "/segments/{segment_id}"): "viewer",
    ("POST", "/segments/new"): "marketer",
    ("POST", "/segments/preview"): "viewer",
    ("GET", "/segments/{segment_id}/delete"): "viewer",
    ("POST", "/segments/{segment_id}/delete"): "marketer",
    ("POST", "/segments/{segment_id}"): "marketer",
    ("GET", "/segments/{segment_id}/customers.csv"): "marketer",
    ("POST", "/templates/check"): "viewer",
    ("POST", "/templates/preview"): "viewer",
    ("GET", "/mailings"): "viewer",
    ("GET", "/mailings/new"): "viewer",
    ("POST", "/mailings/new"): "marketer",
    ("GET", "/mailings/{mailing_id}"): "viewer",
    ("POST", "/mailings/{mailing_id}"): "marketer",
    ("POST", "/mailings/{mailing_id}/test"): "marketer",
    ("GET", "/mailings/{mailing_id}/send"): "viewer",
    ("POST", "/mailings/{mailing_id}/send"): "marketer",
    ("GET", "/mailings/{mailing_id}/progress"): "viewer",
    ("GET", "/mailings/{mailing_id}/cancel"): "viewer",
    ("POST", "/mailings/{mailing_id}/resend"): "marketer",
    ("POST", "/mailings/{mailing_id}/cancel"): "marketer",
    ("GET", "/campaigns"): "viewer",
    ("GET", "/campaigns/new"): "viewer",
    ("POST", "/campaigns/new"): "marketer",
    ("GET", "/campaigns/{campaign_id}"): "viewer",
    ("GET", "/campaigns/{campaign_id}/delete"): "viewer",
    ("POST", "/campaigns/{campaign_id}/delete"): "marketer",
    ("POST", "/campaigns/{campaign_id}"): "marketer",
    ("POST", "/campaigns/{campaign_id}/pause"): "marketer",
    ("POST", "/campaigns/{campaign_id}/resume"): "marketer",
    ("GET", "/mailings/{mailing_id}/messages"): "viewer",
    ("GET", "/campaigns/{campaign_id}/messages"): "viewer",
    ("GET", "/mailings/{mailing_id}/messages.csv"): "marketer",
    ("GET", "/campaigns/{campaign_id}/messages.csv"): "marketer",
    ("GET", "/settings"): "viewer",
    ("POST", "/settings/api-keys"): "admin",
    ("GET", "/settings/api-keys/{key_id}/revoke"): "admin",
    ("POST", "/settings/api-keys/{key_id}/revoke"): "admin",
    ("POST", "/settings/users"): "admin",
    ("POST", "/settings/users/{user_id}/role"): "admin",
    ("GET", "/settings/users/{user_id}/reset"): "admin",
    ("POST", "/settings/users/{user_id}/reset"): "admin",
    ("GET", "/settings/users/{user_id}/remove"): "admin",
    ("POST", "/settings/users/{user_id}/remove"): "admin",
    ("GET", "/settings/password"): "viewer",
    ("POST", "/settings/password"): "viewer",
    ("GET", "/audit"): "viewer",
    ("GET", "/alerts"): "viewer",
    ("POST", "/alerts/{alert_id}/acknowledge"): "marketer",
}
# The decision for every API operation: the scope it needs.
API: dict[tuple[str, str], Scope] = {
    ("POST", "/api/v1/codes/redemptions"): "redeem",
    ("POST", "/api/v1/groups"): "manage",
    ("GET", "/api/v1/groups"): "read",
    ("GET", "/api/v1/groups/{group_id}"): "read",
    ("GET", "/api/v1/groups/{group_id}/stock"): "read",
    ("GET", "/api/v1/alerts"): "read",
    ("PATCH", "/api/v1/groups/{group_id}"): "manage",
    ("DELETE", "/api/v1/groups/{group_id}"): "manage",
    ("POST", "/api/v1/groups/{group_id}/issue"): "issue",
    ("GET", "/api/v1/codes/{code}"): "read",
    ("POST", "/api/v1/codes/{code}/redeem"): "redeem",
    ("POST", "/api/v1/codes/{code}/validate"): "read",
    ("POST", "/api/v1/codes/{code}/block"): "manage",
    ("POST", "/api/v1/codes/{code}/unblock"): "manage",
    ("DELETE", "/api/v1/codes/{code}/redemption"): "redeem",
    ("POST", "/api/v1/groups/{group_id}/codes"): "manage",
    ("POST", "/api/v1/groups/{group_id}/generate"): "manage",
    ("GET", "/api/v1/uploads/{upload_id:int}"): "read",
    ("POST", "/api/v1/uploads/{upload_id:int}/withdraw"): "manage",
    ("GET", "/api/v1/groups/{group_id}/codes"): "read",
    ("PUT", "/api/v1/customers/{customer_id:customer_id}"): "manage",
    ("GET", "/api/v1/customers/{customer_id:customer_id}"): "read",
    ("DELETE", "/api/v1/customers/{customer_id:customer_id}"): "manage",
    ("GET", "/api/v1/customers"): "read",
    ("POST", "/api/v1/customers/import"): "manage",
    ("GET", "/api/v1/customers/{customer_id:customer_id}/promo-codes"): "read",
    ("POST", "/api/v1/segments"): "manage",
    ("GET", "/api/v1/segments"): "read",
    ("POST", "/api/v1/segments/preview"): "read",
    ("GET", "/api/v1/segments/{segment_id:int}"): "read",
    ("PATCH", "/api/v1/segments/{segment_id:int}"): "manage",
    ("DELETE", "/api/v1/segments/{segment_id:int}"): "manage",
    ("GET", "/api/v1/segments/{segment_id}/customers"): "read",
    ("POST", "/api/v1/templates/validate"): "read",
    ("POST", "/api/v1/templates/preview"): "read",
    ("POST", "/api/v1/mailings"): "manage",
    ("GET", "/api/v1/mailings"): "read",
    ("GET", "/api/v1/mailings/{mailing_id}"): "read",
    ("PATCH", "/api/v1/mailings/{mailing_id}"): "manage",
    ("GET", "/api/v1/mailings/{mailing_id}/skips"): "read",
    ("GET", "/api/v1/mailings/{mailing_id}/analytics"): "read",
    ("GET", "/api/v1/campaigns/{campaign_id}/analytics"): "read",
    ("GET", "/api/v1/groups/{group_id}/analytics"): "read",
    ("POST", "/api/v1/mailings/{mailing_id}/check"): "read",
    ("POST", "/api/v1/mailings/{mailing_id}/preview"): "read",
    ("POST", "/api/v1/mailings/{mailing_id}/test"): "manage",
    ("POST", "/api/v1/mailings/{mailing_id}/send"): "manage",
    ("POST", "/api/v1/mailings/{mailing_id}/resend"): "manage",
    ("POST", "/api/v1/mailings/{mailing_id}/cancel"): "manage",
    ("GET", "/api/v1/mailings/{mailing_id}/messages"): "read",
    ("POST", "/api/v1/campaigns"): "manage",
    ("GET", "/api/v1/campaigns"): "read",
    ("GET", "/api/v1/campaigns/{campaign_id}"): "read",
    ("PATCH", "/api/v1/campaigns/{campaign_id}"): "manage",
    ("DELETE", "/api/v1/campaigns/{campaign_id}"): "manage",
    ("POST", "/api/v1/campaigns/{campaign_id}/preview"): "read",
    ("GET", "/api/v1/campaigns/{campaign_id}/messages"): "read",
    ("POST", "/api/v1/events"): "issue",
    ("GET", "/api/v1/audit"): "read",
}


def routes(app: Any) -> Iterator[tuple[str, str, str]]:
    """(method, path template, the module of its endpoint) of every route."""
    for route in app.router.routes:
        found = (
            route.effective_route_contexts()
            if hasattr(route, "effective_route_contexts")
            else [route]
        )
        for r in found:
            module = getattr(getattr(r, "endpoint", None), "__module__", "")
            for method in sorted(set(getattr(r, "methods", None) or ()) - {"HEAD"}):
                yield method, r.path, module


@pytest.fixture
def app(sqlite_db: Database) -> Any:
    return create_app(Settings(database_url=sqlite_db.url), sqlite_db)


def test_every_route_has_a_decision(app: Any) -> None:
    web = {
        (m, p) for m, p, mod in routes(app) if mod.startswith("promocodes.web") and p != "/login"
    }
    api = {(m, p) for m, p, _ in routes(app) if p.startswith("/api/v1")}
    assert sorted(web - WEB.keys()) == [], "web routes without a role decided in WEB"
    assert sorted(api - API.keys()) == [], "API operations without a scope decided in API"
    assert sorted(WEB.keys() - web) == [] and sorted(API.keys() - api) == []


def _url(path: str) -> str:
    # An id that names nothing: an allowed call changes nothing and answers 404 or 422.
    return re.sub(r"\{[^}]+\}", "999999", path)


def test_each_role_may_do_what_it_is_given_and_no_more(app: Any, sqlite_db: Database) -> None:
    clients: dict[str, tuple[TestClient, str]] = {}
    for role in ROLES:
        with sqlite_db.write() as s:
            user = users.create_user(s, f"{role}@example.com", "a long password", role=role)
            token = users.start_session(s, user)
        client = TestClient(app)
        client.cookies.set("pc_session", token)
        clients[role] = (client, csrf_of(client.get("/settings/password").text))
    wrong = []
    for (method, path), least in sorted(WEB.items()):
        if path == "/logout":
            continue  # it would end the session the rest of the matrix uses
        for who, (client, csrf) in clients.items():
            answer = client.request(
                method, _url(path), headers={"X-CSRF-Token": csrf}, follow_redirects=False
            )
            refused = answer.status_code == 403 and "role" in answer.text
            if refused == allows(who, least):
                wrong.append(f"{who} {method} {path}: {answer.status_code}")
    assert wrong == []


def test_each_scope_may_do_what_it_is_given_and_no_more(app: Any, sqlite_db: Database) -> None:
    tokens = {}
    for scope in SCOPES:
        with sqlite_db.write() as s:
            tokens[scope] = apikeys.create(s, f"only {scope}", scopes=[scope])[1]
    client = TestClient(app)
    wrong = []
    for (method, path), needed in sorted(API.items()):
        for scope, token in tokens.items():
            answer = client.request(
                method, _url(path), headers={"Authorization": f"Bearer {token}"}, json={}
            )
            refused = answer.status_code == 403
            if refused == (scope == needed):
                wrong.append(f"{scope} {method} {path}: {answer.status_code}")
            if refused:
                assert answer.json()["scope"] == needed
    assert wrong == []
