"""Customers without a browser: the searchable list and the profile's Promo codes tab."""

from __future__ import annotations

from sqlalchemy import update

from promocodes.codes.models import Issuance
from promocodes.db import Database
from promocodes.models import utcnow
from tests.factories import group_with_codes, issue, make_customer
from tests.web.conftest import Ui


def test_list_and_search(ui: Ui, db: Database) -> None:
    with db.write() as s:
        make_customer(s, "alice", email="alice@shop.io", first_name="Alice", last_name="Liddell")
        make_customer(s, "bob", email="bob@other.io", first_name="Bob")
        make_customer(s, "c 3", email="c3@shop.io")
    page = ui.get("/customers").text
    assert all(
        name in page for name in ("alice", "bob", "Alice Liddell", 'href="/customers/c%203"')
    )
    found = ui.get("/customers", params={"q": "shop.io"}).text
    assert "alice@shop.io" in found and "c3@shop.io" in found and "bob@other.io" not in found
    exact = ui.get("/customers", params={"q": "bob"}).text
    assert "bob@other.io" in exact and "alice@shop.io" not in exact
    assert "No customer matches" in ui.get("/customers", params={"q": "nobody"}).text
    # Any case: "LIDDELL" finds Liddell, "SHOP.IO" the shop addresses.
    shouted = ui.get("/customers", params={"q": "LIDDELL"}).text
    assert "alice@shop.io" in shouted and "bob@other.io" not in shouted
    upper = ui.get("/customers", params={"q": "SHOP.IO"}).text
    assert "alice@shop.io" in upper and "c3@shop.io" in upper
    # A full name: each word in some field ("alice" the first name, "liddell" the last).
    full = ui.get("/customers", params={"q": "alice liddell"}).text
    assert "alice@shop.io" in full and "bob@other.io" not in full
    assert "No customer matches" in ui.get("/customers", params={"q": "alice bob"}).text


def test_profile_lists_every_issued_code(ui: Ui, db: Database) -> None:
    gid = group_with_codes(db, "Welcome", ["W1", "W2", "W3"])
    with db.write() as s:
        make_customer(s, "c 3", email="c3@shop.io", first_name="Cee", attributes={"city": "Oslo"})
    first = issue(db, "c 3", gid, key="a")
    assert first is not None
    again = issue(db, "c 3", gid, key="b", kind="repeat")
    second = issue(db, "c 3", gid, key="c")
    assert second is not None
    assert first == again
    with db.write() as s:
        s.execute(update(Issuance).where(Issuance.key == "c").values(voided_at=utcnow()))
    page = ui.get("/customers/c%203")
    assert page.status_code == 200
    text = page.text
    assert "Cee" in text and "c3@shop.io" in text and "Oslo" in text
    assert text.count(f'<td class="mono">{first}</td>') == 2
    assert "<td>initial</td>" in text and "<td>repeat</td>" in text
    assert ">Welcome</a>" in text and "not redeemed" in text
    assert 'class="voided"' in text and second in text


def test_an_unknown_customer_is_a_404_page(ui: Ui) -> None:
    response = ui.get("/customers/nobody")
    assert response.status_code == 404
    assert "Customer not found" in response.text and "<html" in response.text
