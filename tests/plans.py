"""Plans for tests, written as an admin writes them: YAML text through the real loader."""

from __future__ import annotations

import textwrap
from datetime import datetime
from zoneinfo import ZoneInfo

from dialplan.calendar import OfficialCalendar
from dialplan.caps import Usage
from dialplan.decision import Decision
from dialplan.evaluator import RoutingState, decide
from dialplan.geo import locate
from dialplan.matchers import Call
from dialplan.plan import Plan
from dialplan.plan_loader import parse_plan

SHANGHAI = ZoneInfo("Asia/Shanghai")


def plan_from(yaml_text: str, number: str = "4006001234") -> Plan:
    head = f'number: "{number}"\nname: Test Co.\n'
    return parse_plan(f"{number}.yaml", head + textwrap.dedent(yaml_text))


def at(text: str) -> datetime:
    """'2026-10-01 09:30' in Beijing time."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)


def route(
    plan: Plan,
    caller: str = "053188889999",
    when: str = "2026-11-23 10:00",
    usage: Usage | None = None,
    state: RoutingState | None = None,
) -> Decision:
    call = Call(plan.number, locate(caller))
    return decide(plan, call, at(when), usage or Usage(), state or RoutingState(OfficialCalendar()))
