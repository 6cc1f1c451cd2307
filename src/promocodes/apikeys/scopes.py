"""What an API key may do: its scopes, and the scope each operation needs.

- ``read``: every GET (groups, codes, customers, segments, mailings, reports), and the
  previews and checks that change nothing (a checkout validating a code);
- ``issue``: issuing codes (``POST …/issue``) and sending events (campaigns issue codes);
- ``redeem``: redeeming, reversing a redemption, bulk redemption;
- ``manage``: every other change (groups, uploads, customers, segments, mailings…).

A checkout needs ``redeem`` (and ``read`` to look codes up), a CRM ``issue``; neither
can empty a group or read the customer base unless given more. The rule is read from the
method and route; ``tests/test_access_matrix.py`` holds every operation's decision.
"""

from __future__ import annotations

from typing import Literal, get_args

Scope = Literal["read", "issue", "redeem", "manage"]
SCOPES: tuple[Scope, ...] = get_args(Scope)

_ISSUE = frozenset({("POST", "/api/v1/groups/{group_id}/issue"), ("POST", "/api/v1/events")})
_REDEEM = frozenset(
    {
        ("POST", "/api/v1/codes/{code}/redeem"),
        ("DELETE", "/api/v1/codes/{code}/redemption"),
        ("POST", "/api/v1/codes/redemptions"),
    }
)


# Reads sent as a POST: they render or count, and change nothing.
_READ_BY_POST = frozenset(
    "/api/v1/" + p
    for p in (
        "segments/preview",
        "templates/validate",
        "templates/preview",
        "mailings/{mailing_id}/check",
        "mailings/{mailing_id}/preview",
        "campaigns/{campaign_id}/preview",
        "codes/{code}/validate",
    )
)


def needed(method: str, path: str) -> Scope:
    """The scope an API call of ``method`` on the route ``path`` (its template) needs."""
    if (method, path) in _ISSUE:
        return "issue"
    if (method, path) in _REDEEM:
        return "redeem"
    if method in ("GET", "HEAD") or path in _READ_BY_POST:
        return "read"
    return "manage"


def parse(text: str) -> tuple[Scope, ...]:
    """Scopes as stored (comma-separated), in their canonical order."""
    given = {s.strip() for s in text.split(",")}
    return tuple(s for s in SCOPES if s in given)


def unknown(given: list[str]) -> list[str]:
    return [s for s in given if s not in SCOPES]
