"""What every page handler shares: the signed-in user, forms with their CSRF check, templates,
the audit log, and "not found" for anything outside the user's scope."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from console.config_problems import file_anchor
from console.context import Console
from console.security import csrf_token, csrf_valid
from console.users import Role, Scope, User
from dialplan.regions import place_name
from numbering.lifecycle import Status
from router.storage.cdr import ForwardReason
from router.storage.console_rows import AuditEntry
from router.storage.protocol import StoreUnavailable

log = logging.getLogger("hotline400.console")

SESSION_COOKIE = "hotline400_session"
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def clock_time(seconds: int | float) -> str:
    """A call's length as people read it, 1:05 or 1:02:05, not 65 or 3725 seconds."""
    minutes, rest = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}" if hours else f"{minutes}:{rest:02d}"


def status_words(status: str) -> str:
    """A status the store keeps ('under_review') as every page names it."""
    return Status(status).in_words


FORWARD_REASONS = {
    ForwardReason.PRIMARY: "first destination",
    ForwardReason.BUSY: "forwarded: busy",
    ForwardReason.NO_ANSWER: "forwarded: no answer",
}
"""Why a leg was dialled, as the call page says it."""
DIAL_RESULTS = {
    "ANSWER": "answered",
    "BUSY": "busy",
    "NOANSWER": "no answer",
    "CANCEL": "caller hung up",
    "CONGESTION": "network busy",
    "CHANUNAVAIL": "unreachable",
    "DIALLING": "dialling",
}
"""Asterisk's DIALSTATUS of a leg in words; one not named here is shown as Asterisk sent it."""


def dial_result(status: str) -> str:
    """A leg's DIALSTATUS as a subscriber reads it ('CHANUNAVAIL' -> 'unreachable')."""
    return DIAL_RESULTS.get(status, status)


TEMPLATES.env.filters["clock_time"] = clock_time
TEMPLATES.env.filters["forward_reason"] = FORWARD_REASONS.__getitem__
TEMPLATES.env.filters["dial_result"] = dial_result
TEMPLATES.env.filters["place_name"] = lambda region: place_name(region.province, region.city)
TEMPLATES.env.filters["status_words"] = status_words
TEMPLATES.env.filters["file_anchor"] = lambda path: file_anchor(str(path))

Handler = Callable[[Request], Awaitable[Response]]


def console_of(request: Request) -> Console:
    return request.app.state.console


def user_of(request: Request) -> User:
    return request.state.user


def scope_of(request: Request) -> Scope:
    """What the signed-in user may see (console.context.Console.scope), read once a request:
    every page showing a number's calls, plans or money bounds them by it."""
    return request.state.scope


def not_found() -> HTTPException:
    """Said alike of what does not exist and of what belongs to someone else."""
    return HTTPException(404, "not found")


def visible_number(request: Request, number: str) -> str:
    """`number` if the user may see it, else 404."""
    if number not in console_of(request).all_numbers() or not scope_of(request).allows(number):
        raise not_found()
    return number


def require_change(request: Request) -> User:
    """Staff may read but not change: their forms are not even shown."""
    user = user_of(request)
    if not user.may_change:
        raise not_found()
    return user


def require_operator(request: Request) -> User:
    user = user_of(request)
    if user.role is not Role.OPERATOR:
        raise not_found()
    return user


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token proves it came from one of our pages."""
    form = await request.form()
    token = request.cookies.get(SESSION_COOKIE, "")
    offered = form.get("csrf")
    if not token or not csrf_valid(
        console_of(request).secret, token, offered if isinstance(offered, str) else None
    ):
        raise HTTPException(
            403, "the form expired or did not come from this console; reload the page"
        )
    return form


def render(
    request: Request, template: str, context: Mapping[str, Any], status: int = 200
) -> HTMLResponse:
    console = console_of(request)
    user: User | None = getattr(request.state, "user", None)
    token = request.cookies.get(SESSION_COOKIE, "")
    base = {
        "request": request,
        "user": user,
        "csrf": csrf_token(console.secret, token) if token else "",
        "numbers": console.numbers_for(user) if user is not None else [],
        "now": console.now(),
    }
    return TEMPLATES.TemplateResponse(request, template, {**base, **context}, status_code=status)


def back_to(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def refused(request: Request, status: int, why: str) -> None:
    """A change a signed-in user posted and was refused (not theirs to make, not their
    number, an expired form) is written down too, so someone trying what they may not shows
    in the audit log; reading a page never is. The refusal stands even if the log cannot be
    written."""
    if request.method != "POST" or getattr(request.state, "user", None) is None:
        return
    try:
        await audit(request, "refused", request.url.path, f"{status}: {why}")
    except StoreUnavailable as error:
        log.error("a refused change could not be audited: %s", error)


async def audit(request: Request, action: str, target: str, detail: str = "") -> None:
    """Every change is written down with who and when."""
    console, user = console_of(request), user_of(request)
    await console.store.audit(
        AuditEntry(console.clock(), user.name, user.account, action, target, detail)
    )
