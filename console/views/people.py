"""Users: the operator manages everyone, a subscriber's administrator its own staff, and
everyone changes their own password. Disabling a user ends its sessions at once; changing a
password ends every other session of the user."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from console.security import WeakPassword, hash_password, password_matches, token_digest
from console.users import InvalidUser, Role, User, check_account, check_new_user
from console.views.dashboard import NumberMoney, number_money
from console.web import (
    SESSION_COOKIE,
    audit,
    back_to,
    checked_form,
    console_of,
    not_found,
    render,
    require_change,
    require_operator,
    scope_of,
    user_of,
)
from rating.money import ZERO
from router.money.provider_accounts import provider_account
from router.storage.console_rows import UserRow

AUDIT_PAGE = 200
"""Entries of the audit log a page shows."""


async def users_page(request: Request) -> Response:
    user = require_change(request)
    return render(
        request,
        "users.html",
        {"users": await _users(request), "roles": roles_to_give(user), "given": {}},
    )


async def _users(request: Request) -> list[UserRow]:
    """The users the page lists: every one to the operator; to a subscriber's administrator
    its company's, not those a previous holder of its number had."""
    user, scope = user_of(request), scope_of(request)
    users = await console_of(request).store.users(None if user.is_operator else user.account)
    return [row for row in users if not scope.outlived(row.created_at)]


def roles_to_give(user: User) -> list[Role]:
    """The roles a user may give, the least powerful first: the form's default is read-only
    staff, so a hurried click never makes an operator."""
    staff = [Role.SUBSCRIBER_STAFF, Role.SUBSCRIBER_ADMIN]
    return [*staff, Role.OPERATOR] if user.is_operator else staff


async def add_user(request: Request) -> Response:
    user = require_change(request)
    form = await checked_form(request)
    console = console_of(request)
    name = str(form.get("name", "")).strip()
    account = str(form.get("account", "")).strip() or None
    # A refused form comes back filled in as it was sent, the password excepted.
    given = {"name": name, "role": str(form.get("role", "")), "account": account or ""}
    try:
        role = Role(given["role"])
    except ValueError:
        error = f"choose a role: {', '.join(role.value for role in roles_to_give(user))}"
        return render(request, "users.html", await _context(request, error, given), status=422)
    if not user.is_operator:
        if role is Role.OPERATOR:
            raise not_found()
        account = user.account  # a subscriber adds staff to its own account only
    try:
        check_new_user(name, role, account, account_asked_as="the Account field")
        if user.is_operator and account is not None:
            await check_account(account, console.all_numbers(), console.store)
        password_hash = hash_password(str(form.get("password", "")))
    except (InvalidUser, WeakPassword) as error:
        return render(request, "users.html", await _context(request, str(error), given), status=422)
    added = await console.store.add_user(
        UserRow(name, role.value, account, password_hash, False, console.clock())
    )
    if not added:
        context = await _context(request, f"{name} exists", given)
        return render(request, "users.html", context, status=409)
    await audit(request, "add user", name, f"{role} {account or ''}".strip())
    return back_to("/users")


async def disable_user(request: Request) -> Response:
    user = require_change(request)
    await checked_form(request)
    console = console_of(request)
    target = await console.store.user(request.path_params["name"])
    if target is None or (not user.is_operator and target.account != user.account):
        raise not_found()
    if target.name == user.name:
        return render(
            request, "users.html", await _context(request, "you cannot disable yourself"), 422
        )
    await console.store.disable_user(target.name)
    await audit(request, "disable user", target.name)
    return back_to("/users")


async def password_page(request: Request) -> Response:
    return render(request, "password.html", {"done": request.query_params.get("done")})


async def change_password(request: Request) -> Response:
    user = user_of(request)
    form = await checked_form(request)
    console = console_of(request)
    if not password_matches(user.password_hash, str(form.get("current", ""))):
        return render(request, "password.html", {"error": "The current password is wrong."}, 422)
    new = str(form.get("new", ""))
    if new != str(form.get("again", "")):
        return render(request, "password.html", {"error": "The new passwords differ."}, 422)
    try:
        password_hash = hash_password(new)
    except WeakPassword as error:
        return render(request, "password.html", {"error": str(error)}, 422)
    # Every other session of the user ends (someone who had the old password, a browser
    # left signed in elsewhere); this one goes on.
    this_session = token_digest(request.cookies.get(SESSION_COOKIE, ""))
    await console.store.set_password(user.name, password_hash, keep_session=this_session)
    await audit(request, "change password", user.name, "other sessions ended")
    return back_to("/password?done=1")


async def audit_page(request: Request) -> Response:
    """The log a page at a time, newest first; `?older=ID` the page after entry ID."""
    user = require_change(request)
    read = await console_of(request).store.audit_log(
        None if user.is_operator else user.account,
        limit=AUDIT_PAGE + 1,
        older_than=request.query_params.get("older"),
    )
    # Newest first: what is left are the newest entries of the current holding, and once
    # one is a previous holder's, so are all older ones.
    scope = scope_of(request)
    entries = [e for e in read[:AUDIT_PAGE] if scope.covers(e.at)]
    more = len(read) > AUDIT_PAGE and scope.covers(read[AUDIT_PAGE].at)
    older = urlencode({"older": entries[-1].entry_id}) if more else None
    return render(request, "audit.html", {"entries": entries, "older": older})


@dataclass(frozen=True, slots=True)
class AccountRow:
    """One 400 number's account as the operator scans the list: who, on what terms, and
    whether its money needs a look."""

    money: NumberMoney
    name: str
    package: str | None
    prepaid: bool | None
    features: int


@dataclass(frozen=True, slots=True)
class ProviderRow:
    name: str
    full_name: str
    balance: Decimal
    low_balance_warning: Decimal

    @property
    def low_balance(self) -> bool:
        """Below its warning threshold, as a number's balance is marked."""
        return self.balance < self.low_balance_warning


async def accounts_page(request: Request) -> Response:
    """Every number's account (with a plan or in tariffs.yaml) and every service provider's
    balance; the operator books payments from a number's money page. The accounts and plans
    are those the routers serve: for a file that does
    not load, its last good copy where they keep one (the page says so)."""
    require_operator(request)
    console = console_of(request)
    now = console.now()
    config = console.config
    accounts = config.tariffs.accounts if config.tariffs is not None else {}
    rows = []
    for number in console.all_numbers():
        plan, account = config.plans.get(number), accounts.get(number)
        rows.append(
            AccountRow(
                await number_money(request, number, now),
                plan.name if plan is not None else "",
                account.package if account is not None else None,
                account.prepaid if account is not None else None,
                len(account.features) if account is not None else 0,
            )
        )
    providers = []
    for party in await console.store.providers():
        usage = await console.store.usage(
            provider_account(party.name), f"{now:%Y-%m}", f"{now:%Y-%m-%d}"
        )
        threshold = party.low_balance_warning
        assert threshold is not None, "a provider's row has its threshold"
        providers.append(ProviderRow(party.name, party.full_name, usage.balance or ZERO, threshold))
    copies = {str(copy.file): copy.saved for copy in config.copies}
    return render(
        request, "accounts.html", {"rows": rows, "providers": providers, "copies": copies}
    )


async def _context(
    request: Request, error: str, given: dict[str, str] | None = None
) -> dict[str, object]:
    return {
        "users": await _users(request),
        "roles": roles_to_give(user_of(request)),
        "error": error,
        "given": given or {},
    }
