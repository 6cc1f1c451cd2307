"""Saved segments, and the index segment filters need on ``issuances``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from promocodes.codes.models import Issuance
from promocodes.models import Base, UTCDateTime, utcnow

MAX_SEGMENT_NAME = 200


class Segment(Base):
    """A named filter tree. ``filter`` is the tree's JSON (see ``tree.py``); the members
    are never stored, they are computed by one query whenever asked for."""

    __tablename__ = "segments"
    __table_args__ = (
        # Exactly unique (after trimming) among live segments: two segments with one name
        # could not be told apart. An archived one's name is free again.
        Index(
            "uq_segments_live_name",
            "name",
            unique=True,
            sqlite_where=text("archived_at IS NULL"),
            postgresql_where=text("archived_at IS NULL"),
        ),
        # Ids are never reused (a deleted segment's id must not start naming another one).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_SEGMENT_NAME))
    filter: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Set when a segment a mailing used is deleted: hidden everywhere but on the reports of
    # those mailings (segments/service.delete).
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# Segment filters read live (not voided) issuances and group them by customer. Two partial
# indexes hold exactly those rows with every column a filter tests, so both backends
# answer from an index alone (SQLite: covering index; PostgreSQL: index-only scan):
# - by group, for filters naming a group (a range scan of that group's rows);
# - by customer, for filters on any group: grouping streams in index order instead of
#   hashing or sorting millions of rows (at 1M customers / 3M issuances it took the
#   "any group" counts from 7-8 s to about 1 s on SQLite, from 2.5 s to 1 s on PostgreSQL).
# They live on the codes domain's table but exist for segments, so they are declared here
# (attached to ``issuances`` all the same); migration 0004_segments creates them.
_LIVE = text("voided_at IS NULL")
_issuances = Issuance.__table__.c
ix_issuances_segments_group = Index(
    "ix_issuances_segments_group",
    _issuances.group_id,
    _issuances.customer_id,
    _issuances.kind,
    _issuances.issued_at,
    sqlite_where=_LIVE,
    postgresql_where=_LIVE,
)
ix_issuances_segments_customer = Index(
    "ix_issuances_segments_customer",
    _issuances.customer_id,
    _issuances.kind,
    _issuances.issued_at,
    _issuances.group_id,
    sqlite_where=_LIVE,
    postgresql_where=_LIVE,
)
