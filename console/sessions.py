"""Signing in and out, and the middleware that admits only signed-in users.

The session cookie is HTTP-only, SameSite=Strict and Secure (unless the console is told it
runs without TLS, on the loopback interface only), and lives 12 hours; disabling a user ends
its sessions at once because every request looks the session up in the store. A subscriber
user created before its number last came back to the pool worked for a previous holder of
the number: it does not sign in, and a session it still has ends at its next request. The
sign-in form carries a CSRF token too, derived from a cookie the sign-in page sets, so no other site
can sign a visitor's browser in to an account of its choosing.
"""

from __future__ import annotations

import math
from datetime import timedelta

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from console.security import (
    csrf_token,
    csrf_valid,
    new_session_token,
    password_matches,
    token_digest,
)
from console.users import Role, Scope, User
from console.web import SESSION_COOKIE, back_to, checked_form, console_of, render
from router.storage.console_rows import AuditEntry, UserRow

SESSION_LIFETIME = timedelta(hours=12)
LOGIN_COOKIE = "hotline400_login"
"""The sign-in form's own CSRF cookie: a visitor has no session yet to derive a token from."""
OPEN_PATHS = ("/login", "/static/")


def user_from_row(row: UserRow) -> User:
    return User(
        row.name, Role(row.role), row.account, row.password_hash, row.disabled, row.created_at
    )


class SignedInOnly(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if request.url.path.startswith(OPEN_PATHS):
            return await call_next(request)
        session = await _session(request)
        if session is None:
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        token, user, scope = session
        if scope.outlived(user.created_at):
            await console_of(request).store.close_session(token_digest(token))
            response = _login_form(request, {"error": _previous_holder(user)}, 403)
            response.delete_cookie(SESSION_COOKIE)
            return response
        request.state.user, request.state.scope = user, scope
        response = await call_next(request)
        response.headers["Cache-Control"] = "no-store"
        return response


async def login_page(request: Request) -> Response:
    """The sign-in form, or for a visitor signed in already the dashboard: the form is
    for signing in, and signing out opens it again for another user."""
    if await _signed_in(request):
        return RedirectResponse("/", status_code=303)
    return _login_form(request, {"next": _safe_next(request.query_params.get("next"))})


async def _signed_in(request: Request) -> bool:
    """Whether the request carries a session its user may still use (not one of a
    previous holder's users, which the form must still turn away in words)."""
    session = await _session(request)
    return session is not None and not session[2].outlived(session[1].created_at)


async def _session(request: Request) -> tuple[str, User, Scope] | None:
    """The request's session token, its user and what the user may see; None without a
    live session."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    console = console_of(request)
    row = await console.store.session_user(token_digest(token), console.clock())
    if row is None:
        return None
    user = user_from_row(row)
    return token, user, await console.scope(user)


def _login_form(request: Request, context: dict[str, object], status: int = 200) -> Response:
    """The sign-in page with its form's CSRF token, from the visitor's sign-in cookie (set
    here when it has none yet)."""
    console = console_of(request)
    token = request.cookies.get(LOGIN_COOKIE) or new_session_token()
    response = render(
        request,
        "login.html",
        {**context, "csrf": csrf_token(console.secret, f"login:{token}")},
        status=status,
    )
    if request.cookies.get(LOGIN_COOKIE) != token:
        response.set_cookie(
            LOGIN_COOKIE, token, httponly=True, secure=console.secure_cookies, samesite="strict"
        )
    return response


async def login(request: Request) -> Response:
    console = console_of(request)
    form = await request.form()
    name = str(form.get("name", "")).strip()
    password = str(form.get("password", ""))
    next_url = _safe_next(str(form.get("next", "/")))
    now = console.clock()
    client = request.client.host if request.client else "unknown"
    user_key = f"user:{name.lower()}"
    keys = (user_key, f"client:{client}")
    cookie, offered = request.cookies.get(LOGIN_COOKIE), form.get("csrf")
    if not cookie or not csrf_valid(
        console.secret, f"login:{cookie}", offered if isinstance(offered, str) else None
    ):
        error = "The sign-in form expired or did not come from this console; sign in again."
        return _login_form(request, {"error": error, "next": next_url, "name": name}, 403)
    throttle = request.app.state.throttle
    attempt = await throttle.attempt(keys, now)  # counted as failed until it is known
    if attempt.retry_at is not None:
        wait = max(1, math.ceil((attempt.retry_at - now).total_seconds() / 60))
        error = f"Too many failed sign-ins. Try again in {wait} minutes."
        return _login_form(request, {"error": error, "next": next_url, "name": name}, 429)
    row = await console.store.user(name)
    if row is None or row.disabled or not password_matches(row.password_hash, password):
        error = "Wrong user name or password."
        return _login_form(request, {"error": error, "next": next_url, "name": name}, 401)
    user = user_from_row(row)
    scope = await console.scope(user)
    if scope.outlived(user.created_at):
        error = _previous_holder(user)
        return _login_form(request, {"error": error, "next": next_url, "name": name}, 403)
    await throttle.succeeded(attempt, user_key)
    token = new_session_token()
    await console.store.open_session(token_digest(token), row.name, now + SESSION_LIFETIME)
    await console.store.audit(AuditEntry(now, row.name, row.account, "sign in", row.name, client))
    response = back_to(next_url)
    response.delete_cookie(LOGIN_COOKIE)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        secure=console.secure_cookies,
        samesite="strict",
    )
    return response


async def logout(request: Request) -> Response:
    await checked_form(request)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await console_of(request).store.close_session(token_digest(token))
    response = back_to("/login")
    response.delete_cookie(SESSION_COOKIE)
    return response


def _previous_holder(user: User) -> str:
    """Why a user of a previous holder of its number is turned away."""
    number = user.account or ""
    shown = f"{number[:3]}-{number[3:6]}-{number[6:]}" if len(number) == 10 else number
    return (
        f"{shown} is no longer held by your company: it was cancelled and has since been given"
        f" to someone else, so {user.name} can no longer sign in."
    )


def _safe_next(target: str | None) -> str:
    """Only a path of this console: never an address elsewhere (open redirect). Browsers
    read a backslash as a slash, so `/\\host` leaves the console as `//host` would."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or any(c == "\\" or c.isspace() or not c.isprintable() for c in target)
    ):
        return "/"
    return target
