"""Customers: the searchable list, the profile with its Promo codes tab, and erasure."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response

from promocodes import erasure
from promocodes.apikeys import service as apikeys
from promocodes.codes import lookup
from promocodes.customers import service as customers
from promocodes.customers.schemas import CustomerOut
from promocodes.messaging import names
from promocodes.pagination import decode_cursor, encode_cursor
from promocodes.segments import service as segments
from promocodes.segments.tree import parse_filter
from promocodes.web import kit
from promocodes.web.audit import UiActor
from promocodes.web.kit import Db, Form, User

router = APIRouter(route_class=kit.UiRoute, include_in_schema=False)

PAGE = 50
HISTORY_PAGE = 100
SEARCHED_FIELDS = ("email", "first_name", "last_name", "phone")


def _search_tree(text: str) -> Any:
    """Customers whose email, name or phone contains each word of ``text``, in any case
    ("greta richter": "greta" in the first name, "richter" in the last) — evaluated by
    the segments service as one query (the customers service has no text search of its
    own)."""
    words = text.split()[:8] or [text]
    return parse_filter(
        {
            "type": "and",
            "filters": [
                {
                    "type": "or",
                    "filters": [
                        {
                            "type": "field",
                            "field": name,
                            "op": "contains",
                            "value": word,
                            "ignore_case": True,
                        }
                        for name in SEARCHED_FIELDS
                    ],
                }
                for word in words
            ],
        }
    )


@router.get("/customers")
def list_customers(
    request: Request, user: User, db: Db, q: str = "", after: str | None = None
) -> Response:
    search = q.strip()[:200]
    exact: CustomerOut | None = None
    with db.read() as s:
        if search:
            try:
                exact = customers.to_out(customers.get(s, search))
            except customers.CustomerNotFound:
                exact = None
            found, next_cursor = segments.customers_page(
                s, _search_tree(search), cursor=after, limit=PAGE
            )
        else:
            found, next_cursor = customers.list_page(s, cursor=after, limit=PAGE)
    if exact is not None and after is None:
        found = [exact, *(c for c in found if c.customer_id != exact.customer_id)]
    return kit.page(
        request,
        "customers/list.html",
        {
            "section": "customers",
            "customers": found,
            "q": search,
            "after": after,
            "next_cursor": next_cursor,
        },
    )


# Erasure lives outside /customers/… so that no customer id (which may hold a slash)
# can be read as another customer's erase page.
@router.get("/customer-erasure/{customer_id:path}")
def confirm_erase(request: Request, customer_id: str, user: User, db: Db) -> Response:
    with db.read() as s:
        out = customers.to_out(customers.get(s, customer_id))
    return kit.page(request, "customers/erase.html", {"section": "customers", "customer": out})


@router.post("/customer-erasure/{customer_id:path}")
def erase(request: Request, customer_id: str, actor: UiActor, form: Form, db: Db) -> Response:
    with db.write() as s:
        done = erasure.erase(s, customer_id, actor=actor)
    note = "was already erased" if done.already else "erased; their history stays under it"
    return kit.redirect(
        request, f"/customers/{quote(done.customer_id)}", flash=f"{done.customer_id}: {note}."
    )


@router.get("/customers/{customer_id:path}")
def profile(
    request: Request, customer_id: str, user: User, db: Db, before: str | None = None
) -> Response:
    with db.read() as s:
        customer = customers.get(s, customer_id)
        out = customers.to_out(customer)
        rows = lookup.customer_history(
            s, customer, before_id=decode_cursor(before), limit=HISTORY_PAGE + 1
        )
        more = len(rows) > HISTORY_PAGE
        rows = rows[:HISTORY_PAGE]
        # The history keeps a mailing's or a campaign's id; the page shows its name.
        source_names = {
            kind: read(s, [r.source_ref for r in rows if r.source == kind])
            for kind, read in (("mailing", names.mailings), ("campaign", names.campaigns))
        }
        if any(r.source == "api" for r in rows):  # "api-key:3" is said as the key's name
            source_names["api"] = {f"api-key:{k.id}": k.name for k in apikeys.list_keys(s)}
    return kit.page(
        request,
        "customers/profile.html",
        {
            "section": "customers",
            "customer": out,
            "erased": customer.erased_at is not None,
            "history": rows,
            "source_names": source_names,
            "before": before,
            "next_cursor": encode_cursor(rows[-1].issuance_id) if more else None,
        },
    )
