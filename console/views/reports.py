"""Reports: a number's (or all the user's numbers') calls over a span of local days."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from console.charts import chart_series
from console.reports import build_report, read_day
from console.views.calls import calls_of
from console.web import console_of, render, scope_of, user_of, visible_number

DEFAULT_DAYS = 30
MAX_DAYS = 366
UNANSWERED_LISTED = 20
"""The newest unanswered calls the report lists; the call records search has them all."""


async def reports_page(request: Request) -> Response:
    console, user = console_of(request), user_of(request)
    query = request.query_params
    today = console.now().date()
    problems: list[str] = []
    first = _day(query.get("from"), today - timedelta(days=DEFAULT_DAYS - 1), "from", problems)
    last = _day(query.get("to"), today, "to", problems)
    if last < first:
        problems.append("to: the last day comes before the first")
        first, last = last, first
    if (last - first).days >= MAX_DAYS:
        problems.append(f"a report covers at most {MAX_DAYS} days")
        first = last - timedelta(days=MAX_DAYS - 1)
    chosen = query.get("number", "")
    numbers = [visible_number(request, chosen)] if chosen else console.numbers_for(user)
    scope = scope_of(request)
    report = await build_report(console.store, numbers, first, last, console.zone, scope.since)
    since = scope.start(datetime.combine(first, time(), console.zone))
    until = datetime.combine(last + timedelta(days=1), time(), console.zone)
    unanswered_ids = await console.store.call_ids(
        numbers, since=since, until=until, outcomes=("busy", "noanswer"), limit=UNANSWERED_LISTED
    )
    return render(
        request,
        "reports.html",
        {
            "report": report,
            "series": chart_series(report),
            "chosen": chosen,
            "first": first,
            "last": last,
            "problems": problems,
            "unanswered": await calls_of(console, unanswered_ids),
            "unanswered_search": urlencode(
                {"number": chosen, "outcome": "unanswered", "since": first, "until": last}
            ),
        },
    )


def _day(text: str | None, default: date, name: str, problems: list[str]) -> date:
    if not text:
        return default
    try:
        return read_day(text)
    except ValueError as error:
        problems.append(f"{name}: {error}")
        return default
