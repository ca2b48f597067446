"""The configuration as the routers serve it: the files as `check` reads them, each file
with problems replaced by its last good copy in the spool_dir router.yaml names, as a
router started now serves it (router.configuration.plan_book). A tariffs.yaml that parses
but that the routers refuse against that copy (router.configuration.tariff_takeover
.refused_by_routers) is such a file.

The console shows this, so the operator and the subscribers see what answers the calls,
not a number missing because tariffs.yaml is mid-edit. A running router serves what it
last loaded, which is that copy (a copy is written whenever a file loads). The problems
stay listed: they are the files', and the files are still to be fixed. The copies are only
read here, never written or removed: they are the routers'. Where a file has no copy (a
first start, a console on another host than the routers) it is left out, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TypeVar

from dialplan.calendar import parse_calendar
from dialplan.plan import Plan
from dialplan.plan_loader import parse_plan
from rating.tariff_loader import parse_tariffs
from router.configuration.config_dir import (
    CALENDAR_FILE,
    PLANS_DIR,
    TARIFFS_FILE,
    ConfigSet,
    CopyServed,
)
from router.configuration.last_good import LAST_GOOD_DIR, LastGood
from router.configuration.number_rules import NUMBERS_FILE, parse_number_rules
from router.configuration.settings import ROUTER_FILE

T = TypeVar("T")


def as_served(config: ConfigSet) -> ConfigSet:
    """`config` with its files that have problems served from their last good copies,
    those named in `copies`. Unchanged when router.yaml has problems: where the routers
    keep their copies is then not known."""
    broken = {Path(problem.file) for problem in config.problems}
    if not broken or config.directory / ROUTER_FILE in broken:
        return config
    zone = config.settings.zone()
    copies = LastGood(Path(config.settings.spool_dir) / LAST_GOOD_DIR, zone)
    served: list[CopyServed] = []

    def stand_in(name: str, parse: Callable[[str, str], T], value: T) -> T:
        """The copy of `name` when the file has problems and a copy loads; else `value`."""
        file = config.directory / name
        if file not in broken:
            return value
        copy = copies.load(name, parse)
        if copy is None:
            return value
        served.append(CopyServed(file, copy.path, copy.saved))
        return copy.value

    plans = dict(config.plans)
    for file in sorted(path for path in broken if path.parent == config.directory / PLANS_DIR):
        if file.stem not in plans:  # not an N.yml beside the N.yaml that loaded
            plan: Plan | None = stand_in(f"{PLANS_DIR}/{file.name}", parse_plan, None)
            if plan is not None:
                plans[file.stem] = plan
    return replace(
        config,
        calendar=stand_in(CALENDAR_FILE, parse_calendar, config.calendar),
        tariffs=stand_in(TARIFFS_FILE, partial(parse_tariffs, zone=zone), config.tariffs),
        number_rules=stand_in(
            NUMBERS_FILE, partial(parse_number_rules, zone=zone), config.number_rules
        ),
        plans=plans,
        copies=served,
    )
