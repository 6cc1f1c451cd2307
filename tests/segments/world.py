"""Put reference people and issuances into a test database, and ask it for members."""

from __future__ import annotations

from typing import Any

from tests.factories import make_group
from tests.segments.reference import Given, Person, evaluate

from promocodes.codes.models import ISSUED, REDEEMED, Code, Issuance
from promocodes.customers.models import Customer
from promocodes.db import Database
from promocodes.segments import service
from promocodes.segments.tree import Filter, parse_filter


def make_groups(db: Database, *names: str) -> list[int]:
    with db.write() as s:
        return [make_group(s, name).id for name in names]


def build(db: Database, people: list[Person], issuances: list[Given]) -> None:
    """Direct inserts (each issuance with a code of its own, redeemed or not): the
    shortest way to any history, including ones the issuing rules would not produce."""
    with db.write() as s:
        ids: dict[str, int] = {}
        for p in people:
            customer = Customer(
                external_id=p.external_id,
                email=p.email,
                phone=p.phone,
                first_name=p.first_name,
                last_name=p.last_name,
                attributes=p.attributes,
                created_at=p.created_at,
                updated_at=p.created_at,
            )
            s.add(customer)
            s.flush()
            ids[p.external_id] = customer.id
        for n, given in enumerate(issuances):
            code = Code(
                code=f"CODE-{n}",
                group_id=given.group_id,
                status=REDEEMED if given.redeemed else ISSUED,
                issued_at=given.issued_at,
                redeemed_at=given.issued_at if given.redeemed else None,
            )
            s.add(code)
            s.flush()
            s.add(
                Issuance(
                    key=f"key-{n}",
                    group_id=given.group_id,
                    kind=given.kind,
                    customer_id=ids[given.customer],
                    code_id=code.id,
                    source="api",
                    issued_at=given.issued_at,
                    voided_at=given.issued_at if given.voided else None,
                )
            )
        s.flush()


def members(db: Database, tree: Filter | dict[str, Any]) -> set[str]:
    """External ids of the tree's customers, walking every page (small pages, so paging
    is exercised); the count must agree with the pages."""
    if isinstance(tree, dict):
        tree = parse_filter(tree)
    found: list[str] = []
    cursor = None
    with db.read() as s:
        while True:
            page, cursor = service.customers_page(s, tree, cursor=cursor, limit=3)
            found += [c.customer_id for c in page]
            if cursor is None:
                break
        total = service.count(s, tree)
    assert len(found) == len(set(found)) == total
    return set(found)


def agrees(
    db: Database, tree: Filter | dict[str, Any], people: list[Person], given: list[Given]
) -> set[str]:
    """The members, after checking they equal the reference evaluation."""
    if isinstance(tree, dict):
        tree = parse_filter(tree)
    got = members(db, tree)
    assert got == evaluate(tree, people, given), tree
    return got
