"""Tables of the codes domain: groups, their counter stripes, codes and uploads."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from promocodes.errors import GroupExpired, GroupNotYetValid
from promocodes.models import Base, BigId, UTCDateTime, utcnow

# A code's current status. ``issued_at`` / ``redeemed_at`` keep the history, so a code
# that was issued and then blocked still counts as issued.
AVAILABLE = "available"
ISSUED = "issued"
REDEEMED = "redeemed"
BLOCKED = "blocked"
STATUSES = (AVAILABLE, ISSUED, REDEEMED, BLOCKED)

# An issuance's kind: a new code (initial) or the customer's last one shown again.
INITIAL = "initial"
REPEAT = "repeat"
# The issuances counted as codes sent (redemption analytics): new codes whose message was
# not refused. Also the WHERE of the indexes that find them.
SENT_SQL = "kind = 'initial' AND voided_at IS NULL"

# What a code of a group is worth.
BENEFIT_TYPES = ("percent", "amount", "free_shipping", "gift", "other")
# What an initial issue does for a customer at the group's limit: show their last code
# again (recorded as a repeat), or give nothing (the message is skipped).
SKIP = "skip"
LIMIT_ACTIONS = (REPEAT, SKIP)

# Counter stripes per group: single claims spread their counter updates over this many
# rows so concurrent claimers do not queue on one hot row. A PostgreSQL claim holds its
# stripe until its commit is flushed, so there are more stripes than concurrent claimers
# (32 claimers queued on 8). Part of the schema: every group has exactly this many
# stripes (created with it; migration 0010 added the ones older groups lacked).
COUNTER_STRIPES = 64


def name_key(name: str) -> str:
    """The form group names are compared in, trimmed and case-folded: uniqueness among
    live groups, the group a template macro names and the CLI's GROUP argument."""
    return name.strip().casefold()


class Window(Protocol):
    """A group's validity, as issuing reads it (a ``CodeGroup`` or a lighter row)."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def valid_from(self) -> datetime | None: ...
    @property
    def valid_until(self) -> datetime | None: ...


def closed_at(group: Window, now: datetime) -> GroupExpired | GroupNotYetValid | None:
    """Why no code can be issued from the group at ``now``, or None when it is open:
    codes are issued from ``valid_from`` (included) until ``valid_until`` (excluded).
    The hot claim statements test the same window in SQL: ``LIVE_SQL``."""
    if group.valid_until is not None and now >= group.valid_until:
        return GroupExpired(
            f"group {group.name!r} expired on {group.valid_until:%Y-%m-%d %H:%M UTC}",
            group_id=group.id,
        )
    if group.valid_from is not None and now < group.valid_from:
        return GroupNotYetValid(
            f"group {group.name!r} is valid from {group.valid_from:%Y-%m-%d %H:%M UTC}",
            group_id=group.id,
        )
    return None


# ``closed_at`` in SQL, over a ``code_groups`` row aliased ``g`` and a bound ``:now``.
LIVE_SQL = (
    "(g.valid_from IS NULL OR g.valid_from <= :now) "
    "AND (g.valid_until IS NULL OR g.valid_until > :now)"
)


class CodeGroup(Base):
    __tablename__ = "code_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # casefold(trim(name)): uniqueness among live groups is case-insensitive.
    name_key: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    low_stock_threshold: Mapped[int | None] = mapped_column(Integer)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set once any code with its own expiry is uploaded: only then does a claim look for
    # expiring codes first (an extra index probe every other group is spared).
    has_code_expiry: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Printed flyers are redeemed by whoever holds one: their codes may be redeemed without
    # being issued. Personal codes (the default) must have been issued first.
    redeem_unissued: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Refill: when active codes fall below ``refill_below``, the worker generates
    # ``refill_count`` more from ``refill_pattern``, once per episode. All three or none.
    refill_pattern: Mapped[str | None] = mapped_column(String(64))
    refill_below: Mapped[int | None] = mapped_column(Integer)
    refill_count: Mapped[int | None] = mapped_column(Integer)
    # What a code of the group is worth (``BENEFIT_TYPES``), shown to marketers, returned
    # to checkouts and printed by ``client.benefit('G')``; all None when not described.
    benefit_type: Mapped[str | None] = mapped_column(String(16))
    benefit_value: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    benefit_currency: Mapped[str | None] = mapped_column(String(3))
    benefit_text: Mapped[str | None] = mapped_column(String(200))
    # At most this many standing initial codes per customer (None: no limit), and what a
    # further initial issue does then (``LIMIT_ACTIONS``).
    customer_limit: Mapped[int | None] = mapped_column(Integer)
    limit_action: Mapped[str] = mapped_column(String(8), default=REPEAT, server_default=REPEAT)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index(
            "uq_code_groups_live_name",
            "name_key",
            unique=True,
            sqlite_where=text("archived_at IS NULL"),
            postgresql_where=text("archived_at IS NULL"),
        ),
        # Ids are never reused after a removal (SQLite would reuse the highest rowid):
        # an old id in a client's hands must not start naming another group.
        {"sqlite_autoincrement": True},
    )


class GroupCounter(Base):
    """One stripe of a group's counters; the group's counts are the sum of its stripes.

    Counters change in the same transaction as the rows they count. Bulk work (an upload,
    a withdrawal) updates one stripe once per batch; single claims pick a stripe at random
    so concurrent claimers do not serialise on one row.
    """

    __tablename__ = "group_counters"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("code_groups.id", ondelete="CASCADE"), primary_key=True
    )
    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    available: Mapped[int] = mapped_column(BigInteger, default=0)
    issued: Mapped[int] = mapped_column(BigInteger, default=0)
    redeemed: Mapped[int] = mapped_column(BigInteger, default=0)
    blocked: Mapped[int] = mapped_column(BigInteger, default=0)


class Upload(Base):
    __tablename__ = "uploads"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("code_groups.id"), index=True)
    source: Mapped[str] = mapped_column(String(16))  # cli | api | web
    actor: Mapped[str | None] = mapped_column(String(200))
    filename: Mapped[str | None] = mapped_column(String(255))
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    added: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicates_in_upload: Mapped[int] = mapped_column(BigInteger, default=0)
    already_in_group: Mapped[int] = mapped_column(BigInteger, default=0)
    in_other_groups: Mapped[int] = mapped_column(BigInteger, default=0)
    invalid_count: Mapped[int] = mapped_column(BigInteger, default=0)
    withdrawn: Mapped[int] = mapped_column(BigInteger, default=0)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # running | done | failed. A large API upload is recorded as running before its
    # (single) transaction starts, so a client can poll it; the codes, the counts and
    # "done" commit together.
    status: Mapped[str] = mapped_column(String(16), default="done", server_default="done")
    error: Mapped[str | None] = mapped_column(Text)
    # The listed problems of the report (JSON): invalid lines and codes of other groups.
    report: Mapped[str | None] = mapped_column(Text)
    # host:pid of the process running a background upload, to tell an interrupted one.
    owner: Mapped[str | None] = mapped_column(String(100))
    # The pattern of generated codes (``codes/generation.py``); null for a file or a list.
    pattern: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def expired_count(self) -> int:
        """Codes past their own date, not added: the one count kept in ``report`` (whose
        JSON starts with it), read without parsing lists of a thousand lines per row."""
        found = _EXPIRED_COUNT.match(self.report or "")
        return int(found.group(1)) if found else 0


# The start of an upload's report JSON (``uploads.settle`` writes it in field order).
_EXPIRED_COUNT = re.compile(r'\{"expired_count":([0-9]+)')


class Code(Base):
    __tablename__ = "codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Exact, case-sensitive, platform-wide uniqueness; "C" collation on PostgreSQL makes
    # the unique index byte-ordered (cheaper to maintain than a locale collation).
    code: Mapped[str] = mapped_column(
        String(64).with_variant(String(64, collation="C"), "postgresql"), unique=True
    )
    # No foreign keys on these two: a key is checked by a trigger per inserted row, which
    # on PostgreSQL cost more than the whole COPY of the row (docs/performance.md). The
    # rows they point at are held by locks instead: an upload takes the group FOR KEY
    # SHARE, and removing a group locks it FOR UPDATE before deleting its codes and
    # uploads (codes/repository.py), so no code outlives its group or upload.
    group_id: Mapped[int] = mapped_column(Integer)
    upload_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=AVAILABLE)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    blocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("status IN ('available', 'issued', 'redeemed', 'blocked')", name="status"),
        # One index serves claiming (available codes of a group, earliest expiry first,
        # then upload order), listing/exporting a group's codes by status, and withdraw.
        # Every extra index on this table slows uploads, so there is deliberately no other.
        Index("ix_codes_group_status", "group_id", "status", "valid_until", "id"),
    )


class Issuance(Base):
    """A customer was given a code. ``(key, group_id, kind)`` is the business key: the
    message id (or an API idempotency key) makes issuing exactly-once per message."""

    __tablename__ = "issuances"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    group_id: Mapped[int] = mapped_column(ForeignKey("code_groups.id"))
    kind: Mapped[str] = mapped_column(String(8))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    code_id: Mapped[int] = mapped_column(ForeignKey("codes.id"))
    source: Mapped[str] = mapped_column(String(16))  # api | mailing | campaign
    source_ref: Mapped[str | None] = mapped_column(String(200))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set when the message carrying the code was refused before anyone could see it; the
    # code went back to the group and the record stays as history.
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("key", "group_id", "kind", name="uq_issuances_key"),
        CheckConstraint("kind IN ('initial', 'repeat')", name="kind"),
        # The profile history and "last initial code from this group" both start here.
        Index("ix_issuances_customer", "customer_id", "group_id", "kind", "id"),
        Index("ix_issuances_code", "code_id"),
        # Redemption analytics: the codes a mailing or campaign (source, source_ref) or a
        # group sent, read from the index alone (docs/marketers.md, "Did it work?").
        Index(
            "ix_issuances_sent_by_source",
            "source",
            "source_ref",
            "code_id",
            "issued_at",
            sqlite_where=text(SENT_SQL),
            postgresql_where=text(SENT_SQL),
        ),
        Index(
            "ix_issuances_sent_by_group",
            "group_id",
            "code_id",
            "issued_at",
            sqlite_where=text(SENT_SQL),
            postgresql_where=text(SENT_SQL),
        ),
    )


class Redemption(Base):
    """At most one per code: the primary key makes a second redemption impossible."""

    __tablename__ = "redemptions"

    code_id: Mapped[int] = mapped_column(ForeignKey("codes.id"), primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    order_id: Mapped[str | None] = mapped_column(String(200))
    redeemed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AlertState(Base):
    """A stock condition that holds for a group right now (so it is alerted once)."""

    __tablename__ = "group_alert_state"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("code_groups.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime)


class Alert(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("code_groups.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))  # low-stock | exhausted | expiring-soon
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Someone saw it on the alerts page (their email): it no longer asks for attention.
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(320))
