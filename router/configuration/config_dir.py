"""Everything an admin edits in one config directory, loaded together.

The layout is fixed so an admin never wonders where a setting lives:
router.yaml, calendar.yaml, tariffs.yaml, numbers.yaml and plans/<400 number>.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dialplan.calendar import OfficialCalendar, load_calendar
from dialplan.errors import ConfigError, Problem
from dialplan.plan import Plan
from dialplan.plan_loader import load_plans
from numbering.rules import NumberRules
from rating.tariff import Tariffs
from rating.tariff_loader import load_tariffs
from router.configuration.number_rules import NUMBERS_FILE, load_number_rules
from router.configuration.settings import RouterSettings, load_settings

CALENDAR_FILE = "calendar.yaml"
TARIFFS_FILE = "tariffs.yaml"
PLANS_DIR = "plans"


@dataclass(frozen=True, slots=True)
class CopyServed:
    """A file with problems that the routers serve from its last good copy (`copy`, kept
    at `saved`): router.configuration.served."""

    file: Path
    copy: Path
    saved: str


@dataclass
class ConfigSet:
    """Settings, calendar and the plans that loaded; problems of the files that did not."""

    directory: Path
    settings: RouterSettings = field(default_factory=RouterSettings)
    calendar: OfficialCalendar = field(default_factory=OfficialCalendar)
    tariffs: Tariffs | None = None
    number_rules: NumberRules = field(default_factory=NumberRules)
    plans: dict[str, Plan] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    copies: list[CopyServed] = field(default_factory=list)
    """The files with problems whose last good copy stands in for them: none as load_config
    reads a directory (as `check` does), the routers' own as_served ones."""

    def copy_of(self, file: Path) -> CopyServed | None:
        """The copy serving for config file `file`, if one does."""
        return next((copy for copy in self.copies if copy.file == file), None)


def load_config(directory: str | Path) -> ConfigSet:
    """Load a config directory, collecting every problem instead of stopping at the first."""
    config = ConfigSet(Path(directory))
    if not config.directory.is_dir():
        config.problems.append(Problem(str(directory), 1, "(directory)", "no such directory"))
        return config
    try:
        config.settings = load_settings(config.directory)
    except ConfigError as error:
        config.problems.extend(error.problems)
    try:
        config.calendar = load_calendar(config.directory / CALENDAR_FILE)
    except ConfigError as error:
        config.problems.extend(error.problems)
    if (config.directory / TARIFFS_FILE).exists():
        try:
            config.tariffs = load_tariffs(config.directory / TARIFFS_FILE, config.settings.zone())
        except ConfigError as error:
            config.problems.extend(error.problems)
    try:
        config.number_rules = load_number_rules(
            config.directory / NUMBERS_FILE, config.settings.zone()
        )
    except ConfigError as error:
        config.problems.extend(error.problems)
    config.plans, plan_problems = load_plans(config.directory / PLANS_DIR)
    config.problems.extend(plan_problems)
    return config
