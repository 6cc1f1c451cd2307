"""Redeeming a file of codes (a shop's or a till's export) in one transaction.

Set-based, batch by batch: one SELECT of the batch's codes (and one of their holders
when lines name customers), the decision for every line in Python (the common line, a
code its group lets any line redeem and no customer named, without a call), one
conditional UPDATE, one INSERT of the redemptions (one statement with the UPDATE on
PostgreSQL), and each group's counters bumped once. The
UPDATE changes a code only if its status is still the one read, so a concurrent single
redeem, block or claim cannot be counted twice: the line that loses is reported.

Idempotent by order id, by the single redeem's rule (``redemption.repeat_of``): a line
whose code is already redeemed by the same order changes nothing and counts as
``already`` (running the same file again changes nothing), unless it names another
customer than the redemption was for: that line is refused, as the single redeem
answers 409.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable

from sqlalchemy.orm import Session

from promocodes.audit.service import SYSTEM, Actor, Target, record
from promocodes.codes import redemption_repository as bulk
from promocodes.codes import repository as repo
from promocodes.codes.models import AVAILABLE, BLOCKED, ISSUED, REDEEMED
from promocodes.codes.redemption import ANOTHER, RETRY, repeat_of
from promocodes.codes.redemption_file import BadLine, Item, RedeemLine, RedemptionReader
from promocodes.codes.schemas import RedemptionReport, RejectedLineOut
from promocodes.errors import ValidationFailed
from promocodes.models import utcnow

# 20,000: each batch's UPDATE touches pages all over the codes table, and with 5,000 a
# batch SQLite read and rewrote them twenty times (its page cache is 2 MB): 0.55 s of the
# UPDATEs' 100,000 lines against 0.35 s. A batch's lines stay a few megabytes.
DEFAULT_BATCH = 20_000
DEFAULT_REPORT_LIMIT = 1_000
Progress = Callable[[RedemptionReport], None]

UNKNOWN = "unknown code"
BLOCKED_REASON = "blocked"
NOT_ISSUED = "not issued (its group only redeems codes that were issued)"
NOT_THEIRS = "issued to another customer"
NOT_ISSUED_TO = "not issued to this customer"
NO_ORDER = "bad line: no order id"
FOR_ANOTHER = "already redeemed by this order, for another customer"
RACED = "changed while redeeming (redeemed or blocked at the same moment); send it again"


class _Run:
    """One file's redemption: the report, and the codes this run redeemed so far (to
    tell a code repeated in the file with another order from one redeemed earlier)."""

    def __init__(self, session: Session, report: RedemptionReport, limit: int) -> None:
        self.session = session
        self.report = report
        self.limit = limit
        self.now = utcnow()
        self.ours: list[array[int]] = []  # sorted code ids, one array per batch
        # The batch's redeemed codes: whom each was redeemed for (only when lines name
        # customers: a line without one is its order's retry whoever it was for).
        self.redeemers: dict[int, str | None] = {}

    def reject(self, line: int, code: str, reason: str) -> None:
        self.report.rejected += 1
        if len(self.report.rejected_lines) < self.limit:
            self.report.rejected_lines.append(RejectedLineOut(line=line, code=code, reason=reason))

    def redeemed_here(self, code_id: int) -> bool:
        for ids in self.ours:
            at = bisect_left(ids, code_id)
            if at < len(ids) and ids[at] == code_id:
                return True
        return False

    def flush(self, batch: list[RedeemLine]) -> None:
        listed = len(self.report.rejected_lines)
        first: dict[str, RedeemLine] = {}
        repeats: list[RedeemLine] = []
        for item in batch:
            if item.code in first:
                repeats.append(item)
            else:
                first[item.code] = item
        # In index order, as the upload inserts: each statement walks its B-trees forward
        # instead of jumping about the file's order.
        rows = bulk.states(self.session, sorted(first))
        found = {state.code: state for state in rows}
        named = [found[c].id for c in first if c in found] if any_customer(batch) else []
        holders = bulk.holders(self.session, named)
        redeemed = [state.id for state in rows if state.status == REDEEMED] if named else []
        self.redeemers = bulk.redeemers(self.session, redeemed)
        for code in first.keys() - found.keys():
            self.reject(first[code].line, code, UNKNOWN)
        chosen = bulk.Batch()
        for state in rows:  # in code id order
            item = first[state.code]
            status = state.status
            if item.customer_id is None and (
                status == ISSUED or (status == AVAILABLE and state.redeem_unissued)
            ):  # the common line, decided without a call
                chosen.add(state, None, item.order_id, item.redeemed_at)
            elif self._allowed(item, state, holders):
                holder = None if item.customer_id is None else holders[state.id][item.customer_id]
                chosen.add(state, holder, item.order_id, item.redeemed_at)
        changed = bulk.redeem(self.session, chosen, self.now)
        if len(changed) < len(chosen.code_ids):
            code_of = {state.id: state.code for state in rows}
            for code_id in set(chosen.code_ids) - changed:
                self.reject(first[code_of[code_id]].line, code_of[code_id], RACED)
        for item in repeats:
            self._repeat(item, first[item.code], found.get(item.code), changed, holders)
        # Listed in the file's order, whatever order the decisions were taken in.
        self.report.rejected_lines[listed:] = sorted(
            self.report.rejected_lines[listed:], key=lambda rejected: rejected.line
        )
        self._count(chosen, changed)
        # Sorted already: the batch is in code id order.
        self.ours.append(array("q", (i for i in chosen.code_ids if i in changed)))

    def _repeat(
        self,
        item: RedeemLine,
        earlier: RedeemLine,
        state: bulk.CodeState | None,
        changed: set[int],
        holders: dict[int, dict[str, int]],
    ) -> None:
        """A code's second line in the batch. Its first line redeemed it: the same order
        is ``already``, another one a duplicate. Otherwise it is judged on its own."""
        if state is None:
            self.reject(item.line, item.code, UNKNOWN)
        elif state.id in changed:
            # Redeemed by its first line: the single redeem's rule, that line the redemption.
            repeat = repeat_of(
                earlier.order_id, earlier.customer_id, item.order_id, item.customer_id
            )
            if repeat == RETRY:
                self.report.already += 1
            elif repeat == ANOTHER:
                why = f"duplicate code in the file with a different order (line {earlier.line})"
                self.reject(item.line, item.code, why)
            else:
                self.reject(item.line, item.code, f"{FOR_ANOTHER} (line {earlier.line})")
        elif self._chosen(earlier, state, holders):
            self.reject(item.line, item.code, RACED)  # its first line lost a race
        elif self._allowed(item, state, holders):
            # Good on its own, but its code's first line was refused: one line per
            # code a batch, so this one waits for the file to be sent again.
            why = f"duplicate code in the file (line {earlier.line} was refused)"
            self.reject(item.line, item.code, why)

    def _count(self, chosen: bulk.Batch, changed: set[int]) -> None:
        redeemed: Counter[int] = Counter()
        from_stock: Counter[int] = Counter()
        every = len(changed) == len(chosen.code_ids)
        for code_id, group_id, expected in zip(
            chosen.code_ids, chosen.group_ids, chosen.expected, strict=True
        ):
            if every or code_id in changed:
                redeemed[group_id] += 1
                from_stock[group_id] += expected == AVAILABLE
        for group_id, n in redeemed.items():
            # One stripe for the whole file: a long transaction must not hold many.
            repo.bump_counters(
                self.session, group_id, slot=0, redeemed=n, available=-from_stock[group_id]
            )
        self.report.redeemed += len(changed)

    def _chosen(
        self, item: RedeemLine, state: bulk.CodeState, holders: dict[int, dict[str, int]]
    ) -> bool:
        """Whether the line was sent to be redeemed (without counting or reporting it)."""
        return _refusal(item, state, holders, self.redeemers, self.redeemed_here) is None

    def _allowed(
        self, item: RedeemLine, state: bulk.CodeState, holders: dict[int, dict[str, int]]
    ) -> bool:
        """Whether the line may be redeemed; a refused line is reported ("" is a line its
        order already redeemed: counted as ``already``, nothing to say)."""
        why = _refusal(item, state, holders, self.redeemers, self.redeemed_here)
        if why is None:
            return True
        if why:
            self.reject(item.line, item.code, why)
        else:
            self.report.already += 1
        return False


def _refusal(
    item: RedeemLine,
    state: bulk.CodeState,
    holders: dict[int, dict[str, int]],
    redeemers: dict[int, str | None],
    redeemed_here: Callable[[int], bool],
) -> str | None:
    """Why the line cannot be redeemed ("" when its order already did), or None."""
    if state.status == REDEEMED:
        done_for = redeemers.get(state.id)
        repeat = repeat_of(state.order_id, done_for, item.order_id, item.customer_id)
        if repeat == RETRY:
            return ""
        if repeat != ANOTHER:
            return FOR_ANOTHER
        if redeemed_here(state.id):
            return "duplicate code in the file with a different order"
        return f"redeemed by another order ({state.order_id or 'no order id'})"
    if state.status == BLOCKED:
        return BLOCKED_REASON
    if item.customer_id is not None:
        held = holders.get(state.id, {})
        if item.customer_id not in held:
            return NOT_THEIRS if held else NOT_ISSUED_TO
    if state.status == AVAILABLE and not state.redeem_unissued:
        return NOT_ISSUED
    return None


def any_customer(batch: list[RedeemLine]) -> bool:
    return any(item.customer_id is not None for item in batch)


def redeem_file(
    session: Session,
    items: Iterable[Item] | RedemptionReader,
    *,
    order_id: str | None = None,
    filename: str | None = None,
    actor: Actor = SYSTEM,
    batch_size: int = DEFAULT_BATCH,
    report_limit: int = DEFAULT_REPORT_LIMIT,
    progress: Progress | None = None,
) -> RedemptionReport:
    """Redeem every good line of a redemption file in the caller's transaction; the
    report counts the lines redeemed, already redeemed by their order, and refused (the
    first ``report_limit`` listed with their reasons). ``order_id`` stands for lines
    that give none (a file of codes alone needs it)."""
    report = RedemptionReport()
    run = _Run(session, report, report_limit)
    batch: list[RedeemLine] = []
    for item in items:
        if isinstance(items, RedemptionReader) and items.shape == "text" and order_id is None:
            raise ValidationFailed("order_id: a file of codes alone needs the order id they go to")
        report.received += 1
        if isinstance(item, BadLine):
            run.reject(item.line, item.value, item.reason)
            continue
        if item.order_id is None:
            if order_id is None:
                run.reject(item.line, item.code, NO_ORDER)
                continue
            item = RedeemLine(item.line, item.code, order_id, item.redeemed_at, item.customer_id)
        batch.append(item)
        if len(batch) >= batch_size:
            run.flush(batch)
            batch = []
            if progress:
                progress(report)
    run.flush(batch)
    if report.redeemed:  # a re-run that changes nothing records nothing
        details = report.model_dump(exclude={"rejected_lines"})
        record(session, actor, "codes.redeemed", Target("redemptions", None, filename), details)
    if progress:
        progress(report)
    return report
