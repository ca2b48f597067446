"""The problems of the configuration the console runs on, as `hotline400 check` lists them.

The list is check's own (router.configuration.directory_check, the plans compared with the
inventory of the console's store), listed again when a file changed (a file broken or fixed
shows on the next page load, as the console's configuration itself does:
console.context.ConfigCache) or PROBLEMS_FRESH_S after the last listing (the inventory's
part). The operator sees every problem; a subscriber's user only those of its own number's
plan, which its routing page shows it already: the other files are the operator's and name
other subscribers' numbers.

A page or change that cannot be done because a file is broken says which file, instead of
answering "not found" (BrokenFile).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

from starlette.exceptions import HTTPException

from console.context import CheckedProblems, Console
from console.users import User
from dialplan.errors import Problem
from router.configuration.config_dir import PLANS_DIR, TARIFFS_FILE, ConfigSet
from router.configuration.directory_check import directory_problems
from router.numbers.plan_check import compared_with_store


@dataclass(frozen=True, slots=True)
class FileProblems:
    """One file's problems, as the page lists them under the file's name."""

    file: str
    problems: list[Problem]


class BrokenFile(HTTPException):
    """What was asked cannot be done while `file` has problems (it does not load)."""

    def __init__(self, file: Path, cannot: str) -> None:
        super().__init__(503, f"{cannot} while {file.name} has problems.")
        self.file = str(file)


PROBLEMS_FRESH_S = 10.0
"""How long a listing of the problems serves every page that shows them, as long as no file
changed: the dashboard shows them on every load, to every user, and a listing reads the
whole inventory and every plan's prompts; a file changed is listed afresh at once."""


async def current_problems(console: Console, user: User) -> list[Problem]:
    """The problems `check --config DIR` would print now, those `user` may see."""
    config = console.config
    checked = console.checked
    if checked is None or checked.config is not config or _stale(checked):
        against_inventory, _ = await compared_with_store(config, console.store, console.now())
        problems = directory_problems(config, against_inventory)
        checked = console.checked = CheckedProblems(config, time.monotonic(), problems)
    return seen_by(user, config, checked.problems)


def _stale(checked: CheckedProblems) -> bool:
    return time.monotonic() - checked.at >= PROBLEMS_FRESH_S


def seen_by(user: User, config: ConfigSet, problems: list[Problem]) -> list[Problem]:
    """All of them for the operator; a subscriber's user, its own number's plan's, its file
    named as its routing page names it (console.plan_editing.shown_name), not by the path
    of the operator's directory."""
    if user.is_operator:
        return problems
    plans = config.directory / PLANS_DIR
    own = {plans / f"{user.account}.yaml", plans / f"{user.account}.yml"}
    shown = Path(config.directory.name) / PLANS_DIR
    return [
        replace(problem, file=str(shown / Path(problem.file).name))
        for problem in problems
        if Path(problem.file) in own
    ]


def by_file(problems: list[Problem]) -> list[FileProblems]:
    """The problems grouped by file, the files in the order check tells them."""
    files: dict[str, list[Problem]] = {}
    for problem in problems:
        files.setdefault(problem.file, []).append(problem)
    return [FileProblems(file, found) for file, found in files.items()]


def file_anchor(file: str) -> str:
    """The id of a file's list on the problems page, for links to it."""
    return "file-" + re.sub(r"[^A-Za-z0-9]+", "-", file).strip("-")


def tariffs_broken(config: ConfigSet) -> Path | None:
    """tariffs.yaml when it is there and did not load (its accounts, packages and features
    are then unknown to the console); None otherwise."""
    path = config.directory / TARIFFS_FILE
    if config.tariffs is None and any(Path(p.file) == path for p in config.problems):
        return path
    return None
