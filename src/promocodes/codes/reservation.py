"""Codes for a batch of messages (a mailing chunk): reserved in bulk, taken one per
message, recorded together.

The first time a message of the batch uses a group, the batch reserves as many of its
codes as it has recipients, in one statement; they are marked issued inside the caller's
transaction, so nobody else ever sees them. Each message takes its codes from the
reservation while its template renders (a code leaves only when the branch that uses it
renders); a message that is not sent gives its codes back, to the front of the line.
``finish`` records the sent messages' issuances in one statement, returns the codes
nobody took and bumps each group's counters once. It all commits with the chunk or not
at all: a worker that dies mid-chunk leaves nothing behind.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from promocodes.codes import batch_repository as batch
from promocodes.codes import repository as repo
from promocodes.codes.issuance import GroupsByName, limit_reached
from promocodes.codes.models import INITIAL, REPEAT, CodeGroup
from promocodes.errors import GroupExhausted

# (group id, code id, code) of a code a message holds.
Held = tuple[int, int, str]


class Reservation:
    """The codes of one batch of messages to ``customer_ids``, at ``now``."""

    def __init__(
        self,
        session: Session,
        customer_ids: Sequence[int],
        *,
        source: str,
        source_ref: str | None,
        now: datetime,
    ) -> None:
        self.groups = GroupsByName(session, now)
        self._session = session
        self._customer_ids = customer_ids
        self._source = source
        self._ref = source_ref
        self._now = now
        self._time = batch.bind_time(session, now)
        self._pools: dict[int, deque[tuple[int, str]]] = {}
        self._last: dict[int, dict[int, tuple[int, str]]] = {}
        self._rows: list[batch.IssuanceRow] = []
        # group id -> customer id -> initial codes held, for groups with a limit.
        self._held: dict[int, Counter[int]] = {}
        self._used: Counter[int] = Counter()

    def message(self, key: str, customer_id: int) -> ReservedCodes:
        """The codes of the message ``key`` to the customer (a ``MessageCodes``)."""
        return ReservedCodes(self, key, customer_id)

    def take(self, group: CodeGroup) -> tuple[int, str]:
        pool = self._pools.get(group.id)
        if pool is None:
            taken = batch.reserve(
                self._session,
                group.id,
                len(self._customer_ids),
                expiring=group.has_code_expiry,
                now=self._now,
            )
            pool = self._pools[group.id] = deque(taken)
        if not pool:
            raise GroupExhausted(f"group {group.name!r} has no codes left", group_id=group.id)
        return pool.popleft()

    def give_back(self, held: list[Held]) -> None:
        for group_id, code_id, code in reversed(held):
            self._pools[group_id].appendleft((code_id, code))

    def last_initial(self, group: CodeGroup, customer_id: int) -> tuple[int, str] | None:
        """The customer's latest standing initial code from the group (read for the
        whole batch on first use)."""
        if group.id not in self._last:
            self._last[group.id] = batch.last_initials(self._session, group.id, self._customer_ids)
        return self._last[group.id].get(customer_id)

    def at_limit(self, group: CodeGroup, customer_id: int) -> bool:
        """Whether the customer holds the group's limit of initial codes (counted for
        the whole batch on first use, their rows locked until the batch commits)."""
        if group.customer_limit is None:
            return False
        if group.id not in self._held:
            counted = batch.standing_initials(self._session, group.id, self._customer_ids)
            self._held[group.id] = Counter(counted)
        return self._held[group.id][customer_id] >= group.customer_limit

    def keep(self, key: str, customer_id: int, initial: list[Held], repeat: list[Held]) -> None:
        for group_id, code_id, _ in initial:
            if group_id in self._held:
                self._held[group_id][customer_id] += 1
            self._rows.append(
                (key, group_id, INITIAL, customer_id, code_id, self._source, self._ref, self._time)
            )
            self._used[group_id] += 1
        for group_id, code_id, _ in repeat:
            self._rows.append(
                (key, group_id, REPEAT, customer_id, code_id, self._source, self._ref, self._time)
            )

    def finish(self) -> None:
        """Record the kept messages' issuances, return what nobody took, count once."""
        batch.insert_issuances(self._session, self._rows)
        for group_id, pool in self._pools.items():
            if pool:
                batch.release(self._session, [code_id for code_id, _ in pool])
            if used := self._used[group_id]:
                repo.bump_counters(self._session, group_id, available=-used, issued=used)


class ReservedCodes:
    """One message's codes from a reservation: what it took, until it is kept (sent) or
    given back (not sent)."""

    __slots__ = ("_customer_id", "_initial", "_key", "_repeat", "_reservation")

    def __init__(self, reservation: Reservation, key: str, customer_id: int) -> None:
        self._reservation = reservation
        self._key = key
        self._customer_id = customer_id
        self._initial: list[Held] = []
        self._repeat: list[Held] = []

    def initial(self, group_name: str) -> str:
        group = self._reservation.groups.open(group_name)
        if self._reservation.at_limit(group, self._customer_id):
            return self._at_limit(group)
        code_id, code = self._reservation.take(group)
        self._initial.append((group.id, code_id, code))
        return code

    def _at_limit(self, group: CodeGroup) -> str:
        """The customer's last code again (a repeat) when the group says so and there
        is one; else the message is skipped (CustomerLimitReached)."""
        found = None
        if group.limit_action == REPEAT:
            found = self._reservation.last_initial(group, self._customer_id)
        if found is None:
            raise limit_reached(group.name, group.customer_limit, None)
        self._repeat.append((group.id, *found))
        return found[1]

    def repeat(self, group_name: str) -> str | None:
        group = self._reservation.groups.open(group_name)
        found = self._reservation.last_initial(group, self._customer_id)
        if found is None:
            return None
        self._repeat.append((group.id, *found))
        return found[1]

    def benefit(self, group_name: str) -> str:
        return self._reservation.groups.benefit(group_name)

    def keep(self) -> None:
        """The message is sent: its codes are issued to the customer."""
        self._reservation.keep(self._key, self._customer_id, self._initial, self._repeat)

    def give_back(self) -> None:
        """The message is not sent: its new codes return to the reservation."""
        self._reservation.give_back(self._initial)
        self._initial.clear()
        self._repeat.clear()
