"""The first administrator, created when ``serve`` starts on a database without users.

A fresh install must be usable without a default password anyone could look up: the
password comes from ``PROMOCODES_ADMIN_PASSWORD`` or is generated here and shown once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.orm import Session

from promocodes.config import Settings
from promocodes.users import repository as repo
from promocodes.users import service

DEFAULT_EMAIL = "admin@localhost"


@dataclass(frozen=True, slots=True)
class FirstAdmin:
    """The administrator just created. ``password`` is set only when it was generated:
    it exists nowhere else and must be shown to the person starting the server."""

    email: str
    password: str | None
    source: Literal["generated", "environment"]


def generate_password() -> str:
    # 16 URL-safe characters (96 bits): no characters a shell or a terminal mangles.
    return secrets.token_urlsafe(12)


def ensure_first_admin(session: Session, settings: Settings) -> FirstAdmin | None:
    """Create the first administrator when there is no user at all; None otherwise.

    Only an empty users table counts: once anyone exists, the environment variables are
    ignored, so changing them never resets a password behind the operator's back.
    """
    if repo.any_user(session):
        return None
    email = settings.admin_email or DEFAULT_EMAIL
    if settings.admin_password:
        password, source = settings.admin_password, "environment"
    else:
        password, source = generate_password(), "generated"
    try:
        user = service.create_user(session, email, password, role="admin")
    except service.UserExists:  # a second process starting at the same moment won
        return None
    if source == "environment":
        return FirstAdmin(user.email, None, "environment")
    return FirstAdmin(user.email, password, "generated")
