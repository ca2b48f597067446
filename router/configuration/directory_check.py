"""The problems of a configuration directory as `hotline400 check --config DIR` lists them,
in its order and words: the files' own, the plans' against the numbers' inventory, CRM
addresses the router will not send call events to, and prompts a plan plays that are not
there. `check` and the console's list of configuration problems both ask it, so the
operator reads in the console what `check` prints."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from dialplan.errors import Problem
from dialplan.plan import Plan
from router.configuration.config_dir import PLANS_DIR, ConfigSet
from router.configuration.prompts import missing_prompts
from router.notifications.crm_address import Network, plan_problems


def directory_problems(config: ConfigSet, against_inventory: Sequence[Problem]) -> list[Problem]:
    """Every problem of `config`'s directory; `against_inventory` are its plans' problems
    against the inventory (router.numbers.plan_check), read from the store the caller has."""
    found = [*config.problems, *against_inventory]
    found.extend(_crm_addresses(config.plans, config.directory, config.settings.crm_networks()))
    sounds = config.settings.sounds_dir
    if sounds is not None:
        for number, plan in sorted(config.plans.items()):
            found.extend(missing_prompts(plan, plan_file(config.directory, number), Path(sounds)))
    return found


def plan_file(config_dir: Path, number: str) -> Path:
    """The file a loaded plan came from (.yaml, or .yml when the number has only that)."""
    return next((config_dir / PLANS_DIR).glob(f"{number}.y*ml"))


def _crm_addresses(
    plans: Mapping[str, Plan], path: Path, allowed: Sequence[Network]
) -> list[Problem]:
    """Plans whose `crm.url` is an address the router will not send call events to."""
    problems: list[Problem] = []
    for number, plan in sorted(plans.items()):
        if plan.crm is None:
            continue
        file = plan_file(path, number)
        problems.extend(plan_problems(str(file), file.read_text(encoding="utf-8"), plan, allowed))
    return problems
