"""The problems of the configuration the console runs on, as `hotline400 check` lists them.

The list is check's own (router.configuration.directory_check, the plans compared with the
inventory of the console's store), listed again when a file changed (a file broken or fixed
shows on the next page load, as the console's configuration itself does:
console.context.ConfigCache) or PROBLEMS_FRESH_S after the last listing (the inventory's
part). The operator sees every problem; a subscriber's user only those of its own number's
plan, which its routing page shows it already: the other files are the operator's and name
other subscribers' numbers.

A file with problems that the routers serve from its last good copy (router.configuration.
served) is listed with its problems all the same, and the copy's time said under it
(FileProblems.served): the console's pages show that copy, as the routers serve it.

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
from router.configuration.config_dir import PLANS_DIR, TARIFFS_FILE, ConfigSet, CopyServed
from router.configuration.directory_check import directory_problems
from router.numbers.plan_check import compared_with_store


@dataclass(frozen=True, slots=True)
class FileProblems:
    """One file's problems, as the page lists them under the file's name."""

    file: str
    problems: list[Problem]
    served: str | None = None
    """When the last good copy the routers serve instead was kept; None without one."""


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
    """The problems `check --config DIR` would print now, those `user` may see: of the
    files as they read, not of the copies serving for them."""
    config = console.configs.files()
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


def by_file(problems: list[Problem], served: dict[str, str] | None = None) -> list[FileProblems]:
    """The problems grouped by file, the files in the order check tells them; `served`,
    the time of the last good copy serving for a file (served_copies)."""
    files: dict[str, list[Problem]] = {}
    for problem in problems:
        files.setdefault(problem.file, []).append(problem)
    kept = served or {}
    return [FileProblems(file, found, kept.get(file)) for file, found in files.items()]


def served_copies(user: User, config: ConfigSet) -> dict[str, str]:
    """The files `user` may see that the routers serve from a last good copy, named as
    seen_by names their problems, each with the copy's time."""
    if user.is_operator:
        return {str(copy.file): copy.saved for copy in config.copies}
    copy = plan_copy(config, user.account) if user.account is not None else None
    if copy is None:
        return {}
    return {str(Path(config.directory.name) / PLANS_DIR / copy.file.name): copy.saved}


def plan_copy(config: ConfigSet, number: str) -> CopyServed | None:
    """The last good copy the routers serve for `number`'s plan file, if its file has
    problems and a copy loads."""
    plans = config.directory / PLANS_DIR
    return next(
        (c for c in config.copies if c.file.parent == plans and c.file.stem == number), None
    )


def file_anchor(file: str) -> str:
    """The id of a file's list on the problems page, for links to it."""
    return "file-" + re.sub(r"[^A-Za-z0-9]+", "-", file).strip("-")


def tariffs_broken(config: ConfigSet) -> Path | None:
    """tariffs.yaml when it is there and does not load; None otherwise. Its accounts,
    packages and features are then its last good copy's where the routers have one
    (config.copy_of), else unknown to the console; either way it is not written."""
    path = config.directory / TARIFFS_FILE
    if any(Path(p.file) == path for p in config.problems):
        return path
    return None
