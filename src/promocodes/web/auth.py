"""Logging in and out.

The login form has no session yet, so its CSRF protection is a double-submit token: a
random value in a short-lived cookie that the form must echo (a cross-site form cannot
read it). After login every form uses the session's own token.
"""

from __future__ import annotations

import math
import secrets

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from promocodes.ratelimit import RateLimiter
from promocodes.users import service as users
from promocodes.web import kit
from promocodes.web.kit import Config, Db, Form

router = APIRouter(route_class=kit.UiRoute, include_in_schema=False)

SESSION_MAX_AGE = int(users.ABSOLUTE.total_seconds())


def _login_page(
    request: Request, *, next_url: str, email: str = "", error: str | None = None, status: int = 200
) -> Response:
    token = request.cookies.get(kit.LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = kit.page(
        request,
        "login.html",
        {"next": next_url, "email": email, "error": error, "login_token": token},
        status_code=status,
    )
    response.set_cookie(
        kit.LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path="/login",
        httponly=True,
        samesite="lax",
        secure=kit.secure(request),
    )
    return response


@router.get("/login")
def login_form(request: Request, db: Db, next: str | None = None) -> Response:
    with db.read() as session:
        active = users.resolve(session, request.cookies.get(kit.SESSION_COOKIE))
    if active is not None:  # already logged in
        return RedirectResponse(kit.safe_next(next), status_code=303)
    return _login_page(request, next_url=kit.safe_next(next))


class LoginThrottle:
    """Password guessing: an email may be tried 10 times from one address, then once
    every 10 s; one address may try 50 logins, then one every 2 s (spraying many emails).
    In each process's memory, like the API's limits. The email's bucket is per address
    too, so nobody can lock a person out of their account from elsewhere."""

    def __init__(self) -> None:
        self.per_email = RateLimiter(per_minute=6, burst=10)
        self.per_address = RateLimiter(per_minute=30, burst=50)

    def wait(self, address: str, email: str) -> float:
        """Seconds until this attempt is allowed (0: go ahead)."""
        key = (email.strip().lower()[:320], address)
        return max(self.per_address.take(address), self.per_email.take(key))


def password_throttle(request: Request, email: str) -> float:
    """Seconds before this client may try a password of ``email`` again (0: now); shared
    by the login form and the change-password form."""
    state = request.app.state
    if not hasattr(state, "login_throttle"):
        state.login_throttle = LoginThrottle()
    throttle: LoginThrottle = state.login_throttle
    return throttle.wait(request.client.host if request.client else "", email)


@router.post("/login")
async def login(request: Request, db: Db, cfg: Config) -> Response:
    form = await kit.read_form(request, cfg)
    next_url = kit.safe_next(kit.field(form, "next"))
    email = kit.field(form, "email")
    expected = request.cookies.get(kit.LOGIN_CSRF_COOKIE, "")
    if not kit.same_token(kit.field(form, kit.CSRF_FIELD), expected):
        raise kit.CsrfRejected
    password = kit.field(form, "password")
    wait = password_throttle(request, email)
    if wait > 0:
        return _login_page(
            request,
            next_url=next_url,
            email=email,
            error=f"Too many login attempts. Try again in {math.ceil(wait)} seconds.",
            status=429,
        )

    def run() -> str | None:
        with db.write() as session:
            try:
                user = users.authenticate(session, email, password)
            except users.InvalidCredentials:
                return None
            return users.start_session(session, user)

    # argon2 takes tens of milliseconds on purpose: keep it off the event loop.
    token = await run_in_threadpool(run)
    if token is None:
        return _login_page(
            request,
            next_url=next_url,
            email=email,
            error="The email or the password is not right.",
            status=401,
        )
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        kit.SESSION_COOKIE,
        token,
        max_age=SESSION_MAX_AGE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=kit.secure(request),
    )
    response.delete_cookie(kit.LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, form: Form, db: Db) -> Response:
    with db.write() as session:
        users.end_session(session, request.cookies.get(kit.SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(kit.SESSION_COOKIE, path="/")
    return response
