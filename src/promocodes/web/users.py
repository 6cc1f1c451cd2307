"""Users of the web UI, from the settings page: add someone (with a password made for
them and shown once), reset a forgotten password, remove someone who left, and change
your own password."""

from __future__ import annotations

import math

from fastapi import APIRouter, Request, Response

from promocodes.errors import Conflict, DomainError, ValidationFailed
from promocodes.users import service as users
from promocodes.web import kit
from promocodes.web.audit import UiActor
from promocodes.web.auth import password_throttle
from promocodes.web.kit import Config, Db, Form, User
from promocodes.web.settings import OneTimePassword, page

router = APIRouter(route_class=kit.UiRoute, include_in_schema=False)


class TooManyAttempts(DomainError):
    slug = "rate-limited"
    status = 429
    title = "Too many attempts"


class ResettingYourself(Conflict):
    slug = "resetting-yourself"
    title = "You cannot reset your own password here"


class RemovingYourself(Conflict):
    slug = "removing-yourself"
    title = "You cannot remove yourself"


@router.post("/settings/users")
def add_user(
    request: Request, user: User, actor: UiActor, form: Form, db: Db, cfg: Config
) -> Response:
    email = kit.field(form, "email")
    role = kit.field(form, "role") or "marketer"
    password = users.generate_password()
    try:
        with db.write() as s:
            address = users.create_user(s, email, password, role=role, actor=actor).email
    except DomainError as exc:
        return page(request, db, cfg, user, new_user=email, user_error=exc.detail, status_code=422)
    return page(request, db, cfg, user, password=OneTimePassword(address, password, reset=False))


@router.post("/settings/users/{user_id}/role")
def change_role(
    request: Request, user_id: kit.Id, user: User, actor: UiActor, form: Form, db: Db
) -> Response:
    role = kit.field(form, "role")
    with db.write() as s:
        email = users.set_role(s, user_id, role, actor=actor).email
    return kit.redirect(request, "/settings", flash=f"{email} is now {role}.")


def _confirm(request: Request, db: Db, user_id: int, action: str) -> Response:
    with db.read() as s:
        email = users.get(s, user_id).email
    return kit.page(
        request,
        "users/confirm.html",
        {"section": "settings", "user_id": user_id, "email": email, "action": action},
    )


@router.get("/settings/users/{user_id}/reset")
def confirm_reset(request: Request, user_id: kit.Id, user: User, db: Db) -> Response:
    return _confirm(request, db, user_id, "reset")


@router.post("/settings/users/{user_id}/reset")
def reset_password(
    request: Request, user_id: kit.Id, user: User, actor: UiActor, form: Form, db: Db, cfg: Config
) -> Response:
    # Your own reset would end this session and show the new password to nobody.
    if user_id == user.user_id:
        raise ResettingYourself("use Change your password for your own")
    password = users.generate_password()
    with db.write() as s:
        email = users.set_password(s, users.get(s, user_id).email, password, actor=actor).email
    return page(request, db, cfg, user, password=OneTimePassword(email, password, reset=True))


@router.get("/settings/users/{user_id}/remove")
def confirm_remove(request: Request, user_id: kit.Id, user: User, db: Db) -> Response:
    return _confirm(request, db, user_id, "remove")


@router.post("/settings/users/{user_id}/remove")
def remove_user(
    request: Request, user_id: kit.Id, user: User, actor: UiActor, form: Form, db: Db
) -> Response:
    # Removing yourself would end this session mid-click; another user (or the CLI) can.
    if user_id == user.user_id:
        raise RemovingYourself("you cannot remove yourself; another user can")
    with db.write() as s:
        email = users.get(s, user_id).email
        users.delete_user(s, email, actor=actor)
    return kit.redirect(request, "/settings", flash=f"User {email} removed.")


@router.get("/settings/password")
def password_form(request: Request, user: User) -> Response:
    return kit.page(request, "users/password.html", {"section": "settings", "error": None})


@router.post("/settings/password")
def change_password(request: Request, user: User, actor: UiActor, form: Form, db: Db) -> Response:
    current, new, again = (kit.field(form, k) for k in ("current", "new", "again"))
    # A session left open must not become a way to guess the password at full speed.
    wait = password_throttle(request, user.email)
    try:
        if wait > 0:
            raise TooManyAttempts(f"too many attempts; try again in {math.ceil(wait)} seconds")
        if new != again:
            raise ValidationFailed("the two new passwords differ")
        with db.write() as s:
            users.change_own_password(s, user.user_id, current, new, actor=actor)
    except DomainError as exc:
        return kit.page(
            request,
            "users/password.html",
            {"section": "settings", "error": exc.detail},
            status_code=429 if isinstance(exc, TooManyAttempts) else 422,
        )
    return kit.redirect(request, "/login", flash="Password changed: log in with the new one.")
