"""Model-based test of issue / repeat / redeem / block sequences, and their reversals,
against a plain-Python model of the rules (SPEC §1-2), on both backends."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from promocodes.codes import issuance, redemption
from promocodes.codes import service as groups
from promocodes.codes.models import Code, Issuance
from promocodes.codes.schemas import GroupUpdate
from promocodes.customers import service as customers
from promocodes.customers.models import Customer
from promocodes.db import Database
from promocodes.errors import (
    CodeAlreadyRedeemed,
    CodeBlocked,
    CodeNotIssued,
    CodeNotRedeemed,
    Conflict,
    GroupExhausted,
    IdempotencyKeyReused,
    WrongOrder,
)
from tests.conftest import reset
from tests.factories import assert_counters_exact, group_with_codes, make_customer

GROUPS = {"A": [f"A{i}" for i in range(5)], "B": [f"B{i}" for i in range(3)]}
# Group B is printed on flyers: its codes may be redeemed without being issued.
FLYERS = {"B"}
PEOPLE = ["ann", "bob", "cid"]
KEYS = [f"k{i}" for i in range(6)]
ORDERS = [None, "o1", "o2"]


@dataclass
class Rules:
    """What the product must do, with none of its machinery."""

    status: dict[str, str] = field(default_factory=dict)
    initial: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # (key, g)
    repeat: dict[tuple[str, str], tuple[str, str | None]] = field(default_factory=dict)
    holders: dict[str, list[str]] = field(default_factory=dict)  # code -> customers (initial)
    last: dict[tuple[str, str], str] = field(default_factory=dict)  # (customer, g) -> code
    order: dict[str, str | None] = field(default_factory=dict)
    redeemer: dict[str, str | None] = field(default_factory=dict)  # as the redeem named
    records: int = 0

    def retry(self, code: str, order: str | None, who: str | None) -> bool:
        """A redeem of a redeemed code is the same checkout retried: the same order, and
        no other customer than the redemption named (none names no other)."""
        return (
            order is not None
            and self.order[code] == order
            and (who is None or who == self.redeemer[code])
        )


def machine_for(db: Database) -> type[RuleBasedStateMachine]:
    class Issuing(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            reset(db)
            self.gid = {g: group_with_codes(db, g, codes) for g, codes in GROUPS.items()}
            with db.write() as s:
                for g in FLYERS:
                    groups.update_group(s, self.gid[g], GroupUpdate(redeem_unissued=True))
                for p in PEOPLE:
                    make_customer(s, p)
            self.m = Rules(status={c: "available" for cs in GROUPS.values() for c in cs})

        def _customer(self, s: Session, name: str) -> Customer:
            return customers.get(s, name)

        @rule(
            g=st.sampled_from(list(GROUPS)), who=st.sampled_from(PEOPLE), key=st.sampled_from(KEYS)
        )
        def issue_initial(self, g: str, who: str, key: str) -> None:
            expected = self.m.initial.get((key, g))
            try:
                with db.write() as s:
                    got = issuance.issue_initial(
                        s, self._customer(s, who), self.gid[g], key=key, source="api"
                    ).code
            except IdempotencyKeyReused:
                assert expected is not None and expected[0] != who
                return
            except GroupExhausted:
                assert expected is None
                assert not [c for c in GROUPS[g] if self.m.status[c] == "available"]
                return
            if expected is not None:
                assert (who, got) == expected
                return
            first_free = next(c for c in GROUPS[g] if self.m.status[c] == "available")
            assert got == first_free
            self.m.status[got] = "issued"
            self.m.initial[(key, g)] = (who, got)
            self.m.holders.setdefault(got, []).append(who)
            self.m.last[(who, g)] = got
            self.m.records += 1

        @rule(
            g=st.sampled_from(list(GROUPS)), who=st.sampled_from(PEOPLE), key=st.sampled_from(KEYS)
        )
        def issue_repeat(self, g: str, who: str, key: str) -> None:
            expected = self.m.repeat.get((key, g))
            try:
                with db.write() as s:
                    got = issuance.issue_repeat(
                        s, self._customer(s, who), self.gid[g], key=key, source="api"
                    ).code
            except IdempotencyKeyReused:
                assert expected is not None and expected[0] != who
                return
            if expected is not None:
                assert (who, got) == expected
                return
            last = self.m.last.get((who, g))
            # The customer's last code, unless it was blocked since: never shown again.
            assert got == (None if last is None or self.m.status[last] == "blocked" else last)
            if got is not None:
                self.m.repeat[(key, g)] = (who, got)
                self.m.records += 1

        @rule(
            code=st.sampled_from([c for cs in GROUPS.values() for c in cs]),
            order=st.sampled_from(ORDERS),
            who=st.sampled_from([None, *PEOPLE]),
        )
        def redeem(self, code: str, order: str | None, who: str | None) -> None:
            status = self.m.status[code]
            try:
                with db.write() as s:
                    customer = self._customer(s, who) if who else None
                    redemption.redeem(s, code, customer=customer, order_id=order)
            except CodeAlreadyRedeemed:
                assert status == "redeemed" and not self.m.retry(code, order, who)
                return
            except CodeBlocked:
                assert status == "blocked"
                return
            except CodeNotIssued:
                not_theirs = who is not None and who not in self.m.holders.get(code, [])
                assert not_theirs or (status == "available" and code[0] not in FLYERS)
                return
            if status == "redeemed":
                assert self.m.retry(code, order, who)
                return
            assert status == "issued" or (status == "available" and code[0] in FLYERS)
            assert who is None or who in self.m.holders.get(code, [])
            self.m.status[code] = "redeemed"
            self.m.order[code] = order
            self.m.redeemer[code] = who

        @rule(code=st.sampled_from([c for cs in GROUPS.values() for c in cs]))
        def block(self, code: str) -> None:
            status = self.m.status[code]
            try:
                with db.write() as s:
                    redemption.block(s, code)
            except Conflict:
                assert status == "redeemed"
                return
            self.m.status[code] = "blocked"

        @rule(
            code=st.sampled_from([c for cs in GROUPS.values() for c in cs]),
            order=st.sampled_from(ORDERS),
        )
        def unredeem(self, code: str, order: str | None) -> None:
            status = self.m.status[code]
            try:
                with db.write() as s:
                    back = redemption.unredeem(s, code, order_id=order)
            except CodeNotRedeemed:
                assert status != "redeemed"
                return
            except WrongOrder:
                assert status == "redeemed" and self.m.order[code] != order
                return
            assert status == "redeemed" and self.m.order.pop(code) == order
            # Back to whoever holds it, else to the group's stock.
            assert back == ("issued" if self.m.holders.get(code) else "available")
            self.m.status[code] = back

        @rule(code=st.sampled_from([c for cs in GROUPS.values() for c in cs]))
        def unblock(self, code: str) -> None:
            status = self.m.status[code]
            with db.write() as s:
                previous, now = redemption.unblock(s, code)
            assert previous == status
            if status == "blocked":
                assert now == ("issued" if self.m.holders.get(code) else "available")
            else:
                assert now == status  # not blocked: nothing changes
            self.m.status[code] = now

        @invariant()
        def database_matches_the_rules(self) -> None:
            with db.read() as s:
                rows = {c: st for c, st in s.execute(select(Code.code, Code.status))}
                records = s.scalar(select(func.count()).select_from(Issuance))
            assert rows == self.m.status
            assert records == self.m.records
            assert_counters_exact(db, *self.gid.values())

    return Issuing


@pytest.mark.slow
def test_issue_repeat_redeem_block_follow_the_rules(db: Database) -> None:
    run_state_machine_as_test(
        machine_for(db),
        settings=settings(
            max_examples=25,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
