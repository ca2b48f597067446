"""Who gets in, and what each user may reach: sign-in, throttling, CSRF, scopes and roles.

A subscriber must never see or change another subscriber's data, whatever URL it types:
every route of the console, asked with another account's number, call or user, answers 404.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from console.app import create_app
from console.security import MIN_SECRET_LENGTH, SECRET_ENV, WeakSecret, console_secret
from numbering.lifecycle import NumberRecord
from rating.ledger import LedgerEntry, LedgerKind
from router.storage.console_rows import AuditEntry
from router.storage.number_rows import PartyRow
from tests.console.harness import (
    CLINIC,
    NOW,
    PASSWORD,
    SHOP,
    a_call,
    csrf_of,
    running_console,
    serving,
    sign_in,
)


async def test_a_wrong_password_is_refused_and_a_right_one_opens_a_session(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site, site.client() as client:
        wrong = await sign_in(client, "shop", "guess-guess")
        assert wrong.status_code == 401
        assert "Wrong user name or password" in wrong.text
        right = await sign_in(client, "shop")
        assert right.status_code == 303
        cookie = right.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert (await client.get("/")).status_code == 200


async def test_pages_send_a_visitor_without_a_session_to_sign_in(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site, site.client() as client:
        response = await client.get("/calls")
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=/calls"


async def test_a_sign_in_posted_from_elsewhere_opens_no_session(tmp_path: Path) -> None:
    """Another site cannot sign a visitor in to an account it chose: the form's token comes
    from a cookie only the sign-in page sets."""
    async with running_console(tmp_path) as site, site.client() as client:
        forged = await client.post("/login", data={"name": "shop", "password": PASSWORD})
        assert forged.status_code == 403
        assert "did not come from this console" in forged.text
        cookie = forged.headers["set-cookie"].lower()  # the form shown again, with its cookie
        assert "hotline400_session" not in cookie and "hotline400_login=" in cookie
        assert "httponly" in cookie and "samesite=strict" in cookie
        for token in ("0" * 64, "令牌"):
            wrong_token = {"csrf": token, "name": "shop", "password": PASSWORD}
            assert (await client.post("/login", data=wrong_token)).status_code == 403
        assert (await sign_in(client, "shop")).status_code == 303
        assert (await client.get("/")).status_code == 200


async def test_no_other_site_may_frame_a_page_or_load_code_into_it(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site, site.client() as visitor:
        shop = await site.signed_in("shop")
        responses = [
            await visitor.get("/calls"),  # a redirect to sign in
            await visitor.get("/login"),
            await visitor.get("/static/console.css"),
            await shop.get("/"),
            await shop.get(f"/numbers/{CLINIC}/money"),  # not found
        ]
        for response in responses:
            policy = response.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy
            assert "form-action 'self'" in policy
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["x-content-type-options"] == "nosniff"
        await shop.aclose()


async def test_no_script_runs_from_a_page_itself_so_injected_markup_stays_inert(
    tmp_path: Path,
) -> None:
    """The console's scripts are its static files: the policy runs nothing written into a
    page, and the questions asked before a fee is booked or a number cancelled are data."""
    async with running_console(tmp_path) as site:
        ops = await site.signed_in("ops")
        money = await ops.get(f"/numbers/{SHOP}/money")
        policy = money.headers["content-security-policy"].split("; ")
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy[1]
        assert re.search(r'data-confirm="Switch [\w ]+ on\? Its fee of [0-9.]+ yuan', money.text)
        assert "onsubmit=" not in money.text
        assert '<script src="/static/confirm.js" defer></script>' in money.text
        assert (await ops.get("/static/confirm.js")).status_code == 200
        await ops.aclose()


@pytest.mark.parametrize(
    ("asked", "lands"),
    [
        ("/calls?number=4008207788", "/calls?number=4008207788"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\tevil", "/"),
    ],
)
async def test_signing_in_goes_on_only_to_a_page_of_the_console(
    tmp_path: Path, asked: str, lands: str
) -> None:
    async with running_console(tmp_path) as site, site.client() as client:
        response = await sign_in(client, "shop", next=asked)
        assert response.headers["location"] == lands


async def test_after_five_failures_a_user_is_throttled_even_with_the_right_password(
    tmp_path: Path,
) -> None:
    async with running_console(tmp_path) as site, site.client() as client:
        for _ in range(5):
            await sign_in(client, "shop", "not-the-one")
        response = await sign_in(client, "shop")
        assert response.status_code == 429
        assert "Try again in 15 minutes" in response.text


async def test_a_form_without_its_csrf_token_changes_nothing(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        shop = await site.signed_in("shop")
        other = await site.signed_in("ops")
        foreign_token = await csrf_of(other, "/users")
        for token in (None, "0" * 64, foreign_token, "令牌"):  # refused, never a crash
            data = {"name": "newstaff", "role": "subscriber-staff", "password": PASSWORD}
            if token is not None:
                data["csrf"] = token
            response = await shop.post("/users", data=data)
            assert response.status_code == 403
        assert await site.store.user("newstaff") is None
        await shop.aclose()
        await other.aclose()


async def test_signing_out_ends_the_session(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        client = await site.signed_in("shop")
        token = await csrf_of(client, "/")
        assert (await client.post("/logout", data={"csrf": token})).status_code == 303
        assert (await client.get("/")).status_code == 303
        await client.aclose()


async def test_the_sign_in_page_sends_a_signed_in_user_on_to_the_dashboard(
    tmp_path: Path,
) -> None:
    """Signed in, /login is no form to fill again; signed out, it is, for any user."""
    async with running_console(tmp_path) as site:
        client = await site.signed_in("shop")
        again = await client.get("/login")
        assert (again.status_code, again.headers["location"]) == (303, "/")
        token = await csrf_of(client, "/")
        assert (await client.post("/logout", data={"csrf": token})).status_code == 303
        assert (await client.get("/login")).status_code == 200
        assert (await sign_in(client, "clinic")).status_code == 303
        dashboard = await client.get("/")
        assert dashboard.status_code == 200 and "clinic" in dashboard.text
        await client.aclose()


async def test_disabling_a_user_ends_its_sessions_at_once(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        staff = await site.signed_in("shopstaff")
        admin = await site.signed_in("shop")
        assert (await staff.get("/")).status_code == 200
        token = await csrf_of(admin, "/users")
        response = await admin.post("/users/shopstaff/disable", data={"csrf": token})
        assert response.status_code == 303
        assert (await staff.get("/")).status_code == 303
        audit = await admin.get("/audit")
        assert "disable user" in audit.text and "shopstaff" in audit.text
        await staff.aclose()
        await admin.aclose()


def _routes_with_foreign_ids(call_id: str) -> list[tuple[str, str]]:
    """Every route of the console, asked by the clinic's administrator about the shop."""
    return [
        ("GET", f"/numbers/{SHOP}"),
        ("POST", f"/numbers/{SHOP}/actions/suspend"),
        ("GET", f"/numbers/{SHOP}/routing"),
        ("POST", f"/numbers/{SHOP}/routing"),
        ("GET", f"/numbers/{SHOP}/routing/versions/1"),
        ("POST", f"/numbers/{SHOP}/routing/versions/1/restore"),
        ("GET", f"/numbers/{SHOP}/money"),
        ("POST", f"/numbers/{SHOP}/money/payments"),
        ("POST", f"/numbers/{SHOP}/money/features/recording"),
        ("GET", f"/calls/{call_id}"),
        ("GET", f"/calls/{call_id}/recording"),
        ("GET", f"/calls?number={SHOP}"),
        ("GET", f"/calls.csv?number={SHOP}"),
        ("GET", f"/calls.xlsx?number={SHOP}"),
        ("GET", f"/reports?number={SHOP}"),
        ("POST", "/users/shopstaff/disable"),
        ("GET", "/accounts"),
    ]


OPEN_TO_EVERY_USER = {
    "/",
    "/dashboard/summary",
    "/events",
    "/calls",
    "/calls.csv",
    "/calls.xlsx",
    "/reports",
    "/numbers",
    "/users",
    "/password",
    "/audit",
    "/configuration",  # a subscriber's users see their own plan's problems only
    "/login",
    "/logout",
    "/static",
}


def test_the_scope_table_covers_every_route_of_the_console(tmp_path: Path) -> None:
    app = create_app(tmp_path, store=None, clock=lambda: NOW)  # type: ignore[arg-type]
    paths = {route.path for route in app.routes}
    covered = {path.split("?")[0] for _, path in _routes_with_foreign_ids("X")}
    templated = {
        path.replace("{number}", SHOP)
        .replace("{version:int}", "1")
        .replace("{call_id}", "X")
        .replace("{name}", "shopstaff")
        .replace("{feature}", "recording")
        .replace("{action}", "suspend")
        for path in paths
    }
    assert templated - covered - OPEN_TO_EVERY_USER == set()


async def test_another_subscribers_data_is_not_found_on_every_route(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        await site.store.apply(a_call("shop.1", SHOP, NOW))
        await site.store.add_numbers([NumberRecord(SHOP)], NOW)  # the inventory knows it too
        clinic = await site.signed_in("clinic")
        token = await csrf_of(clinic, "/users")
        for method, path in _routes_with_foreign_ids("shop.1"):
            if method == "GET":
                response = await clinic.get(path)
            else:
                response = await clinic.post(path, data={"csrf": token, "amount": "1.00"})
            assert response.status_code == 404, f"{method} {path}: {response.status_code}"
            assert SHOP not in response.text, f"{method} {path} shows the shop's number"
        await clinic.aclose()


async def test_the_clinic_sees_its_own_number_and_call(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        await site.store.apply(a_call("clinic.1", CLINIC, NOW))
        clinic = await site.signed_in("clinic")
        assert (await clinic.get("/calls/clinic.1")).status_code == 200
        assert (await clinic.get(f"/numbers/{CLINIC}/routing")).status_code == 200
        page = await clinic.get("/")
        assert CLINIC in page.text and SHOP not in page.text
        await clinic.aclose()


async def test_staff_read_but_cannot_change(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        staff = await site.signed_in("shopstaff")
        page = await staff.get(f"/numbers/{SHOP}/routing")
        assert page.status_code == 200
        assert 'value="save"' not in page.text
        token = await csrf_of(staff, "/")
        response = await staff.post(
            f"/numbers/{SHOP}/routing", data={"csrf": token, "action": "save", "yaml": "x"}
        )
        assert response.status_code == 404
        assert (await staff.get("/users")).status_code == 404
        await staff.aclose()


async def test_a_refused_change_is_written_to_the_audit_log_and_a_refused_read_is_not(
    tmp_path: Path,
) -> None:
    async with running_console(tmp_path) as site:
        staff = await site.signed_in("shopstaff")
        admin = await site.signed_in("shop")
        token = await csrf_of(staff, "/")
        routing = f"/numbers/{SHOP}/routing"
        await staff.post(routing, data={"csrf": token, "action": "save", "yaml": "x"})
        await admin.post(routing, data={"action": "save", "yaml": "x"})  # no CSRF token
        await staff.get("/users")  # an operator's page: not found, and only a read
        await staff.aclose()
        await admin.aclose()
        async with site.client() as visitor:
            await visitor.post(routing, data={"action": "save"})  # signed out: to the login
        entries = [
            (entry.actor, entry.action, entry.target, entry.detail)
            for entry in await site.store.audit_log()
            if entry.action != "sign in"
        ]
    expired = "403: the form expired or did not come from this console; reload the page"
    assert sorted(entries) == [
        ("shop", "refused", routing, expired),
        ("shopstaff", "refused", routing, "404: not found"),
    ]


@pytest.mark.parametrize("amount", ["-5", "abc", "1.001", "NaN", "99999999999999"])
async def test_the_operator_books_payments_and_bad_amounts_book_nothing(
    tmp_path: Path, amount: str
) -> None:
    async with running_console(tmp_path) as site:
        ops = await site.signed_in("ops")
        token = await csrf_of(ops, f"/numbers/{SHOP}/money")
        bad = await ops.post(
            f"/numbers/{SHOP}/money/payments",
            data={"csrf": token, "amount": amount, "ref": "R-0"},
        )
        assert bad.status_code == 422  # the form again, as typed, the error at its field
        amount_field = re.search(r"<label>Payment \(yuan\).*?</label>", bad.text, re.S)
        assert amount_field is not None
        assert f'value="{amount}"' in amount_field.group()
        assert "a positive number of yuan with at most two decimals" in amount_field.group()
        assert 'name="ref" value="R-0"' in bad.text
        assert await site.store.ledger(SHOP) == []
        good = await ops.post(
            f"/numbers/{SHOP}/money/payments",
            data={"csrf": token, "amount": "600.00", "ref": "R-1"},
        )
        assert good.status_code == 303
        again = await ops.post(
            f"/numbers/{SHOP}/money/payments",
            data={"csrf": token, "amount": "600.00", "ref": "R-1"},
        )
        assert again.status_code == 409  # the receipt is booked already: refused
        entries = await site.store.ledger(SHOP)
        assert [(str(e.amount), e.ref) for e in entries] == [("600.00", "R-1")]
        page = await ops.get(f"/numbers/{SHOP}/money")
        assert 'data-testid="balance">600.00<' in page.text
        await ops.aclose()


async def test_a_subscriber_cannot_reach_operator_pages_or_book_payments(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        shop = await site.signed_in("shop")
        assert (await shop.get("/accounts")).status_code == 404
        token = await csrf_of(shop, f"/numbers/{SHOP}/money")
        response = await shop.post(
            f"/numbers/{SHOP}/money/payments", data={"csrf": token, "amount": "5.00"}
        )
        assert response.status_code == 404
        await shop.aclose()


async def test_the_operator_scans_every_account_and_each_providers_balance(
    tmp_path: Path,
) -> None:
    async with running_console(tmp_path) as site:
        tariffs = site.config_dir / "tariffs.yaml"
        text = tariffs.read_text(encoding="utf-8")
        shop = text.index(f'"{SHOP}":')
        tariffs.write_text(
            text[:shop] + text[shop:].replace("prepaid: false", "prepaid: true", 1),
            encoding="utf-8",
        )
        await site.store.post_ledger(
            [
                LedgerEntry(SHOP, NOW, Decimal("20.00"), LedgerKind.PAYMENT, "r1", ""),
                LedgerEntry("provider:sp-east", NOW, Decimal("75.50"), LedgerKind.PAYMENT, "p", ""),
            ]
        )
        await site.store.add_party(PartyRow("sp-east", "East Reseller", "", "", "", NOW))
        await site.store.add_party(
            PartyRow("sp-west", "West Reseller", "", "", "", NOW, low_balance_warning=Decimal(80))
        )
        ops = await site.signed_in("ops")
        page = (await ops.get("/accounts")).text
        rows = {
            number: page.split(f'data-testid="account-{number}"')[1].split("</tr>")[0]
            for number in (SHOP, CLINIC, "4006001234")
        }
        assert 'nationwide-300 <span class="muted small">prepaid' in rows[SHOP]
        assert "Lanhua Online Shop" in rows[SHOP]
        assert ">low</span> 20.00<" in rows[SHOP]
        assert "postpaid" in rows[CLINIC] and ">low<" not in rows[CLINIC]
        assert 'data-testid="low-count">1 low on balance<' in page
        providers = page.split('data-testid="providers"')[1]
        assert '<td>sp-east</td><td class="wrap">East Reseller</td>' in providers
        east = providers.split('data-testid="provider-sp-east"')[1].split("</tr>")[0]
        assert '<td class="num">75.50</td><td class="num">50.00</td>' in east  # the default
        west = providers.split('data-testid="provider-sp-west"')[1].split("</tr>")[0]
        assert '>low</span> 0.00</td><td class="num">80.00</td>' in west
        await ops.aclose()


async def test_a_subscriber_adds_staff_to_its_own_account_only(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        shop = await site.signed_in("shop")
        token = await csrf_of(shop, "/users")
        response = await shop.post(
            "/users",
            data={
                "csrf": token,
                "name": "newstaff",
                "role": "subscriber-staff",
                "account": CLINIC,
                "password": PASSWORD,
            },
        )
        assert response.status_code == 303
        added = await site.store.user("newstaff")
        assert added is not None and added.account == SHOP
        operator = await shop.post(
            "/users",
            data={"csrf": token, "name": "boss", "role": "operator", "password": PASSWORD},
        )
        assert operator.status_code == 404
        await shop.aclose()


async def test_changing_a_password_needs_the_current_one(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        shop = await site.signed_in("shop")
        token = await csrf_of(shop, "/password")
        wrong = await shop.post(
            "/password",
            data={
                "csrf": token,
                "current": "nope",
                "new": "new password 1",
                "again": "new password 1",
            },
        )
        assert wrong.status_code == 422
        right = await shop.post(
            "/password",
            data={
                "csrf": token,
                "current": PASSWORD,
                "new": "new password 1",
                "again": "new password 1",
            },
        )
        assert right.status_code == 303
        async with httpx.AsyncClient(base_url=site.url) as fresh:
            login = await sign_in(fresh, "shop", "new password 1")
            assert login.status_code == 303
        await shop.aclose()


async def test_the_add_user_form_offers_read_only_staff_first(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        ops = await site.signed_in("ops")
        page = (await ops.get("/users")).text
        offered = page.split('name="role">')[1].split("</select>")[0]
        assert offered.index("subscriber-staff") < offered.index("operator")
        assert offered.startswith("<option>subscriber-staff</option>")
        await ops.aclose()


async def test_the_operator_cannot_add_a_user_for_an_account_that_is_nowhere(
    tmp_path: Path,
) -> None:
    """As `hotline400 users add` refuses it: a mistyped account would make a user who sees
    nothing. A number of the plans or tariffs.yaml is an account."""
    async with running_console(tmp_path) as site:
        ops = await site.signed_in("ops")
        token = await csrf_of(ops, "/users")
        form = {"csrf": token, "role": "subscriber-staff", "password": "a long password 1"}
        typo = await ops.post("/users", data={**form, "name": "newdesk", "account": "nope"})
        assert typo.status_code == 422
        assert "no account nope: name a 400 number of the plans or tariffs.yaml" in html.unescape(
            typo.text
        )
        assert 'value="newdesk"' in typo.text  # the form comes back as it was sent
        known = await ops.post("/users", data={**form, "name": "newdesk", "account": SHOP})
        assert known.status_code == 303
        assert [u.account for u in await site.store.users() if u.name == "newdesk"] == [SHOP]
        await ops.aclose()


async def test_consoles_sharing_the_secret_accept_each_others_forms(tmp_path: Path) -> None:
    """Two console processes behind one address: a form one rendered posts to the other
    when both sign forms with HOTLINE400_CONSOLE_SECRET; a console with a key of its own
    refuses it."""
    shared = console_secret({SECRET_ENV: "a long shared console secret, 40 chars"})
    async with running_console(tmp_path, secret=shared) as site:
        twin = create_app(
            site.config_dir, site.store, clock=site.clock, secure_cookies=False, secret=shared
        )
        stranger = create_app(site.config_dir, site.store, clock=site.clock, secure_cookies=False)
        async with serving(twin) as twin_url, serving(stranger) as stranger_url:
            shop = await site.signed_in("shop")  # the session is in the shared store
            token = await csrf_of(shop, "/password")
            form = {"csrf": token, "current": "not-the-one", "new": "another-password-1"}
            accepted = await shop.post(f"{twin_url}/password", data=form)
            refused = await shop.post(f"{stranger_url}/password", data=form)
            await shop.aclose()
    assert accepted.status_code != 403
    assert refused.status_code == 403


def test_the_console_secret_is_read_whole_from_the_environment_or_not_at_all() -> None:
    value = "x" * MIN_SECRET_LENGTH
    assert console_secret({}) is None and console_secret({SECRET_ENV: ""}) is None
    assert console_secret({SECRET_ENV: value}) == console_secret({SECRET_ENV: value})
    assert console_secret({SECRET_ENV: value}) != console_secret({SECRET_ENV: value + "y"})
    with pytest.raises(WeakSecret):
        console_secret({SECRET_ENV: value[1:]})


async def test_consoles_on_one_store_count_failed_sign_ins_together(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        twin = create_app(site.config_dir, site.store, clock=site.clock, secure_cookies=False)
        async with (
            serving(twin) as twin_url,
            site.client() as here,
            httpx.AsyncClient(base_url=twin_url) as there,
        ):
            for client in (here, here, here, there, there):
                assert (await sign_in(client, "shop", "not-the-one")).status_code == 401
            assert (await sign_in(here, "shop")).status_code == 429
            assert (await sign_in(there, "shop")).status_code == 429


async def test_a_link_cannot_put_words_of_its_own_on_the_money_page(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        shop = await site.signed_in("shop")
        forged = "Your account is closed: call 400-000-0000 and give your password"
        money = f"/numbers/{SHOP}/money"
        for query in (
            f"?problem={forged}",
            f"?problem={forged}&sig=" + "0" * 64,
            f"?problem={forged}&sig=签名",
        ):
            page = await shop.get(money + query)
            assert page.status_code == 200
            assert "Your account is closed" not in page.text
        await shop.aclose()


async def test_a_link_cannot_put_words_of_its_own_on_the_users_or_routing_page(
    tmp_path: Path,
) -> None:
    async with running_console(tmp_path) as site:
        shop = await site.signed_in("shop")
        forged = "Your account is closed: call 400-000-0000 and give your password"
        users = await shop.get("/users", params={"error": forged})
        assert users.status_code == 200 and "Your account is closed" not in users.text
        routing = f"/numbers/{SHOP}/routing"
        for saved in (f"1. {forged}", "7", "99999999999999999999999"):
            page = await shop.get(routing, params={"saved": saved})
            assert page.status_code == 200
            assert "Saved as version" not in page.text, saved  # no version 7 was ever saved
        token = await csrf_of(shop, "/users")
        wrong_role = await shop.post(
            "/users",
            data={"csrf": token, "name": "newstaff", "role": "boss", "password": PASSWORD},
        )
        assert wrong_role.status_code == 422
        assert "choose a role: subscriber-staff, subscriber-admin" in wrong_role.text
        await shop.aclose()


async def test_a_refused_new_user_comes_back_as_typed_with_the_error_in_its_form(
    tmp_path: Path,
) -> None:
    async with running_console(tmp_path) as site:
        shop = await site.signed_in("shop")
        token = await csrf_of(shop, "/users")
        refused = await shop.post(
            "/users",
            data={"csrf": token, "name": "li.wei", "role": "subscriber-staff", "password": "short"},
        )
        assert refused.status_code == 422
        form = refused.text[refused.text.index('<form method="post" action="/users"') :]
        assert 'role="alert"' in form  # by the fields, not above the list of users
        assert 'name="name" value="li.wei"' in form
        await shop.aclose()


async def test_a_receipt_already_booked_is_said_so_and_not_audited_as_booked(
    tmp_path: Path,
) -> None:
    async with running_console(tmp_path) as site:
        ops = await site.signed_in("ops")
        money = f"/numbers/{SHOP}/money"
        token = await csrf_of(ops, money)
        payments = f"{money}/payments"
        first = await ops.post(payments, data={"csrf": token, "amount": "600.00", "ref": "R-1"})
        assert first.headers["location"] == money
        again = await ops.post(payments, data={"csrf": token, "amount": "300.00", "ref": "R-1"})
        assert again.status_code == 409
        page = again
        receipt_field = re.search(r"<label>Receipt .*?</label>", page.text, re.S)
        assert receipt_field is not None and "is already booked" in receipt_field.group()
        assert 'name="amount" value="300.00"' in page.text and 'value="R-1"' in page.text
        assert "Receipt R-1 is already booked (600.00 yuan on 2026-11-24 15:00)" in page.text
        assert "this payment of 300.00 yuan was not booked" in page.text
        assert 'data-testid="balance">600.00<' in page.text
        entries = [
            (entry.action, entry.detail)
            for entry in await site.store.audit_log()
            if "payment" in entry.action
        ]
        assert sorted(entries) == [
            ("book payment", "600.00 yuan, ref R-1"),
            (
                "refused: book payment",
                "300.00 yuan, ref R-1: already booked (600.00 yuan on 2026-11-24 15:00)",
            ),
        ]
        await ops.aclose()


@pytest.mark.parametrize(
    ("amount", "booked"), [("12.300", "12.30"), ("1E+2", "100.00"), ("0.5", "0.50"), ("7", "7.00")]
)
async def test_a_payment_is_booked_and_audited_to_the_fen(
    tmp_path: Path, amount: str, booked: str
) -> None:
    async with running_console(tmp_path) as site:
        ops = await site.signed_in("ops")
        token = await csrf_of(ops, f"/numbers/{SHOP}/money")
        response = await ops.post(
            f"/numbers/{SHOP}/money/payments", data={"csrf": token, "amount": amount, "ref": "R"}
        )
        assert response.headers["location"] == f"/numbers/{SHOP}/money"
        assert [str(entry.amount) for entry in await site.store.ledger(SHOP)] == [booked]
        [audited] = [e for e in await site.store.audit_log() if e.action == "book payment"]
        assert audited.detail == f"{booked} yuan, ref R"
        await ops.aclose()


async def test_changing_a_password_ends_the_users_other_sessions(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        here = await site.signed_in("shop")
        elsewhere = await site.signed_in("shop")
        staff = await site.signed_in("shopstaff")
        token = await csrf_of(here, "/password")
        new = "new password 1"
        changed = await here.post(
            "/password", data={"csrf": token, "current": PASSWORD, "new": new, "again": new}
        )
        assert changed.status_code == 303
        assert (await here.get("/")).status_code == 200  # the session that changed it goes on
        assert (await elsewhere.get("/")).status_code == 303  # to sign in
        assert (await staff.get("/")).status_code == 200  # another user's: untouched
        for client in (here, elsewhere, staff):
            await client.aclose()


async def test_a_password_set_in_the_store_ends_every_session_but_the_one_kept(
    tmp_path: Path,
) -> None:
    """What an administrator setting someone's password gets: all its sessions end."""
    async with running_console(tmp_path) as site:
        one, two = await site.signed_in("shopstaff"), await site.signed_in("shopstaff")
        row = await site.store.user("shopstaff")
        assert row is not None
        assert await site.store.set_password("shopstaff", row.password_hash)
        assert (await one.get("/")).status_code == 303
        assert (await two.get("/")).status_code == 303
        assert not await site.store.set_password("nobody", row.password_hash)
        await one.aclose()
        await two.aclose()


async def test_failed_sign_ins_sent_at_once_are_throttled_too(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        clients = [site.client() for _ in range(40)]
        tokens = [await csrf_of(client, "/login") for client in clients]
        responses = await asyncio.gather(
            *(
                client.post(
                    "/login", data={"csrf": token, "name": "shop", "password": "not-the-one"}
                )
                for client, token in zip(clients, tokens, strict=True)
            )
        )
        statuses = Counter(response.status_code for response in responses)
        assert set(statuses) <= {401, 429} and statuses[401] <= 5, statuses
        # Those refused unheard do not count: the password is checked five times in all.
        while (await sign_in(clients[0], "shop", "not-the-one")).status_code == 401:
            statuses[401] += 1
        assert statuses[401] == 5
        assert (await sign_in(clients[0], "shop")).status_code == 429
        for client in clients:
            await client.aclose()


async def test_signing_in_to_an_own_account_does_not_reset_the_addresss_count(
    tmp_path: Path,
) -> None:
    """Someone guessing at the shop's password from one address, signing in to the account
    they have between guesses, is throttled after five failures all the same."""
    async with running_console(tmp_path) as site, site.client() as client:
        for _ in range(4):
            assert (await sign_in(client, "shop", "not-the-one")).status_code == 401
        async with site.client() as own:  # the same address, its own browser's session
            assert (await sign_in(own, "clinic")).status_code == 303
        assert (await sign_in(client, "shopstaff", "not-the-one")).status_code == 401
        assert (await sign_in(client, "ops")).status_code == 429
        async with site.client() as elsewhere:  # the same address: every user is throttled
            assert (await sign_in(elsewhere, "clinic")).status_code == 429


async def test_a_sign_in_forgives_the_users_own_failures(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:

        def at(address: str) -> httpx.AsyncClient:  # behind the console's proxy
            return httpx.AsyncClient(base_url=site.url, headers={"X-Forwarded-For": address})

        async with at("10.0.0.1") as office, at("10.0.0.2") as home, at("10.0.0.3") as cafe:
            for _ in range(4):
                assert (await sign_in(office, "shop", "not-the-one")).status_code == 401
            assert (await sign_in(home, "shop")).status_code == 303
            for _ in range(4):  # the shop's count starts afresh
                assert (await sign_in(cafe, "shop", "not-the-one")).status_code == 401
            assert (await sign_in(cafe, "shop")).status_code == 303
            assert (await sign_in(office, "shop", "not-the-one")).status_code == 401
            assert (await sign_in(office, "clinic")).status_code == 429  # the office's fifth


async def test_the_audit_log_pages_on_to_its_older_entries_each_once(tmp_path: Path) -> None:
    """A page shows the newest 200 entries; past them it links to the older ones, page
    after page, each entry once (these, written in the same moment, included)."""
    async with running_console(tmp_path) as site:
        for index in range(230):
            entry = AuditEntry(NOW, "shop", SHOP, "save plan", SHOP, f"entry {index}")
            await site.store.audit(entry)
        shop = await site.signed_in("shop")
        shown, path, pages = [], "/audit", 0
        while path:
            page = (await shop.get(path)).text
            shown += re.findall(r"<td>(entry \d+)</td>", page)
            older = re.search(r'<a href="(/audit\?older=[^"]+)"[^>]*>Older entries</a>', page)
            path, pages = html.unescape(older.group(1)) if older else "", pages + 1
            assert pages < 5, "the pages never end"
        assert pages == 2
        assert sorted(shown) == sorted(f"entry {index}" for index in range(230))
        await shop.aclose()
