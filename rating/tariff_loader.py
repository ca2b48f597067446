"""Load config/tariffs.yaml, reporting every problem at once with file, line and field.

Structure and values are checked by the Tariffs model (the same model that produces the
JSON Schema); names that must point somewhere (an account's package and features, account
numbers) are checked once the structure is sound, then each package's price changes
against the notice a rise needs (rating.price_changes).
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from dialplan.errors import ConfigError
from dialplan.validation import problems_from_validation
from dialplan.yaml_source import read_config_text, read_yaml
from rating.price_changes import notice_problems
from rating.tariff import DEFAULT_TIMEZONE, Tariffs

ZONE_KEY = "timezone"


def load_tariffs(path: str | Path, zone: ZoneInfo | None = None) -> Tariffs:
    """Read and validate a tariff file; ConfigError lists every problem found.

    `zone` is the billing time zone (router.yaml's `timezone`, Asia/Shanghai when not
    given): the file does not name one, so counters, caps, rate periods and bills are all
    read in the same zone."""
    path = Path(path)
    text = read_config_text(path)
    return parse_tariffs(str(path), text, zone)


def parse_tariffs(file: str, text: str, zone: ZoneInfo | None = None) -> Tariffs:
    source = read_yaml(file, text)
    problems = list(source.problems)
    if source.root is not None and not isinstance(source.data, dict):
        problems.append(
            source.problem((), "a tariff file is a mapping of keys (caller_tariffs:, ...)")
        )
    if problems or source.root is None:
        raise ConfigError(problems or [source.problem((), "the file is empty")])
    data = dict(source.data)
    if ZONE_KEY in data:
        del data[ZONE_KEY]
        problems.append(
            source.problem(
                (ZONE_KEY,),
                "the billing time zone is router.yaml's timezone; remove it from this file",
            )
        )
    data[ZONE_KEY] = (zone or ZoneInfo(DEFAULT_TIMEZONE)).key
    try:
        tariffs = Tariffs.model_validate(data)
    except ValidationError as error:
        problems.extend(problems_from_validation(source, error, Tariffs))
        raise ConfigError(sorted(problems, key=lambda p: p.line)) from None
    problems.extend(source.problem(path, message) for path, message in tariffs.reference_problems())
    if not problems:
        problems.extend(source.problem(path, message) for path, message in notice_problems(tariffs))
    if problems:
        raise ConfigError(sorted(problems, key=lambda p: p.line))
    return tariffs
