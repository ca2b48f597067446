"""Load config/numbers.yaml: the grades and fees of numbers and every lifecycle period.

The file is optional: without it the common market terms of numbering.rules apply. Every
problem is reported with its file, line and field, as for the other configuration files.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from dialplan.errors import ConfigError, Problem
from dialplan.validation import problems_from_validation
from dialplan.yaml_source import read_yaml
from numbering.rules import NumberRules

NUMBERS_FILE = "numbers.yaml"


def load_number_rules(path: Path) -> NumberRules:
    """The rules of `path`, the defaults when it does not exist; ConfigError otherwise."""
    if not path.exists():
        return NumberRules()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([Problem(str(path), 1, "(file)", f"cannot read: {error}")]) from None
    source = read_yaml(str(path), text)
    if source.problems:
        raise ConfigError(source.problems)
    if source.root is None:
        return NumberRules()
    if not isinstance(source.data, dict):
        raise ConfigError([source.problem((), "a numbers file is a mapping (grades:, fees:, ...)")])
    try:
        return NumberRules.model_validate(source.data)
    except ValidationError as error:
        raise ConfigError(list(problems_from_validation(source, error))) from None
