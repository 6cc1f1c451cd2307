"""Request dispatch (``dispatch``): a path no route has is answered in one step, and the
step follows the routes as they change."""

from __future__ import annotations

from fastapi.testclient import TestClient

from promocodes.app import create_app
from promocodes.config import Settings
from promocodes.db import Database


def test_a_route_added_after_the_first_request_is_found(sqlite_db: Database) -> None:
    app = create_app(Settings(database_url=sqlite_db.url), sqlite_db)
    client = TestClient(app)
    assert client.get("/later").status_code == 404

    @app.get("/later")
    def later() -> dict[str, bool]:
        return {"found": True}

    assert client.get("/later").json() == {"found": True}
    assert client.get("/later/", follow_redirects=False).headers["location"].endswith("/later")
