"""Editing a routing plan from the console: validate, preview; console.file_writing writes it.

A plan is checked by the same code as `hotline400 check` (dialplan.plan_loader.parse_plan),
so the console shows the same `file:line field: message` errors. A saved plan replaces the
file in one rename, so a router reloading at that instant reads the old plan or the new one,
never half of one; every router watching the directory picks it up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from dialplan.errors import ConfigError, Problem
from dialplan.evaluator import RoutingState, decide
from dialplan.geo import locate
from dialplan.matchers import Call, describe_caller
from dialplan.plan import NumberStatus, Plan
from dialplan.plan_loader import parse_plan
from router.call.features import IVR, feature_on
from router.call.pin_guard import WITHHELD
from router.commands.simulate import (
    decision_lines,
    features_off,
    not_in_service_line,
    pin_guard_unreadable,
    pin_refused_until,
    standing_at,
    walk_menus,
)
from router.configuration.config_dir import PLANS_DIR, ConfigSet
from router.notifications.crm_address import Network, plan_problems
from router.storage.protocol import Store
from router.storage.sqlite import StoreUnavailable


def plan_path(config_dir: Path, number: str) -> Path:
    return config_dir / PLANS_DIR / f"{number}.yaml"


def shown_name(config_dir: Path, number: str) -> str:
    """The file name errors carry: as `hotline400 check` run beside the directory says it."""
    return str(Path(config_dir.name) / PLANS_DIR / f"{number}.yaml")


def validate(
    config_dir: Path, number: str, text: str, crm_networks: Sequence[Network] = ()
) -> tuple[Plan | None, list[Problem]]:
    """The plan, or its problems; besides `hotline400 check`'s, a `crm.url` the router may
    not send to (the subscriber writes it: public addresses and `crm_networks` only)."""
    name = shown_name(config_dir, number)
    try:
        plan = parse_plan(name, text)
    except ConfigError as error:
        return None, list(error.problems)
    refused = plan_problems(name, text, plan, crm_networks)
    return (None, refused) if refused else (plan, [])


def declared_status(config_dir: Path, number: str, text: str) -> NumberStatus | None:
    """The status a plan's text gives its number: as the plan parses, or, for a text that
    does not parse, as its `status` field reads (active without one); None when not even
    that can be read."""
    plan, _ = validate(config_dir, number, text)
    if plan is not None:
        return plan.status
    data = _mapping(text)
    if data is None:
        return None
    try:
        return NumberStatus(data.get("status", NumberStatus.ACTIVE.value))
    except ValueError:
        return None


def declared_crm_key(config_dir: Path, number: str, text: str) -> str | None:
    """The variable of the routers' environment a plan's text signs its CRM events with
    (`crm.secret_env`): as the plan parses, or, for a text that does not parse, as the field
    reads; None without one."""
    plan, _ = validate(config_dir, number, text)
    if plan is not None:
        return plan.crm.secret_env if plan.crm is not None else None
    crm = (_mapping(text) or {}).get("crm")
    key = crm.get("secret_env") if isinstance(crm, dict) else None
    return key if isinstance(key, str) else None


def _mapping(text: str) -> dict[str, Any] | None:
    """A plan's text read as plain YAML, when it is a mapping; None otherwise."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True, slots=True)
class CommonSettings:
    """What most subscribers change: where calls go by default and the forwarding numbers."""

    default_target: str
    on_busy: list[str]
    on_no_answer: list[str]

    @classmethod
    def of(cls, text: str) -> CommonSettings | None:
        """The settings as the file states them, or None when the form cannot show them
        (a default that splits or rejects, forwarding that is not a mapping of lists, or a
        file that is not a mapping): the page then shows the plan's own problems instead."""
        data = _mapping(text)
        if data is None:
            return None
        default = data.get("default") or {}
        forwarding = data.get("forwarding") or {}
        target = default.get("target") if isinstance(default, dict) else None
        if not isinstance(target, str) or not isinstance(forwarding, dict):
            return None
        on_busy = forwarding.get("on_busy") or []
        on_no_answer = forwarding.get("on_no_answer") or []
        if not isinstance(on_busy, list) or not isinstance(on_no_answer, list):
            return None
        return cls(target, [str(n) for n in on_busy], [str(n) for n in on_no_answer])

    def applied_to(self, text: str) -> str:
        """The plan with these settings; the YAML editor keeps comments, the form does not."""
        data = yaml.safe_load(text)
        data.setdefault("default", {})["target"] = self.default_target
        forwarding = data.setdefault("forwarding", {})
        forwarding["on_busy"] = self.on_busy
        forwarding["on_no_answer"] = self.on_no_answer
        return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def number_list(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


async def preview(
    plan: Plan, caller: str, at: datetime, config: ConfigSet, store: Store, busy: set[str]
) -> list[str]:
    """What the plan would do with one call, as `hotline400 simulate` tells it: refused
    outright when the inventory has not put the number in service, and routed with the
    status the inventory gives it (suspended, arrears, cancelled, frozen connect no call)
    and the counters the router reads (a prepaid balance spent, a cap reached refuse it);
    a caller the PIN guard blocks refused before the prompt; its menus walked by a caller
    pressing nothing (each menu's default), or not played at all when the number's account
    has no ivr feature that day, as the router does; nor a recording or survey the account
    has not switched on. The standing and the guard are read from the routers' store
    through simulate's own `standing_at` and `pin_refused_until`; a store that cannot be
    read leaves them out, as the router lets the call through then, and the preview says
    so."""
    call = Call(plan.number, locate(caller))
    heading = f"call from {describe_caller(call.caller)} at {at:%a %Y-%m-%d %H:%M}"
    local = at.astimezone(plan.zone())
    settings, tariffs = config.settings, config.tariffs
    standing = await standing_at(store, settings, tariffs, config.number_rules, plan, local)
    if standing.out_of_service is not None:
        return [heading, not_in_service_line(plan, standing.out_of_service)]
    lines = [heading, standing.counters] if standing.counters else [heading]
    try:
        refused = await pin_refused_until(
            store, settings, plan, call.caller.number or WITHHELD, local
        )
    except StoreUnavailable as error:
        refused = None
        lines.append(pin_guard_unreadable(str(error)))
    state = RoutingState(config.calendar)
    decision = decide(plan, call, local, standing.usage, state)
    walk_menus(plan, decision, "", state, feature_on(plan, tariffs, IVR, at))
    off = features_off(plan, tariffs, at)
    return [*lines, *decision_lines(decision, busy, set(), off, refused)]
