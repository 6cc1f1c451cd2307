"""What uses a promo code group: saved segments whose conditions name it, and mailings
not sent yet and live campaigns whose template takes codes from it (or whose segment
names it). Archiving a group lists them first, so nothing is stranded unawares."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from promocodes.codes.models import name_key
from promocodes.customers.schemas import CUSTOMER_FIELDS
from promocodes.messaging import name_repository, repository
from promocodes.messaging.models import Campaign, Mailing
from promocodes.messaging.rendering import MessageTemplate
from promocodes.messaging.validation import validate
from promocodes.segments import service as segments
from promocodes.segments.tree import IssuedCount, IssuedFromGroup, walk


@dataclass
class GroupUsage:
    segments: list[tuple[int, str]] = field(default_factory=list)
    mailings: list[tuple[int, str]] = field(default_factory=list)
    campaigns: list[tuple[int, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.segments or self.mailings or self.campaigns)


def _names_group(item: Mailing | Campaign, key: str) -> bool:
    template = MessageTemplate(item.subject, item.body_text, item.body_html)
    # Validated against no groups at all: every macro's group is reported, by name.
    found = validate(template, known_groups=(), customer_fields=CUSTOMER_FIELDS).groups
    return any(name_key(name) == key for name in found)


def of_group(session: Session, group_id: int, group_name: str) -> GroupUsage:
    usage = GroupUsage()
    using_segments = set()
    for segment in segments.list_segments(session):
        tree = segments.tree_of(segment)
        if any(
            isinstance(node, IssuedCount | IssuedFromGroup) and node.group_id == group_id
            for _, _, node in walk(tree)
        ):
            using_segments.add(segment.id)
            usage.segments.append((segment.id, segment.name))
    key = name_key(group_name)
    for mailing in name_repository.waiting_mailings(session):
        if mailing.segment_id in using_segments or _names_group(mailing, key):
            usage.mailings.append((mailing.id, mailing.name))
    for campaign in repository.live_campaigns(session):
        if _names_group(campaign, key):
            usage.campaigns.append((campaign.id, campaign.name))
    return usage
