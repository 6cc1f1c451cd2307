"""The message catalogue: the words a marketer reads for the machine's names of things.

Keys of audit details, kinds of actors and targets, and the places a problem points at
(``filters[2].value``) become sentences here, in one module, so every page says the same
thing the same way and a new key reads as words even before it has its own entry.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from promocodes.codes.stock import EXHAUSTED, EXPIRING, LOW_STOCK

# Audit details, segment fields, anything keyed by an identifier.
LABELS: dict[str, str] = {
    "group_id": "Group",
    "group_name": "Group",
    "previous_status": "Status before",
    "duplicates_in_upload": "Repeated in the file",
    "already_in_group": "Already in the group",
    "in_other_groups": "In other groups",
    "invalid_count": "Invalid lines",
    "expired_count": "Past their date (not added)",
    "received": "Lines received",
    "added": "Added",
    "removed": "Removed",
    "source": "From",
    "prefix": "Key starts with",
    "scopes": "Allowed to",
    "role": "Role",
    "api_key": "API key",
    "api": "API",
    "web": "Web",
    "cli": "Command line",
    "system": "System",
    "user": "User",
    "redemptions": "Redemption file",
    "issued_count": "Quantity of issued promo codes",
    "issued_from_group": "Promo codes issued from the group",
    "field": "Customer field",
    "attribute": "Customer attribute",
    "ends_with": "ends with",
    "starts_with": "starts with",
    "not_contains": "does not contain",
    "first_name": "First name",
    "last_name": "Last name",
    "external_id": "Customer id",
    "customer_id": "Customer id",
    "body_text": "Text body",
    "body_html": "HTML body",
    "subject": "Subject",
    "segment_id": "Segment",
    "allow_partial": "Send anyway",
    "valid_from": "Valid from",
    "valid_until": "Valid until",
    "low_stock_threshold": "Low-stock warning at",
    "redeem_unissued": "Redeemable without being issued",
}
_WORDS = re.compile(r"[_.]+")

# Every action the audit log records (each ``record(…)`` call names one), in words.
ACTIONS: dict[str, str] = {
    "alert.acknowledged": "Alert acknowledged",
    "apikey.created": "API key created",
    "apikey.revoked": "API key revoked",
    "code.blocked": "Code blocked",
    "code.looked_up": "Code looked up",
    "code.unblocked": "Code unblocked",
    "code.unredeemed": "Redemption undone",
    "codes.redeemed": "Redemption file applied",
    "customer.erased": "Customer erased",
    "export.codes": "Codes exported",
    "export.customers": "Customers exported",
    "export.messages": "Messages exported",
    "group.archived": "Group archived",
    "group.deleted": "Group deleted",
    "group.refilled": "Group refilled",
    "upload.created": "Codes uploaded",
    "upload.withdrawn": "Upload withdrawn",
    "user.created": "User created",
    "user.deleted": "User deleted",
    "user.password_changed": "Password changed",
    "user.role_changed": "Role changed",
}

# Stock alert kinds, as the alerts page and the audit log both say them.
ALERT_KINDS: dict[str, str] = {
    LOW_STOCK: "Low stock",
    EXHAUSTED: "Out of codes",
    EXPIRING: "Expiring soon",
}

# Delivery channels of mailings and campaigns.
CHANNELS: dict[str, str] = {
    "outbox": "Outbox (stored, exportable)",
    "smtp": "Email (SMTP)",
    "webhook": "Webhook",
}


def label(key: object) -> str:
    """A key in words: its catalogue entry, else the key with spaces for underscores."""
    text = str(key)
    found = LABELS.get(text)
    if found is not None:
        return found
    spaced = _WORDS.sub(" ", text).strip()
    return spaced[:1].upper() + spaced[1:]


def lower(key: object) -> str:
    """``label`` in the middle of a sentence (an acronym like API keeps its case)."""
    text = label(key)
    return text if text[:3].isupper() else text[:1].lower() + text[1:]


def action(name: object) -> str:
    """An audit action in words; one without an entry yet reads as its words."""
    return ACTIONS.get(str(name)) or label(name)


def channel(name: object) -> str:
    return CHANNELS.get(str(name)) or label(name)


def detail(item: object, key: object) -> str:
    """An audit detail's value in words: an alert's kind as the alerts page says it."""
    if key == "kind" and isinstance(item, str) and item in ALERT_KINDS:
        return ALERT_KINDS[item]
    return value(item)


def value(item: object) -> str:
    """A detail's value in words: lists joined, nothing as a dash."""
    if item is None:
        return "—"
    if isinstance(item, bool):
        return "yes" if item else "no"
    if isinstance(item, list | tuple):
        return ", ".join(value(i) for i in item) or "—"
    return str(item)


# --- where a problem is -----------------------------------------------------------------


def place(loc: Sequence[str | int]) -> str:
    """A problem's location as a marketer knows it: ``("filters", 2, "value")`` (a
    segment's third condition) becomes "Condition 3, value"."""
    parts: list[str] = []
    items = list(loc)
    i = 0
    while i < len(items):
        part = items[i]
        if part in ("filters", "children") and i + 1 < len(items) and isinstance(items[i + 1], int):
            parts.append(f"Condition {int(items[i + 1]) + 1}")
            i += 2
            continue
        if isinstance(part, int):
            parts.append(f"item {part + 1}")
        elif part not in ("body", "filter", "tree", "root"):
            parts.append(lower(part))
        i += 1
    return ", ".join(parts)


# Whole phrases the rules say for the API's callers, as the page says them.
PHRASES: dict[str, str] = {
    "send with allow_partial": "tick “Send anyway”",
    "with allow_partial": "with “Send anyway” ticked",
}
_PATH = re.compile(r"(?:filters|children)\[\d+\](?:\.[a-z_]+|\[\d+\])*|\b[a-z]+(?:_[a-z]+)+\b")
_INDEX = re.compile(r"\[(\d+)\]")


def _spoken_path(match: re.Match[str]) -> str:
    text = match.group(0)
    if "[" not in text:
        return f"“{lower(text)}”" if text in LABELS else text.replace("_", " ")
    loc: list[str | int] = []
    for piece in text.split("."):
        name, _, rest = piece.partition("[")
        loc.append(name)
        loc.extend(int(n) for n in _INDEX.findall("[" + rest))
    return place(loc)


def sentence(message: str) -> str:
    """A message from the rules, with identifiers said in words: ``filters[2].value:
    must not be empty for ends_with`` → "Condition 3, value: must not be empty for “ends
    with”". Words already plain pass through unchanged."""
    for phrase, said in PHRASES.items():
        message = message.replace(phrase, said)
    return _PATH.sub(_spoken_path, message)
