"""Plans against the inventory, for `hotline400 check`.

- A plan whose file writes a `status` the inventory contradicts is a problem at that line:
  the inventory's status is the one calls get, the periods that ran out by the check's
  instant run out (as for the calls), though no numbers tick has written them yet.
- A number a subscriber holds in the inventory without a plan (in service, suspended, in
  arrears or given notice), and a plan of a number the inventory does not hold, are
  warnings: the first refuses its calls as unknown, the second is routed by its plan's own
  status.
- A plan of a number nobody holds (back in the pool, frozen, cancelled) is a warning too:
  it is a past holder's, and whoever takes the number next would have its calls sent to
  that holder's phones unless the plan is replaced first.
- A plan whose `subscriber` is not the number's holder is a problem at that line: it is a
  past holder's, and the router routes none of the number's calls by it (refused as a
  number without a plan, router.numbers.service.past_holders_plan).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from dialplan.errors import Problem
from dialplan.plan import Plan
from numbering.lifecycle import NumberRecord, Status
from numbering.rules import NumberRules
from router.configuration.config_dir import PLANS_DIR, ConfigSet
from router.numbers.service import NOT_IN_SERVICE, past_holders_plan
from router.numbers.statuses import inventory_status
from router.storage.location import NoStore, store_for_command
from router.storage.protocol import Store, StoreUnavailable

NEEDS_PLAN = frozenset(
    {Status.ACTIVE, Status.SUSPENDED, Status.ARREARS, Status.CANCELLATION_REQUESTED}
)
"""A subscriber's number in these needs a plan: given notice, it connects calls for 30 days."""
_UNHELD = frozenset({Status.AVAILABLE, Status.FROZEN, Status.CANCELLED})
"""A number in these is nobody's: a plan left for it is a past holder's."""


def compare(
    directory: Path,
    plans: Mapping[str, Plan],
    records: Mapping[str, NumberRecord],
    held: Sequence[NumberRecord],
    at: datetime,
    rules: NumberRules,
) -> tuple[list[Problem], list[str]]:
    """The problems and warnings of the plans against the records as read, caught up to
    `at` by `rules`."""
    problems: list[Problem] = []
    warnings: list[str] = []
    for number, plan in sorted(plans.items()):
        path = directory / PLANS_DIR / f"{number}.yaml"
        record = records.get(number)
        if record is None:
            warnings.append(
                f"{path}: {number} is not in the numbers' inventory: its calls follow the "
                f"plan's status ({plan.status.value}); hotline400 numbers import"
            )
            continue
        now = inventory_status(record, at, rules)
        if now.status in _UNHELD:
            warnings.append(
                f"{path}: {number} is {now.status.value} in the inventory, held by nobody: "
                f"this plan is a past holder's; remove it, or replace it before the number "
                f"is given again (its calls would go to that holder's destinations)"
            )
        if (named := subscriber_problem(str(path), _text(path), plan, now.subscriber)) is not None:
            problems.append(named)
        on_calls = now.on_calls
        if "status" in plan.model_fields_set and on_calls != plan.status:
            said = "not in service" if on_calls == NOT_IN_SERVICE else str(on_calls)
            problems.append(
                Problem(
                    str(path),
                    line_of(_text(path), "status"),
                    "status",
                    f"{plan.status.value}, but the inventory has {number} "
                    f"{now.status.in_words} ({said} on calls): remove "
                    f"`status` from the plan, the inventory's counts",
                )
            )
    for record in held:
        status = inventory_status(record, at, rules).status
        if record.number not in plans and status in NEEDS_PLAN:
            warnings.append(
                f"{record.number} is {status.in_words} in the inventory (subscriber "
                f"{record.subscriber}) but has no plan: its calls are refused as unknown"
            )
    return problems, warnings


def subscriber_problem(file: str, text: str, plan: Plan, holder: str | None) -> Problem | None:
    """The problem of a plan (`text`, shown as `file`) naming a subscriber that does not hold
    its number (`holder` does, at the instant asked): a past holder's plan, which routes none
    of the number's calls. `check` and the console's plan saves both ask it."""
    if not past_holders_plan(plan, holder):
        return None
    return Problem(
        file,
        line_of(text, "subscriber"),
        "subscriber",
        f"{plan.subscriber}, but {holder} holds {plan.number}: a past holder's plan routes "
        f"none of its calls (refused as a number without a plan); write {holder}'s plan",
    )


def line_of(text: str, key: str) -> int:
    """The line of a plan's top-level `key` in its `text`; 1 when it has none."""
    lines = text.splitlines()
    return next((i for i, line in enumerate(lines, 1) if line.startswith(f"{key}:")), 1)


def _text(path: Path) -> str:
    """The plan file's text; "" when it cannot be read (its problems point at line 1)."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def check_against_inventory(config: ConfigSet, at: datetime) -> tuple[list[Problem], list[str]]:
    """Compare with the inventory of the routers' store as it stands at `at`, when there is
    one: a SQLite file no router has made yet holds no inventory, and is not made here."""
    try:
        _, store = store_for_command(config.settings)
    except NoStore:
        return [], []

    async def read() -> tuple[list[Problem], list[str]]:
        await store.open()
        try:
            return await compared_with_store(config, store, at)
        finally:
            await store.close()

    try:
        return asyncio.run(read())
    except StoreUnavailable as error:
        return [], [_unread(error)]


async def compared_with_store(
    config: ConfigSet, store: Store, at: datetime
) -> tuple[list[Problem], list[str]]:
    """Compare with the inventory of an open store (the console's): check's comparison."""
    try:
        records = await store.number_records(sorted(config.plans))
        held = await store.held_numbers()
    except StoreUnavailable as error:
        return [], [_unread(error)]
    return compare(config.directory, config.plans, records, held, at, config.number_rules)


def _unread(error: StoreUnavailable) -> str:
    return f"plans not compared with the numbers' inventory: {error}"
