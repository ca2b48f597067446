"""Load plan files, reporting every problem of a file at once with file, line and field.

Structure and field values are checked by the Plan model (the same model that produces the
JSON Schema); checks that span several parts of a plan run once the structure is sound.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from dialplan.errors import ConfigError, Problem
from dialplan.plan import (
    MAX_BUSY_FORWARDS,
    MAX_MENU_DEPTH,
    MAX_NO_ANSWER_FORWARDS,
    Plan,
    Route,
)
from dialplan.validation import problems_from_validation
from dialplan.yaml_source import YamlSource, read_config_text, read_yaml

log = logging.getLogger("hotline400.plans")


def load_plan(path: str | Path) -> Plan:
    """Read and validate one plan file; ConfigError lists every problem found."""
    path = Path(path)
    text = read_config_text(path)
    return parse_plan(str(path), text)


def parse_plan(file: str, text: str) -> Plan:
    source = read_yaml(file, text)
    problems = list(source.problems)
    built = source.data is not None or not source.problems  # else why is reported already
    if source.root is not None and built and not isinstance(source.data, dict):
        problems.append(source.problem((), "a plan is a mapping of keys (number:, name:, ...)"))
    if problems or source.root is None:
        raise ConfigError(problems or [source.problem((), "the file is empty")])
    try:
        plan = Plan.model_validate(source.data)
    except ValidationError as error:
        problems.extend(problems_from_validation(source, error, Plan))
        raise ConfigError(sorted(problems, key=lambda p: p.line)) from None
    problems.extend(_cross_checks(source, plan))
    expected = Path(file).stem
    if Path(file).suffix in (".yaml", ".yml") and expected != plan.number:
        problems.append(
            source.problem(
                ("number",), f"{plan.number} does not match the file name {expected}.yaml"
            )
        )
    if problems:
        raise ConfigError(sorted(problems, key=lambda p: p.line))
    return plan


def _cross_checks(source: YamlSource, plan: Plan) -> Iterable[Problem]:
    """Limits that span the plan: forwarding numbers per subscriber, rule names, PIN,
    recording and survey use, a hold queue that could ever hold anyone, menus named and
    nested within bounds."""
    yield from _forwarding_limits(source, plan)
    yield from _menu_links(source, plan)
    seen: dict[str, int] = {}
    for index, rule in enumerate(plan.rules):
        if rule.name in seen:
            yield source.problem(
                ("rules", index, "name"),
                f"rule name {rule.name!r} is already used by rules[{seen[rule.name]}]",
            )
        seen.setdefault(rule.name, index)
    for path, route in plan.routes():
        yield from _idle_on_menu_route(source, path, route)
        if route.announcement is not None and route.reject is None:
            yield source.problem(
                (*path, "announcement"),
                "an announcement plays only before a refusal (reject:); this route refuses nothing",
            )
        if route.require_pin and plan.pin is None:
            yield source.problem(
                (*path, "require_pin"), "require_pin needs a pin: section in the plan"
            )
        if route.record and (plan.recording is None or plan.recording.applies_to == "all"):
            why = (
                "needs a recording: section in the plan"
                if plan.recording is None
                else "does nothing while recording.applies_to is all (every call is recorded)"
            )
            yield source.problem((*path, "record"), f"record {why}")
        if route.record and route.reject is not None:
            yield source.problem((*path, "record"), "a route that refuses calls records nothing")
        if route.survey and (plan.survey is None or plan.survey.applies_to == "all"):
            why = (
                "needs a survey: section in the plan"
                if plan.survey is None
                else "does nothing while survey.applies_to is all (every answered call is asked)"
            )
            yield source.problem((*path, "survey"), f"survey {why}")
        if route.survey and route.reject is not None:
            yield source.problem((*path, "survey"), "a route that refuses calls surveys nobody")
    yield from _mobiles_once(source, plan)
    yield from _features_for_no_route(source, plan)
    if plan.queue is not None and not plan.call_limits:
        yield source.problem(
            ("queue",),
            "no destination of the plan has max_calls, so no caller would ever be held: "
            "give the destinations of a route max_calls, or remove queue:",
        )


_DIALLING_ONLY = ("record", "survey", "require_pin", "ring_timeout", "forwarding")
"""A route's settings that act on the Dial it makes; a route that plays a menu makes none,
nor does a menu option that plays its menu again."""


def _idle_on_menu_route(
    source: YamlSource, path: tuple[str | int, ...], route: Route
) -> Iterable[Problem]:
    """A route that plays a menu, or repeats one, dials nothing itself (a key chooses the
    route that does): a dialling setting written on it would silently do nothing."""
    if route.menu is not None:
        where = "on a route that plays a menu: set it on the menu's options"
    elif getattr(route, "repeat", None):
        where = "on an option that plays the menu again"
    else:
        return
    for name in _DIALLING_ONLY:
        if getattr(route, name) not in (None, False):
            yield source.problem((*path, name), f"{name} does nothing {where}")


def _features_for_no_route(source: YamlSource, plan: Plan) -> Iterable[Problem]:
    """A recording or survey for the routes that ask for it, and no route asks."""
    routes = [route for _, route in plan.routes()]
    recording, survey = plan.recording, plan.survey
    if recording and recording.applies_to == "rules" and not any(r.record for r in routes):
        yield source.problem(
            ("recording", "applies_to"),
            "no route has record: true, so no call is recorded: mark the routes to record, "
            "or write applies_to: all",
        )
    if survey and survey.applies_to == "rules" and not any(r.survey for r in routes):
        yield source.problem(
            ("survey", "applies_to"),
            "no route has survey: true, so nobody is asked: mark the routes to survey, or "
            "write applies_to: all",
        )


def _mobiles_once(source: YamlSource, plan: Plan) -> Iterable[Problem]:
    """A mobile listed twice in sms_to (in any spelling) would get every message twice."""
    mobiles = plan.notifications.sms_to if plan.notifications is not None else []
    for index, number in enumerate(mobiles):
        if number in mobiles[:index]:
            yield source.problem(("notifications", "sms_to", index), f"{number!r} is listed twice")


def _menu_links(source: YamlSource, plan: Plan) -> Iterable[Problem]:
    """Every `menu:` names a menu of the plan, and no caller goes deeper than
    MAX_MENU_DEPTH menus or round in a loop (`repeat` plays a menu again)."""
    for path, route in plan.routes():
        if route.menu is not None and route.menu not in plan.menus:
            known = ", ".join(sorted(plan.menus)) or "none defined"
            yield source.problem((*path, "menu"), f"no menu named {route.menu!r} (menus: {known})")
    for name in plan.menus:
        chain = _deepest_chain(plan, [name])
        if len(chain) > MAX_MENU_DEPTH:
            loop = chain[-1] in chain[:-1]
            what = "loops back" if loop else f"nests {len(chain)} menus deep"
            yield source.problem(
                ("menus", name),
                f"menu {name!r} {what} ({' -> '.join(chain)}); menus nest at most "
                f"{MAX_MENU_DEPTH} deep and never loop (an option `repeat` plays a menu again)",
            )


def _deepest_chain(plan: Plan, chain: list[str]) -> list[str]:
    """The longest way down from chain[-1], cut once it passes the depth limit."""
    if len(chain) > MAX_MENU_DEPTH:
        return chain
    menu = plan.menus.get(chain[-1])
    deepest = chain
    for below in menu.submenus() if menu is not None else []:
        if below in plan.menus:
            found = _deepest_chain(plan, [*chain, below])
            if len(found) > len(deepest):
                deepest = found
    return deepest


def _forwarding_limits(source: YamlSource, plan: Plan) -> Iterable[Problem]:
    """A subscriber registers at most 2 busy and 2 no-answer numbers: the plan's forwarding
    and every rule's own forwarding together, each number counted once per list. The
    problem points at the list where the number over the limit first appears."""
    forwarding_sets = [(("forwarding",), plan.forwarding)] + [
        ((*path, "forwarding"), route.forwarding)
        for path, route in plan.routes()
        if route.forwarding is not None
    ]
    for field, limit, what in (
        ("on_busy", MAX_BUSY_FORWARDS, "busy"),
        ("on_no_answer", MAX_NO_ANSWER_FORWARDS, "no-answer"),
    ):
        registered: list[str] = []
        over_at: tuple[str | int, ...] | None = None
        for path, forwarding in forwarding_sets:
            for number in getattr(forwarding, field):
                if number not in registered:
                    registered.append(number)
                    if len(registered) > limit and over_at is None:
                        over_at = (*path, field)
        if over_at is not None:
            yield source.problem(
                over_at,
                f"{len(registered)} different {what} forwarding numbers across the plan "
                f"({', '.join(registered)}), at most {limit} per subscriber "
                f"(2 for busy and 2 for no-answer, rule overrides included)",
            )


def load_plans(
    directory: str | Path, texts: dict[Path, str] | None = None
) -> tuple[dict[str, Plan], list[Problem]]:
    """Every plan of a directory; files with problems are left out and their problems returned.
    `texts`, when given, receives the text each loaded plan was read from (the very version
    that loaded, for whoever keeps a copy of it).

    Never raises for what a file holds: a file that breaks the checks themselves is reported
    as a problem too (and logged with its traceback), so the other plans still load and the
    daemon's reload and file watcher go on. A number has one file: beside N.yaml (the file
    the console writes), an N.yml is a problem and left out, never a plan that silently
    replaces the one saved."""
    plans: dict[str, Plan] = {}
    problems: list[Problem] = []
    for path in sorted(Path(directory).glob("*.y*ml")):
        if path.suffix not in (".yaml", ".yml"):
            continue
        if path.suffix == ".yml" and path.with_suffix(".yaml").exists():
            problems.append(
                Problem(
                    str(path),
                    1,
                    "(file)",
                    f"{path.stem}.yaml is this number's plan; remove one of the two files",
                )
            )
            continue
        try:
            text = read_config_text(path)
            plan = parse_plan(str(path), text)
        except ConfigError as error:
            problems.extend(error.problems)
            continue
        except Exception as error:  # one file must never stop the others loading
            log.exception("plan %s could not be checked", path)
            problems.append(
                Problem(str(path), 1, "(file)", f"could not be checked: {type(error).__name__}")
            )
            continue
        plans[plan.number] = plan
        if texts is not None:
            texts[path] = text
    return plans, problems
