"""Whether a tariffs.yaml may take over from the tariffs serving, as a router decides it.

A tariff file that parses is still refused where it changes what may change only with
notice: a number's minimum monthly consumption (rating.minimum) and prices raised without
their notice (rating.price_changes). A running router compares it with the tariffs it
serves; a router starting, with the last good copy in its spool_dir
(router.configuration.plan_book). `check --config DIR` and the console compare it with
that copy too (`refused_by_routers`), by the same function and clock, so neither shows
prices the routers do not charge.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from dialplan.errors import ConfigError, Problem
from dialplan.yaml_source import read_config_text, read_yaml
from rating.minimum import refused_terms_changes
from rating.price_changes import refused_price_rises
from rating.tariff import Tariffs
from rating.tariff_loader import parse_tariffs
from router.configuration.config_dir import TARIFFS_FILE, ConfigSet
from router.configuration.last_good import LAST_GOOD_DIR
from router.configuration.settings import ROUTER_FILE


def taking_over(file: str, text: str, zone: ZoneInfo, serving: Tariffs | None) -> Tariffs:
    """The tariffs of `text`, read in billing zone `zone`, refused (ConfigError) where
    they change against `serving` what refused_tariff_changes forbids, the file taking
    over today in `zone`."""
    tariffs = parse_tariffs(file, text, zone)
    today = datetime.now(zone).date()
    refused = refused_tariff_changes(serving, tariffs, Path(file), today)
    if refused:
        raise ConfigError(refused)
    return tariffs


def copy_tariffs(copy: Path, zone: ZoneInfo) -> Tariffs | None:
    """The tariffs of last good copy `copy`, if it is there and still loads (quietly: it
    is only compared with; where it serves, router.configuration.last_good tells it)."""
    try:
        return parse_tariffs(str(copy), read_config_text(copy), zone)
    except (ConfigError, OSError):
        return None


def refused_by_routers(config: ConfigSet) -> ConfigSet:
    """`config` with its tariffs.yaml refused as a router starting now refuses it: against
    the last good copy in router.yaml's spool_dir, its refusal a problem of the file and
    its tariffs none (router.configuration.served then shows the copy). `config` as it is
    where the file did not load, has no copy, or router.yaml has problems (where the
    routers keep their copies is then not known)."""
    file = config.directory / TARIFFS_FILE
    if config.tariffs is None or any(
        Path(problem.file) == config.directory / ROUTER_FILE for problem in config.problems
    ):
        return config
    zone = config.settings.zone()
    serving = copy_tariffs(Path(config.settings.spool_dir) / LAST_GOOD_DIR / TARIFFS_FILE, zone)
    if serving is None:
        return config
    try:
        taking_over(str(file), read_config_text(file), zone, serving)
    except ConfigError as error:
        return replace(config, tariffs=None, problems=[*config.problems, *error.problems])
    except OSError:
        return config  # gone or unreadable since it loaded: read again on its next change
    return config


def refused_tariff_changes(
    old: Tariffs | None, new: Tariffs, path: Path, day: date
) -> list[Problem]:
    """What the new tariffs change against the rules, the file taking over on `day`, each
    with its file and line: a number's minimum monthly consumption (rating.minimum) and
    price rises without their notice (rating.price_changes)."""
    if old is None:
        return []
    refused = [*refused_terms_changes(old, new, day), *refused_price_rises(old, new, day)]
    if not refused:
        return []
    source = read_yaml(str(path), path.read_text(encoding="utf-8"))
    return [source.problem(field, message) for field, message in refused]
