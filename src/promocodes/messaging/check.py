"""Before a mailing is sent: does each group cover it, and what would the messages be?

The check renders the template, with preview semantics (placeholder codes, nothing
issued), for a sample of up to ``SAMPLE`` recipients spread over the segment. That says
which share of the recipients draws a code from each group (a code inside an
``{% if %}`` is drawn only by those who take the branch) and which recipients would be
skipped, and why. Each group must then cover the segment's size times that share: an
estimate when the sample is not the whole segment, and the check says so.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from promocodes.codes import issuance
from promocodes.codes import service as codes
from promocodes.codes.models import CodeGroup, name_key
from promocodes.codes.service import benefit_texts, live_groups
from promocodes.messaging.models import Mailing
from promocodes.messaging.rendering import MessageTemplate, RenderSkip, preview
from promocodes.messaging.templates import client_of, require_valid
from promocodes.models import utcnow
from promocodes.segments import service as segments

SAMPLE = 200


@dataclass(frozen=True, slots=True)
class GroupCheck:
    """One group the template draws new codes from: how many it must cover (the
    segment times the sample's share, rounded up), how many it has."""

    group_id: int
    name: str
    needed: int
    active: int  # usable at send time: not blocked, not expired, the group open
    drawing: int  # of the sample
    closed: str | None = None  # why the group can give no code at all now

    @property
    def enough(self) -> bool:
        return self.active >= self.needed


@dataclass
class Check:
    recipients: int  # the segment's size now
    sample: int  # recipients rendered
    groups: list[GroupCheck] = field(default_factory=list)
    # (reason, detail) -> recipients of the sample that would be skipped
    skipped: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def estimated(self) -> bool:
        """Whether the figures come from part of the segment."""
        return self.sample < self.recipients

    @property
    def short(self) -> list[GroupCheck]:
        return [g for g in self.groups if not g.enough]


def check(session: Session, mailing: Mailing) -> Check:
    """The stock check and dry run of a mailing not sent yet."""
    template = MessageTemplate(mailing.subject, mailing.body_text, mailing.body_html)
    validation = require_valid(session, template)
    segment = segments.get(session, mailing.segment_id)
    recipients = segments.count(session, segments.tree_of(segment))
    sample = segments.spread_sample(session, segment, recipients, SAMPLE)
    live = live_groups(session)
    drawn = _live(live, validation.initial_groups)
    named = _live(live, validation.groups)
    holders = issuance.holders_of_last(session, [g.id for g in named], [c.id for c in sample])
    result = Check(recipients=recipients, sample=len(sample))
    drawing: Counter[str] = Counter()
    benefits = benefit_texts(session)
    for customer in sample:
        last = {g.name_key for g in named if customer.id in holders[g.id]}
        try:
            rendered = preview(template, client_of(customer), last=last, benefits=benefits)
        except RenderSkip as skip:
            result.skipped[skip.reason, skip.summary] += 1
            continue
        except Exception as exc:  # bad data of this recipient: their message would fail
            result.skipped["failed", f"{type(exc).__name__}: {exc}"[:500]] += 1
            continue
        drawing.update(name_key(n) for n in rendered.drawn)
    usable = codes.usable(session, drawn, utcnow())
    result.groups = [_group(g, drawing[g.name_key], result, usable[g.id]) for g in drawn]
    return result


def _live(live: dict[str, CodeGroup], names: list[str]) -> list[CodeGroup]:
    """The live groups of these names, once each, in order."""
    keys = dict.fromkeys(name_key(n) for n in names)
    return [live[k] for k in keys if k in live]


def _group(group: CodeGroup, drawing: int, result: Check, usable: codes.Usable) -> GroupCheck:
    # The sample's share of the whole segment, rounded up; exact when it is the segment.
    estimate = math.ceil(result.recipients * drawing / result.sample) if result.sample else 0
    needed = estimate if result.estimated else drawing
    return GroupCheck(group.id, group.name, needed, usable.count, drawing, usable.closed)
