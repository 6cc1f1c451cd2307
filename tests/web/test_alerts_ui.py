"""The stock alerts page: the list, its filters, and acknowledging an alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from promocodes.codes import alerts, service
from promocodes.codes.schemas import GroupUpdate
from promocodes.db import Database
from promocodes.users import service as users
from tests.audit.common import entries, only
from tests.factories import group_with_codes
from tests.web.conftest import EMAIL, Ui, app_client, log_in


def table(ui: Ui, **params: str) -> str:
    """The alerts table of the page (the filters above it name every group)."""
    return ui.get("/alerts", params=params).text.partition('id="alerts"')[2]


def test_alerts_are_listed_filtered_and_acknowledged(ui: Ui, db: Database) -> None:
    low = group_with_codes(db, "Winter 15%", [f"W{i}" for i in range(3)])
    out = group_with_codes(db, "Ending soon", [f"E{i}" for i in range(50)])
    with db.write() as s:
        service.update_group(s, low, GroupUpdate(low_stock_threshold=10))
        soon = datetime.now(UTC) + timedelta(days=3)
        service.update_group(s, out, GroupUpdate(valid_until=soon))
        raised = alerts.scan(s)
    assert {a.group_id for a in raised} == {low, out}
    page = table(ui)
    assert "Winter 15%" in page and "Low stock" in page and "Expiring soon" in page
    only_low = table(ui, kind="low-stock")
    assert "Winter 15%" in only_low and "Ending soon" not in only_low
    assert "Winter 15%" not in table(ui, group=str(out))

    (alert,) = [a for a in raised if a.group_id == low]
    done = ui.post(f"/alerts/{alert.id}/acknowledge", {"next": "/alerts?show=all"})
    assert done.status_code == 303 and done.headers["location"] == "/alerts?show=all"
    # The flash says which alert, among several, was acknowledged.
    assert "Alert “Low stock” of “Winter 15%” acknowledged." in ui.get("/alerts?show=all").text
    assert "Winter 15%" not in table(ui)  # no longer waiting for anyone
    everything = table(ui, show="all")
    assert "Winter 15%" in everything and f"by {EMAIL}" in everything
    assert ui.post("/alerts/999999/acknowledge").status_code == 404


def test_acknowledging_an_alert_is_audited_once(ui: Ui, db: Database) -> None:
    low = group_with_codes(db, "Spring 10%", ["S1", "S2"])
    with db.write() as s:
        service.update_group(s, low, GroupUpdate(low_stock_threshold=10))
        (alert,) = alerts.scan(s)
    assert entries(db, "alert.acknowledged") == []
    ui.post(f"/alerts/{alert.id}/acknowledge")
    ui.post(f"/alerts/{alert.id}/acknowledge")  # a repeat changes nothing: not recorded again
    entry = only(db, "alert.acknowledged")
    assert (entry.actor_kind, entry.actor_name) == ("user", EMAIL)
    assert (entry.target_type, entry.target_id, entry.target_name) == (
        "alert",
        str(alert.id),
        "Spring 10%",
    )
    assert entry.details == {"group_id": low, "group_name": "Spring 10%", "kind": "low-stock"}
    shown = ui.get("/audit", params={"action": "alert.acknowledged"}).text
    assert "Spring 10%" in shown


def test_a_viewer_sees_the_alerts_without_an_acknowledge_button(ui: Ui, db: Database) -> None:
    low = group_with_codes(db, "Autumn 5%", ["A1"])
    with db.write() as s:
        service.update_group(s, low, GroupUpdate(low_stock_threshold=10))
        alerts.scan(s)
        users.create_user(s, "vic@example.com", "a long password", role="viewer")
    assert ">Acknowledge</button>" in table(ui)  # a marketer or an admin has the button
    with app_client(db) as web:
        assert log_in(web, "vic@example.com", "a long password").status_code == 303
        page = web.get("/alerts").text.partition('id="alerts"')[2]
    assert "Autumn 5%" in page and "Low stock" in page
    assert "Acknowledge</button>" not in page and "Not yet" in page


def test_the_audit_log_says_alert_kinds_as_the_alerts_page(ui: Ui, db: Database) -> None:
    low = group_with_codes(db, "Spring 20%", ["S1"])
    with db.write() as s:
        service.update_group(s, low, GroupUpdate(low_stock_threshold=10))
        (alert,) = alerts.scan(s)
    ui.post(f"/alerts/{alert.id}/acknowledge")
    log = ui.get("/audit").text.partition("<tbody>")[2]
    assert 'title="alert.acknowledged"' in log and ">Alert acknowledged<" in log
    assert "Low stock" in log and "low-stock" not in log
