"""Load config/numbers.yaml: the grades and fees of numbers and every lifecycle period.

The file is optional: without it the common market terms of numbering.rules apply. Every
problem is reported with its file, line and field, as for the other configuration files.
The billing time zone, in which the months of a suspension are counted, is router.yaml's
`timezone`, given by the caller: the file does not name one.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from dialplan.errors import ConfigError
from dialplan.validation import problems_from_validation
from dialplan.yaml_source import read_config_text, read_yaml
from numbering.rules import NumberRules
from rating.tariff import DEFAULT_TIMEZONE

NUMBERS_FILE = "numbers.yaml"
ZONE_KEY = "timezone"
RETIRED = {
    ("timing", "keeping_month_days"): "a keeping month is a calendar month now (the "
    "suspension's day of the month, or the month's last day); remove this setting",
}
"""Settings that are gone, with what to do instead: a file still naming one is refused
with that, rather than with a bare 'unknown key'."""


def load_number_rules(path: Path, zone: ZoneInfo | None = None) -> NumberRules:
    """The rules of `path`, the defaults when it does not exist; ConfigError otherwise.
    `zone` is the billing time zone (Asia/Shanghai when not given)."""
    if not path.exists():
        return NumberRules(timezone=(zone or ZoneInfo(DEFAULT_TIMEZONE)).key)
    return parse_number_rules(str(path), read_config_text(path), zone)


def parse_number_rules(file: str, text: str, zone: ZoneInfo | None = None) -> NumberRules:
    """The rules `text` sets, its problems told as of `file`; ConfigError when it has any."""
    timezone = (zone or ZoneInfo(DEFAULT_TIMEZONE)).key
    source = read_yaml(file, text)
    if source.problems:
        raise ConfigError(source.problems)
    if source.root is None:
        return NumberRules(timezone=timezone)
    if not isinstance(source.data, dict):
        raise ConfigError([source.problem((), "a numbers file is a mapping (grades:, fees:, ...)")])
    data = dict(source.data)
    problems = []
    if ZONE_KEY in data:
        del data[ZONE_KEY]
        message = "the billing time zone is router.yaml's timezone; remove it from this file"
        problems.append(source.problem((ZONE_KEY,), message))
    for (section, key), message in RETIRED.items():
        if isinstance(data.get(section), dict) and key in data[section]:
            data[section] = {name: value for name, value in data[section].items() if name != key}
            problems.append(source.problem((section, key), message))
    try:
        rules = NumberRules.model_validate({**data, ZONE_KEY: timezone})
    except ValidationError as error:
        problems.extend(problems_from_validation(source, error, NumberRules))
    else:
        if not problems:
            return rules
    raise ConfigError(sorted(problems, key=lambda problem: problem.line))
