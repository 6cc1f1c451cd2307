"""Settings: API keys (the secret is shown once, on creation), the users of the web UI
(their routes are in ``web/users.py``), and whether SMTP and the webhooks are configured
(from ``Settings``; secrets are never shown)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response

from promocodes.apikeys import service as apikeys
from promocodes.apikeys.scopes import SCOPES
from promocodes.config import Settings
from promocodes.errors import DomainError
from promocodes.users import service as users
from promocodes.users.roles import ROLES
from promocodes.users.service import Active
from promocodes.web import kit
from promocodes.web.audit import UiActor
from promocodes.web.kit import Config, Db, Form, User

router = APIRouter(route_class=kit.UiRoute, include_in_schema=False)


def _host_of(url: str | None) -> str | None:
    return urlsplit(url).netloc or url if url else None


def channels(cfg: Settings) -> dict[str, Any]:
    """What the page tells about delivery, without any secret."""
    return {
        "smtp": {
            "configured": bool(cfg.smtp_host),
            "server": f"{cfg.smtp_host}:{cfg.smtp_port}" if cfg.smtp_host else None,
            "security": "SSL" if cfg.smtp_ssl else "STARTTLS" if cfg.smtp_starttls else "none",
            "login": bool(cfg.smtp_user),
            "sender": cfg.smtp_from,
        },
        "webhook": {
            "configured": bool(cfg.webhook_url),
            "host": _host_of(cfg.webhook_url),
            "default_secret": cfg.webhook_secret == "change-me",
        },
        "alerts_webhook": {
            "configured": bool(getattr(cfg, "alerts_webhook_url", None)),
            "host": _host_of(getattr(cfg, "alerts_webhook_url", None)),
        },
    }


@dataclass(frozen=True, slots=True)
class OneTimePassword:
    """A password made for someone, shown once on the page that made it."""

    email: str
    password: str
    reset: bool


def page(
    request: Request,
    db: Db,
    cfg: Settings,
    user: Active,
    *,
    created: tuple[str, str] | None = None,
    name: str = "",
    error: str | None = None,
    password: OneTimePassword | None = None,
    new_user: str = "",
    user_error: str | None = None,
    status_code: int = 200,
) -> Response:
    """The settings page; ``created``/``password`` carry a secret shown only this once
    (the page is the POST's answer, never a redirect, so it is in no URL or history)."""
    admin = user.role == "admin"  # only an administrator sees (and manages) keys and users
    with db.read() as s:
        keys = apikeys.list_keys(s) if admin else []
        people = users.list_users(s) if admin else []
    return kit.page(
        request,
        "settings.html",
        {
            "section": "settings",
            "keys": keys,
            "created": created,
            "name": name,
            "error": error,
            "users": people,
            "me": user.user_id,
            "admin": admin,
            "roles": ROLES,
            "scopes": SCOPES,
            "password": password,
            "new_user": new_user,
            "user_error": user_error,
            "channels": channels(cfg),
            "database": db.dialect,
        },
        status_code=status_code,
    )


@router.get("/settings")
def settings_page(request: Request, user: User, db: Db, cfg: Config) -> Response:
    return page(request, db, cfg, user)


@router.post("/settings/api-keys")
def create_key(
    request: Request, user: User, actor: UiActor, form: Form, db: Db, cfg: Config
) -> Response:
    """Answered with the page itself (not a redirect), so the secret is never in a URL,
    a cookie or the history: it is shown this once."""
    name = kit.field(form, "name")
    scopes = [str(v) for v in form.getlist("scope")]
    try:
        with db.write() as s:
            key, token = apikeys.create(s, name, scopes=scopes, actor=actor)
            key_name = key.name
    except DomainError as exc:
        return page(request, db, cfg, user, name=name, error=exc.detail, status_code=422)
    return page(request, db, cfg, user, created=(key_name, token))


@router.get("/settings/api-keys/{key_id}/revoke")
def confirm_revoke(request: Request, key_id: kit.Id, user: User, db: Db) -> Response:
    with db.read() as s:
        key = next((k for k in apikeys.list_keys(s) if k.id == key_id), None)
    if key is None:
        raise apikeys.ApiKeyNotFound(f"API key {key_id} does not exist")
    return kit.page(request, "apikeys/revoke.html", {"section": "settings", "key": key})


@router.post("/settings/api-keys/{key_id}/revoke")
def revoke(request: Request, key_id: kit.Id, actor: UiActor, form: Form, db: Db) -> Response:
    with db.write() as s:
        name = apikeys.revoke(s, key_id, actor=actor).name
    return kit.redirect(request, "/settings", flash=f"API key “{name}” revoked.")
