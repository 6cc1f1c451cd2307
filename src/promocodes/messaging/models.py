"""Mailings, their frozen recipients and leased chunks, campaigns, and the message outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column

from promocodes.models import Base, BigId, UTCDateTime, utcnow

# Where a message goes: stored only (the outbox), email, or a signed webhook POST.
Channel = Literal["outbox", "smtp", "webhook"]
CHANNELS: tuple[Channel, ...] = get_args(Channel)
MAILING_STATUSES = ("draft", "scheduled", "sending", "sent", "cancelled", "failed")
# A message: queued (waiting for SMTP or the webhook), sent, failed (for good), or
# skipped (not rendered; ``skip_reason`` says why). Outbox messages are sent when stored.
MESSAGE_STATUSES = ("queued", "sent", "failed", "skipped")


class Mailing(Base):
    __tablename__ = "mailings"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id"))
    channel: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    allow_partial: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    chunk_size: Mapped[int] = mapped_column(Integer, default=500)
    total: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MailingRecipient(Base):
    """The recipient list, frozen when sending starts: later segment changes don't move it."""

    __tablename__ = "mailing_recipients"

    mailing_id: Mapped[int] = mapped_column(ForeignKey("mailings.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))


class MailingChunk(Base):
    """A range of recipients, claimed by one worker at a time under a lease. A worker that
    dies loses its lease and another takes the chunk; everything a chunk writes commits in
    one transaction with ``status = 'done'``, so a retried chunk starts from nothing."""

    __tablename__ = "mailing_chunks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailing_id: Mapped[int] = mapped_column(ForeignKey("mailings.id"))
    first_seq: Mapped[int] = mapped_column(Integer)
    last_seq: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|running|done
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # 0 for the mailing's first send, n for its n-th resend of failed recipients.
    round: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rendered: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    skipped_reasons: Mapped[str | None] = mapped_column(Text)  # JSON {reason: count}
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_mailing_chunks_claim", "status", "mailing_id", "id"),
        Index("ix_mailing_chunks_mailing", "mailing_id", "first_seq"),
    )


class MailingRound(Base):
    """A resend of a mailing's failed recipients: they are appended to its recipients as
    ``first_seq``..``last_seq`` and sent as round ``round`` (the first send is round 0 and
    has no row)."""

    __tablename__ = "mailing_rounds"

    mailing_id: Mapped[int] = mapped_column(ForeignKey("mailings.id"), primary_key=True)
    round: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_seq: Mapped[int] = mapped_column(Integer)
    last_seq: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WorkerBeat(Base):
    """A running worker and when it last showed it is alive: the chunks and messages a
    worker holds are taken over as soon as its beat is stale, not when their lease ends."""

    __tablename__ = "workers"

    owner: Mapped[str] = mapped_column(String(100), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Campaign(Base):
    """A template bound to an event name: each such event for a customer sends one message."""

    __tablename__ = "campaigns"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    event: Mapped[str] = mapped_column(String(100), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # An event for an unknown customer creates it from the event's ``customer`` body;
    # off, such an event is a 404 (the customer must be upserted first).
    creates_customers: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Set when deleted: a deleted campaign never sends again and leaves every list, but
    # its messages (and the issuances they carry) keep pointing at it.
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Message(Base):
    """One message to one customer: the transactional outbox. ``key`` is the message's
    identity (its issuances use it too, and SMTP's Message-ID is derived from it), so a
    message is created once however often its chunk or event is retried."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    mailing_id: Mapped[int | None] = mapped_column(ForeignKey("mailings.id"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    # queued (waiting for SMTP/webhook) | sent | failed | skipped (not rendered, see reason)
    status: Mapped[str] = mapped_column(String(16))
    skip_reason: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Set when an attempt ended where the receiver may already have the message (a
    # connection lost during SMTP DATA, a webhook timing out after the request went out):
    # such a message keeps its codes even when it finally fails, so no code can reach two.
    maybe_delivered: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    round: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_messages_delivery", "status", "next_attempt_at"),
        # Report counts by status, and the outbox pages in id order (messaging/outbox.py).
        Index("ix_messages_mailing", "mailing_id", "status", "id"),
        Index("ix_messages_campaign", "campaign_id", "status", "id"),
        # A resend's figures (rare, small): the first send's are the rest.
        Index(
            "ix_messages_resent",
            "mailing_id",
            "round",
            "status",
            sqlite_where=text("round > 0"),
            postgresql_where=text("round > 0"),
        ),
        Index("ix_messages_customer", "customer_id"),
    )
