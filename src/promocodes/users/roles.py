"""Who may do what in the web UI: three roles, and the role each page needs.

- ``admin``: everything, and alone manages users, API keys and settings;
- ``marketer``: groups, uploads, customers, segments, mailings, campaigns;
- ``viewer``: reads every page, changes nothing and downloads no exports: codes,
  messages (which carry codes) and a segment's customers (personal data in bulk) hand
  out what a viewer must not hold.

The rule is read from the request's method and route, so a new page falls under it
without a line of its own: reading needs ``viewer``, changing needs ``marketer``, and
the administrative sections need ``admin``. ``tests/test_access_matrix.py`` holds
every route's decision, so a new route must be decided there too.
"""

from __future__ import annotations

from typing import Literal, get_args

Role = Literal["admin", "marketer", "viewer"]
ROLES: tuple[Role, ...] = get_args(Role)
_RANK: dict[str, int] = {"viewer": 0, "marketer": 1, "admin": 2}

# Users, API keys and the instance's settings.
ADMIN_SECTIONS = ("/settings/users", "/settings/api-keys")
# Everyone's own: logging in and out, their own password; and reads sent as a POST (a
# preview renders a template or counts a segment, and changes nothing).
ANYONE = frozenset(
    {"/login", "/logout", "/settings/password", "/segments/preview", "/templates/check",
     "/templates/preview"}
)  # fmt: skip
# Downloads of codes, of messages (which carry codes) or of customers (personal data).
CODE_EXPORTS = ".csv"


def needed(method: str, path: str) -> Role:
    """The least role that may ``method`` the route ``path`` (its template)."""
    if path.startswith(ADMIN_SECTIONS):
        return "admin"
    if path in ANYONE:
        return "viewer"
    if path.endswith(CODE_EXPORTS):
        return "marketer"
    return "viewer" if method in ("GET", "HEAD") else "marketer"


def allows(role: str, wanted: Role) -> bool:
    return _RANK.get(role, -1) >= _RANK[wanted]
