"""The tariff file: every problem at once with file, line, field and a plain message; the
JSON Schema editors use agrees with the model."""

import json
import textwrap
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
import yaml

from dialplan.errors import ConfigError
from rating.schema import tariffs_schema, tariffs_schema_text
from rating.tariff_loader import load_tariffs, parse_tariffs
from tests.conftest import REPO

ROOT = REPO
TARIFFS_FILE = ROOT / "config" / "tariffs.yaml"
SCHEMA_FILE = ROOT / "config" / "schema" / "tariffs.schema.json"
FILE = "config/tariffs.yaml"

CALLERS = """\
caller_tariffs:
  fixed: {first_seconds: 180, first_charge: 0.22, per_seconds: 60, charge: 0.11}
  mobile: {per_seconds: 60, charge: 0.15}
  other: {per_seconds: 60, charge: 0.11}
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_tariffs(FILE, CALLERS + textwrap.dedent(text).lstrip())
    return [str(problem) for problem in caught.value.problems]


def test_the_shipped_tariffs_load_with_an_account_for_each_example_plan() -> None:
    tariffs = load_tariffs(TARIFFS_FILE)
    plans = sorted(path.stem for path in (ROOT / "config" / "plans").glob("*.yaml"))
    assert sorted(tariffs.accounts) == plans
    assert tariffs.caller_tariffs.fixed.charge_for(181) == Decimal("0.33")


def test_amounts_written_as_plain_yaml_numbers_are_read_exactly_to_the_fen() -> None:
    tariffs = parse_tariffs(
        FILE,
        CALLERS
        + "packages:\n  p: {nationwide: {per_seconds: 60, charge: 0.1}, monthly_rent: 300}\n",
    )
    package = tariffs.packages["p"]
    assert package.nationwide is not None
    assert str(package.nationwide.charge) == "0.10"
    assert str(package.monthly_rent) == "300.00"


def test_defaults_sharing_low_balance_warning_and_prepaid() -> None:
    tariffs = parse_tariffs(
        FILE,
        CALLERS
        + "packages:\n  p: {nationwide: {per_seconds: 60, charge: 0.20}}\n"
        + "accounts:\n  4006001234: {package: p}\n",
    )
    account = tariffs.accounts["4006001234"]
    assert (account.low_balance_warning, account.prepaid) == (Decimal("50.00"), True)
    assert tariffs.packages["p"].sharing.caller_pays == "local_charge"
    assert tariffs.tariff_id("p") == "p"


def test_an_unknown_key_is_refused_where_it_stands() -> None:
    assert problems_of(
        """
        packages:
          basic:
            nationwide: {per_seconds: 60, charge: 0.20, colour: blue}
            montly_rent: 100.00
        """
    ) == [
        f"{FILE}:7 packages.basic.nationwide.colour: unknown key (expected first_seconds, "
        "first_charge, per_seconds, charge)",
        f"{FILE}:8 packages.basic.montly_rent: unknown key (did you mean monthly_rent?)",
    ]


def test_a_misspelt_key_of_a_rate_is_told_once_with_the_key_it_is_closest_to() -> None:
    """Not also as the key it stands for, missing: one mistake, one problem."""
    assert problems_of(
        """
        packages:
          basic:
            nationwide: {per_second: 60, charge: 0.20}
        """
    ) == [f"{FILE}:7 packages.basic.nationwide.per_second: unknown key (did you mean per_seconds?)"]


def test_a_package_with_both_nationwide_and_local_rates_is_refused() -> None:
    assert problems_of(
        """
        packages:
          basic:
            nationwide: {per_seconds: 60, charge: 0.20}
            local: {per_seconds: 60, charge: 0.12}
        """
    ) == [
        f"{FILE}:6 packages.basic: give either nationwide or both local and long_distance "
        "(found nationwide, local)"
    ]


def test_a_package_with_a_local_rate_only_is_refused() -> None:
    assert problems_of(
        """
        packages:
          basic:
            local: {per_seconds: 60, charge: 0.12}
        """
    ) == [
        f"{FILE}:6 packages.basic: give either nationwide or both local and long_distance "
        "(found local)"
    ]


def test_a_rate_with_a_zero_increment_is_refused() -> None:
    assert problems_of(
        """
        packages:
          basic:
            local: {per_seconds: 60, charge: 0.12}
            long_distance:
              per_seconds: 0
              charge: 0.25
        """
    ) == [f"{FILE}:9 packages.basic.long_distance.per_seconds: must be greater than 0 (found 0)"]


def test_an_amount_too_large_to_keep_in_fen_is_refused_not_a_crash() -> None:
    assert problems_of(
        """
        packages:
          basic:
            nationwide: {per_seconds: 60, charge: 1e30}
            monthly_rent: 1e400
        """
    ) == [
        f"{FILE}:7 packages.basic.nationwide.charge: 1E+30 is too large an amount",
        f"{FILE}:8 packages.basic.monthly_rent: 1E+400 is too large an amount",
    ]


def test_an_account_naming_an_unknown_package_is_refused() -> None:
    assert problems_of(
        """
        packages:
          basic: {nationwide: {per_seconds: 60, charge: 0.20}}
        accounts:
          "4006001234":
            package: premium
        """
    ) == [f"{FILE}:9 accounts.4006001234.package: unknown package 'premium' (packages: basic)"]


def test_a_caller_percent_above_100_is_refused() -> None:
    assert problems_of(
        """
        packages:
          basic:
            nationwide: {per_seconds: 60, charge: 0.20}
            sharing:
              caller_percent: 120
        """
    ) == [
        f"{FILE}:9 packages.basic.sharing.caller_percent: must be less than or equal to 100 "
        "(found 120)"
    ]


def test_sharing_gives_one_rule() -> None:
    assert problems_of(
        """
        packages:
          basic:
            nationwide: {per_seconds: 60, charge: 0.20}
            sharing: {caller_pays: local_charge, caller_percent: 50}
        """
    ) == [
        f"{FILE}:8 packages.basic.sharing: give either caller_pays: local_charge "
        "or caller_percent: N (0-100)"
    ]


def test_all_problems_of_a_file_are_reported_at_once() -> None:
    assert problems_of(
        """
        timezone: Asia/Jinan
        features:
          recording: 100.005
        packages:
          basic:
            nationwide: {per_seconds: 60, charge: 0.20}
            periods:
              - name: night
                time: ["22:00-25:00"]
                days: [fri, someday]
              - name: empty
                time: ["08:00-09:00"]
        """
    ) == [
        f"{FILE}:5 timezone: the billing time zone is router.yaml's timezone; "
        "remove it from this file",
        f"{FILE}:7 features.recording: amounts are kept to the fen: at most 2 decimal places",
        f"{FILE}:13 packages.basic.periods[0].time: '22:00-25:00' is not a window like "
        "'22:00-07:00'",
        f"{FILE}:14 packages.basic.periods[0].days[1]: must be 'mon', 'tue', 'wed', 'thu', "
        "'fri', 'sat' or 'sun' (found 'someday')",
        f"{FILE}:15 packages.basic.periods[1]: give nationwide, or local and/or long_distance "
        "(found none)",
    ]


def test_a_numbers_minimum_is_its_accounts_own_else_its_packages() -> None:
    tariffs = parse_tariffs(
        FILE,
        CALLERS
        + textwrap.dedent(
            """
            packages:
              basic:
                nationwide: {per_seconds: 60, charge: 0.20}
                minimum_monthly: 100.00
            accounts:
              "4000000001": {package: basic}
              "4000000002": {package: basic, minimum_monthly: 150.00}
            """
        ),
    )
    assert tariffs.minimum_of("4000000001") == Decimal("100.00")
    assert tariffs.minimum_of("4000000002") == Decimal("150.00")


def test_the_charged_rate_is_the_dearest_standard_rate_per_minute() -> None:
    tariffs = parse_tariffs(
        FILE,
        CALLERS
        + textwrap.dedent(
            """
            packages:
              hall:
                local: {per_seconds: 60, charge: 0.10}
                long_distance: {per_seconds: 6, charge: 0.06}
              flat:
                nationwide: {per_seconds: 60, charge: 0.20}
                periods:
                  - name: night
                    time: ["22:00-07:00"]
                    nationwide: {per_seconds: 60, charge: 0.01}
            """
        ),
    )
    assert tariffs.packages["hall"].charged_rate == Decimal("0.6000")
    assert tariffs.packages["flat"].charged_rate == Decimal("0.2000")  # periods aside


def test_accounts_are_checked_against_packages_features_and_the_400_number_shape() -> None:
    assert problems_of(
        """
        features:
          recording: 100.00
        packages:
          basic: {nationwide: {per_seconds: 60, charge: 0.20}}
        accounts:
          "4006001234":
            package: basic
            features:
              recording: 2026-01-05
              ivr: 2026-02-01
          "800123":
            package: basic
        """
    ) == [
        f"{FILE}:14 accounts.4006001234.features.ivr: unknown feature 'ivr' (features: recording)",
        f"{FILE}:15 accounts.800123: '800123' is not a 400 number (400 and 7 digits)",
    ]


def test_an_unquoted_400_number_is_read_as_the_number() -> None:
    tariffs = parse_tariffs(
        FILE,
        CALLERS
        + "packages:\n  p: {nationwide: {per_seconds: 60, charge: 0.20}}\n"
        + "accounts:\n  4006001234: {package: p}\n",
    )
    assert list(tariffs.accounts) == ["4006001234"]


def test_an_empty_or_shapeless_file_is_refused() -> None:
    with pytest.raises(ConfigError) as empty:
        parse_tariffs(FILE, "")
    assert [str(p) for p in empty.value.problems] == [f"{FILE}:1 (file): the file is empty"]
    with pytest.raises(ConfigError) as listed:
        parse_tariffs(FILE, "- 1\n")
    assert [str(p) for p in listed.value.problems] == [
        f"{FILE}:1 (file): a tariff file is a mapping of keys (caller_tariffs:, ...)"
    ]


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_tariffs(tmp_path / "tariffs.yaml")


def test_the_shipped_schema_is_the_one_the_model_generates() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == tariffs_schema_text(), (
        "regenerate: python -m rating.schema > config/schema/tariffs.schema.json"
    )


def schema_accepts(document: dict) -> bool:
    validator = jsonschema.Draft202012Validator(tariffs_schema())
    return not list(validator.iter_errors(json.loads(json.dumps(document, default=str))))


def model_accepts(document: dict) -> bool:
    try:
        parse_tariffs(FILE, yaml.safe_dump(document))
    except ConfigError:
        return False
    return True


def test_the_shipped_tariffs_are_valid_against_the_schema() -> None:
    assert schema_accepts(yaml.safe_load(TARIFFS_FILE.read_text(encoding="utf-8")))


BASE = {
    **yaml.safe_load(CALLERS),
    "packages": {"p": {"nationwide": {"per_seconds": 60, "charge": "0.20"}}},
}
RATE = {"per_seconds": 60, "charge": "0.12"}


@pytest.mark.parametrize(
    "document",
    [
        BASE,
        {**BASE, "version": "2026-11", "features": {"ivr": "200.00"}},
        {**BASE, "accounts": {"4006001234": {"package": "p", "prepaid": False}}},
        {**BASE, "packages": {"p": {"local": RATE, "long_distance": RATE, "included_minutes": 9}}},
        {**BASE, "extra": 1},
        {**BASE, "packages": {"p": {"nationwide": {**RATE, "per_seconds": 0}}}},
        {**BASE, "packages": {"p": {"nationwide": RATE, "included_minutes": -1}}},
        {**BASE, "packages": {"p": {"nationwide": RATE, "sharing": {"caller_percent": 101}}}},
        {**BASE, "packages": {"p": {"nationwide": RATE, "periods": [{"name": "x"}]}}},
        {**BASE, "accounts": {"4006001234": {"package": "p", "features": {"ivr": [1]}}}},
        {**BASE, "caller_tariffs": {"fixed": RATE, "mobile": RATE}},
    ],
)
def test_schema_and_model_agree_on_structure(document: dict) -> None:
    assert schema_accepts(document) == model_accepts(document)


def test_the_example_tariffs_price_4008_numbers_dearest_and_4007_cheapest_by_default() -> None:
    """domain.md: 4008 numbers usually carry the highest rates, 4007 the lowest."""
    tariffs = load_tariffs(TARIFFS_FILE)
    defaults = {
        segment: tariffs.packages[package] for segment, package in tariffs.segment_packages.items()
    }
    assert sorted(defaults) == ["4000", "4001", "4006", "4007", "4008"]
    by_rate = sorted(defaults, key=lambda segment: defaults[segment].charged_rate)
    assert (by_rate[0], by_rate[-1]) == ("4007", "4008")
    by_rent = sorted(defaults, key=lambda segment: defaults[segment].monthly_rent)
    assert (by_rent[0], by_rent[-1]) == ("4007", "4008")


def test_an_account_naming_no_package_takes_its_segments() -> None:
    tariffs = parse_tariffs(
        FILE,
        CALLERS + "packages:\n"
        "  dear: {nationwide: {per_seconds: 60, charge: 0.30}}\n"
        "  cheap: {nationwide: {per_seconds: 60, charge: 0.18}}\n"
        'segment_packages: {"4008": dear, 4007: cheap}\n'
        "accounts:\n"
        '  "4008200888": {prepaid: false}\n'
        '  "4007000001": {prepaid: false}\n'
        '  "4007000002": {package: dear}\n',
    )
    packages = {number: account.package for number, account in tariffs.accounts.items()}
    assert packages == {"4008200888": "dear", "4007000001": "cheap", "4007000002": "dear"}


def test_a_segment_without_a_default_needs_its_package_named() -> None:
    assert problems_of(
        """\
        packages:
          dear: {nationwide: {per_seconds: 60, charge: 0.30}}
        segment_packages: {"4008": dear, "4005": cheep}
        accounts:
          "4009000001": {prepaid: false}
        """
    ) == [
        f"{FILE}:9 accounts.4009000001.package: required field is missing",
    ]
    assert problems_of(
        """\
        packages:
          dear: {nationwide: {per_seconds: 60, charge: 0.30}}
        segment_packages: {"4008": dear, "4005": cheep}
        """
    ) == [
        f"{FILE}:7 segment_packages.4005: unknown package 'cheep' (packages: dear)",
    ]
