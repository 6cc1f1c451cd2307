"""Settings: API keys shown once and revoked after a confirmation; delivery status."""

from __future__ import annotations

import re

from promocodes.apikeys.scopes import SCOPES
from promocodes.db import Database
from tests.web.conftest import Ui, app_client, find, log_in, make_user

ALL_SCOPES = list(SCOPES)


def test_create_shows_the_key_once_and_it_works(ui: Ui) -> None:
    response = ui.post("/settings/api-keys", {"name": "Shop", "scope": ALL_SCOPES})
    assert response.status_code == 200
    token = find(r'<code id="new-key">([^<]+)</code>', response.text)
    assert "shown only this once" in response.text
    assert ui.get("/api/v1/groups", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    page = ui.get("/settings").text
    assert "Shop" in page and token not in page
    empty = ui.post("/settings/api-keys", {"name": "  "})
    assert empty.status_code == 422 and "needs a name" in empty.text


def test_revoke_asks_first(ui: Ui) -> None:
    created = ui.post("/settings/api-keys", {"name": "Old", "scope": ALL_SCOPES}).text
    token = find(r'<code id="new-key">([^<]+)</code>', created)
    revoke = find(r'href="(/settings/api-keys/\d+/revoke)"', ui.get("/settings").text)
    assert "Revoke API key “Old”?" in ui.get(revoke).text
    assert ui.post(revoke).status_code == 303
    assert ui.get("/api/v1/groups", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert "revoked" in ui.get("/settings").text


def test_delivery_status(ui: Ui, db: Database) -> None:
    page = ui.get("/settings").text
    assert re.search(r'id="smtp-status">.*not configured', page)
    make_user(db, "second@example.com")
    with app_client(
        db,
        smtp_host="mail.internal",
        smtp_port=587,
        smtp_starttls=True,
        smtp_password="hunter2",
        webhook_url="https://hooks.example.com/x?token=secret",
    ) as client:
        log_in(client, "second@example.com")
        page = client.get("/settings").text
    assert "mail.internal:587" in page and "STARTTLS" in page
    assert "hooks.example.com" in page and "signing secret is the default" in page
    assert "hunter2" not in page and "token=secret" not in page
