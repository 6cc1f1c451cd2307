"""One batch of an upload's codes, written at once, and what the report says of each
line that did not become a new code: a repeat (listed by line), a code already in
another group, or a code whose own date has passed."""

from __future__ import annotations

from datetime import datetime, time
from typing import Literal

from sqlalchemy.orm import Session

from promocodes.codes import code_repository as rows
from promocodes.codes import repository as repo
from promocodes.codes.models import CodeGroup, Upload
from promocodes.codes.report import ConflictOut, DuplicateOut, InvalidLineOut, UploadReport
from promocodes.models import utcnow

Repeat = Literal["in_upload", "in_group"]


class Batcher:
    """Accumulates one batch of parsed codes and writes it, keeping the report."""

    def __init__(
        self, session: Session, group: CodeGroup, upload: Upload, report: UploadReport, limit: int
    ) -> None:
        self.session = session
        self.group = group
        self.group_id = group.id
        self.upload = upload
        self.report = report
        self.limit = limit
        self.now = utcnow()
        # code -> line of its first occurrence in the batch; expiries only where given.
        self.pending: dict[str, int] = {}
        self.expiry: dict[str, datetime] = {}
        # PostgreSQL takes a batch by COPY until one fails on a code that already exists;
        # an upload that overlaps once usually overlaps throughout, so from then on each
        # batch goes straight to INSERT … ON CONFLICT instead of failing a COPY first.
        self.copy = session.connection().dialect.name == "postgresql"

    def add(self, line: int, code: str, valid_until: datetime | None) -> None:
        if valid_until is not None and valid_until <= self.now:
            # A code past its own date could never be issued or redeemed: a marketer
            # would only have to withdraw it. It is left out, with a warning line.
            self._expired(line, code, valid_until)
            return
        if code in self.pending:
            self.report.duplicates_in_upload += 1
            self._listed(line, code, "in_upload", self.pending[code])
            return
        self.pending[code] = line
        if valid_until is not None:
            self.expiry[code] = valid_until

    def add_run(self, first_line: int, codes: list[str]) -> None:
        """Consecutive valid lines at once: the same outcome as ``add`` for each."""
        # Built backwards so that, for a code repeated within the run, its first line wins.
        last = first_line + len(codes) - 1
        fresh = dict(zip(reversed(codes), range(last, first_line - 1, -1), strict=True))
        seen = fresh.keys() & self.pending.keys() if self.pending else set()
        repeated = len(codes) - len(fresh) + len(seen)
        if repeated and len(self.report.duplicates) < self.limit:
            self._list_repeats(first_line, codes)  # only runs with repeats pay for this
        for code in seen:
            del fresh[code]
        self.pending.update(fresh)
        self.report.duplicates_in_upload += repeated

    def _list_repeats(self, first_line: int, codes: list[str]) -> None:
        """The repeated lines of a run (before it joins the batch), in line order."""
        firsts: dict[str, int] = {}
        for line, code in enumerate(codes, start=first_line):
            earlier = self.pending.get(code, firsts.get(code))
            if earlier is None:
                firsts[code] = line
            elif not self._listed(line, code, "in_upload", earlier):
                return

    def _listed(self, line: int, code: str, kind: Repeat, first_line: int | None) -> bool:
        """List a repeated line while the report has room; whether it still has."""
        if len(self.report.duplicates) >= self.limit:
            return False
        self.report.duplicates.append(
            DuplicateOut(line=line, code=code, kind=kind, first_line=first_line)
        )
        return True

    def _expired(self, line: int, code: str, valid_until: datetime) -> None:
        self.report.expired_count += 1
        if len(self.report.expired) < self.limit:
            # A bare date in the file means the end of that day: shown as it was written.
            end_of_day = valid_until.time() == time.max
            when = valid_until.strftime("%Y-%m-%d" if end_of_day else "%Y-%m-%d %H:%M UTC")
            reason = f"expired on {when}: not added, as it could no longer be used"
            self.report.expired.append(InvalidLineOut(line=line, value=code, reason=reason))

    def flush(self) -> None:
        if not self.pending:
            return
        pending, self.pending = self.pending, {}
        expiry, self.expiry = self.expiry, {}
        # Sorted inserts touch the unique index in order: measured 1.6x (SQLite) to 2.6x
        # (PostgreSQL) faster on large tables than random order.
        codes = sorted(pending)
        valid_until = [expiry.get(code) for code in codes] if expiry else None
        if expiry and not self.group.has_code_expiry:
            self.group.has_code_expiry = True
        # Every row this batch inserts gets an id above this: ids only grow, and this
        # transaction sees its own earlier batches. That tells a code inserted just now
        # from one an earlier batch of this same upload inserted.
        before = rows.max_code_id(self.session)
        args = (self.session, self.group_id, self.upload.id, codes, valid_until, self.now)
        inserted = rows.insert_codes(*args, copy=self.copy)
        if inserted is None:
            self.copy = False
            inserted = rows.insert_codes(*args)
            assert inserted is not None
        self.report.added += inserted
        if inserted < len(codes):
            self._classify_skipped(pending, before, inserted)

    def _classify_skipped(self, pending: dict[str, int], before: int, inserted: int) -> None:
        """The slow path, only for batches where some codes already existed."""
        upload_id = self.upload.id
        # Rows inserted just now are ours and newer than ``before``; anything else that
        # matched was there already (a concurrent upload's rows may be newer but are
        # not ours).
        seen = [
            e
            for e in rows.existing_codes(self.session, pending)
            if not (e.id > before and e.upload_id == upload_id)
        ]
        names = repo.group_names(
            self.session, (e.group_id for e in seen if e.group_id != self.group_id)
        )
        for e in seen:
            if e.group_id == self.group_id:
                # A repeat of a line of an earlier batch (which line is no longer known),
                # or a code an earlier upload brought.
                if e.upload_id == upload_id:
                    self.report.duplicates_in_upload += 1
                    self._listed(pending[e.code], e.code, "in_upload", None)
                else:
                    self.report.already_in_group += 1
                    self._listed(pending[e.code], e.code, "in_group", None)
                continue
            self.report.in_other_groups += 1
            if len(self.report.other_groups) < self.limit:
                self.report.other_groups.append(
                    ConflictOut(
                        line=pending[e.code],
                        code=e.code,
                        group_id=e.group_id,
                        group_name=names.get(e.group_id, ""),
                    )
                )
        # A code that conflicted but is gone by now was withdrawn concurrently; it still
        # existed when we tried, so it counts as already present.
        vanished = len(pending) - inserted - len(seen)
        self.report.already_in_group += vanished
        self._unpoint({e.code: pending[e.code] for e in seen if e.upload_id == upload_id})

    def _unpoint(self, repeats: dict[str, int]) -> None:
        """Repeats within this batch were listed as "same as" the batch's first line of
        their code; when that line itself repeats an earlier batch, it is not the first
        occurrence, whose line is no longer known: they say "earlier in this upload"."""
        if not repeats:
            return
        for listed in self.report.duplicates:
            if listed.first_line is not None and repeats.get(listed.code) == listed.first_line:
                listed.first_line = None
