"""The dashboard: today's calls and money at a glance, redrawn as calls end.

The browser keeps an EventSource on /events; the console looks at the store every second
and sends an event when a call of the user's numbers has ended since, and the page then
fetches its summary again. Any router writing to the same store shows up, whichever
process took the call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from console.config_problems import by_file, current_problems, served_copies
from console.reports import Report, build_report
from console.views.calls import calls_of
from console.web import console_of, render, scope_of, user_of
from dialplan.plan import Caps
from rating.closing import month_span
from rating.money import ZERO, to_fen
from router.storage.rows import UsageSnapshot

POLL_SECONDS = 1.0
KEEPALIVE_POLLS = 15


@dataclass(frozen=True, slots=True)
class NumberMoney:
    number: str
    balance: Decimal
    month_cost: Decimal
    month_calls: int
    """The calls started this month (local days), as the reports count them."""
    cap_calls: int
    """The units of the monthly call cap taken: the calls it counts (incoming or answered);
    kept only for a number whose plan has the cap."""
    monthly_cost_cap: Decimal | None
    monthly_call_cap: int | None
    daily_cost_cap: Decimal | None
    low_balance: bool
    """A prepaid account's balance below its warning threshold."""
    owed: bool
    """A negative balance of a number without an account in tariffs.yaml: fees it owes
    (opening, selection) with no terms that will bill or collect them."""


async def dashboard(request: Request) -> Response:
    """Today's figures, and a notice of the configuration's problems when there are any:
    the operator learns there, not from a page that fails, that a file does not load."""
    console, user = console_of(request), user_of(request)
    problems = await current_problems(console, user)
    files = by_file(problems, served_copies(user, console.config))
    return render(
        request,
        "dashboard.html",
        {**await _summary(request), "problem_count": len(problems), "problem_files": files},
    )


async def summary(request: Request) -> Response:
    return render(request, "dashboard_summary.html", await _summary(request))


async def _summary(request: Request) -> dict[str, object]:
    console, user, scope = console_of(request), user_of(request), scope_of(request)
    numbers = console.numbers_for(user)
    now = console.now()
    report: Report = await build_report(
        console.store, numbers, now.date(), now.date(), console.zone, scope.since
    )
    money = [await number_money(request, number, now) for number in numbers]
    today = scope.start(datetime.combine(now.date(), time(), console.zone))
    # Today's calls only: newest first across many numbers sorts a day, not the whole store.
    recent = await calls_of(console, await console.store.call_ids(numbers, since=today, limit=10))
    return {"report": report, "money": money, "recent": recent}


async def number_money(request: Request, number: str, now: datetime) -> NumberMoney:
    console = console_of(request)
    usage: UsageSnapshot = await console.store.usage(number, f"{now:%Y-%m}", f"{now:%Y-%m-%d}")
    plan = console.config.plans.get(number)
    caps = plan.caps if plan is not None else Caps()
    tariffs = console.config.tariffs
    account = tariffs.accounts.get(number) if tariffs is not None else None
    balance = usage.balance if usage.balance is not None else ZERO
    mix = await console.store.call_mix([number], *month_span(f"{now:%Y-%m}", console.zone))
    return NumberMoney(
        number,
        balance,
        usage.month_cost,
        sum(mix.outcomes.values()),
        usage.month_calls,
        _to_fen(caps.monthly_cost),  # a plan may write 3000 or 300.5
        caps.monthly_calls,
        _to_fen(caps.daily_cost),
        account is not None and account.prepaid and balance < account.low_balance_warning,
        account is None and balance < ZERO,
    )


def _to_fen(amount: Decimal | None) -> Decimal | None:
    return None if amount is None else to_fen(amount)


async def events(request: Request) -> Response:
    """Server-sent events: `calls` whenever a call of the user's numbers ends."""
    console, user, scope = console_of(request), user_of(request), scope_of(request)
    numbers = console.numbers_for(user)

    async def stream() -> AsyncIterator[str]:
        since = scope.start(datetime.combine(console.now().date(), time(), console.zone))
        mark = await console.store.finished_mark(numbers, since)
        yield "retry: 3000\n\n"
        quiet = 0
        while not await request.is_disconnected():
            await asyncio.sleep(POLL_SECONDS)
            current = await console.store.finished_mark(numbers, since)
            if current != mark:
                mark, quiet = current, 0
                yield f"event: calls\ndata: {current}\n\n"
            else:
                quiet += 1
                if quiet >= KEEPALIVE_POLLS:  # proxies close connections that stay silent
                    quiet = 0
                    yield ": keep-alive\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
