"""Minimum monthly consumption: the top-up, and how a number's agreed minimum may change
against the rate it is charged."""

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest

from rating.minimum import (
    MinimumChangeRefused,
    Terms,
    check_terms_change,
    in_use,
    minimum_topup,
    refused_terms_changes,
    scale_minimum,
    terms_of,
)
from rating.tariff import Tariffs

D = Decimal
NUMBER = "4008207788"


def terms(minimum: str, rate: str, package: str = "nationwide-300") -> Terms:
    return Terms(package, D(minimum), D(rate))


def test_a_month_below_the_minimum_is_topped_up_to_it() -> None:
    assert minimum_topup(D("62.40"), D("100.00")) == D("37.60")


@pytest.mark.parametrize("charges", ["100.00", "250.10"])
def test_a_month_at_or_above_the_minimum_needs_no_top_up(charges: str) -> None:
    assert minimum_topup(D(charges), D("100.00")) == D("0.00")


def test_a_100_yuan_minimum_at_030_becomes_50_at_015() -> None:
    assert scale_minimum(D("100"), D("0.30"), D("0.15")) == D("50.00")


def test_a_scaled_minimum_is_rounded_half_up_to_the_fen() -> None:
    assert scale_minimum(D("100.00"), D("0.30"), D("0.20")) == D("66.67")
    assert scale_minimum(D("0.05"), D("0.20"), D("0.10")) == D("0.03")  # 0.025 -> 0.03


@pytest.mark.parametrize("used", [None, "in use since 2025-06-01"])
@pytest.mark.parametrize("new_rate", ["0.10", "0.20", "0.30"])
def test_raising_the_minimum_is_always_allowed(used: str | None, new_rate: str) -> None:
    check_terms_change(NUMBER, terms("500.00", "0.20"), terms("600.00", new_rate), used)


def test_at_an_unchanged_rate_the_minimum_never_goes_down() -> None:
    with pytest.raises(MinimumChangeRefused) as refused:
        check_terms_change(NUMBER, terms("100.00", "0.30"), terms("80.00", "0.30"), None)
    assert str(refused.value) == (
        "4008207788: minimum monthly consumption 100.00 -> 80.00 refused: at an unchanged "
        "rate (rate 0.30/min -> 0.30/min) the minimum may be raised, never lowered"
    )


def test_at_a_higher_rate_the_minimum_never_goes_down() -> None:
    with pytest.raises(MinimumChangeRefused, match="at a higher rate"):
        check_terms_change(NUMBER, terms("100.00", "0.15"), terms("99.99", "0.30"), None)


def test_when_the_rate_goes_down_the_minimum_may_go_down_to_the_scaled_one_exactly() -> None:
    """The seed's case: nationwide 0.20 -> 0.10 with the minimum 500 -> 250."""
    check_terms_change(NUMBER, terms("500.00", "0.20"), terms("250.00", "0.10"), None)
    check_terms_change(NUMBER, terms("100.00", "0.30"), terms("50.00", "0.15"), None)
    check_terms_change(NUMBER, terms("100.00", "0.30"), terms("60.00", "0.15"), None)


def test_when_the_rate_goes_down_the_minimum_never_goes_below_the_scaled_one() -> None:
    with pytest.raises(MinimumChangeRefused) as refused:
        check_terms_change(NUMBER, terms("100.00", "0.30"), terms("49.99", "0.15"), None)
    assert str(refused.value) == (
        "4008207788: minimum monthly consumption 100.00 -> 49.99 refused: with the rate "
        "0.30/min -> 0.15/min the minimum may go down to 100.00 / 0.30 * 0.15 = 50.00, "
        "never lower"
    )


def test_a_number_in_use_keeps_its_minimum_even_when_its_rate_goes_down() -> None:
    with pytest.raises(MinimumChangeRefused) as refused:
        check_terms_change(
            NUMBER, terms("500.00", "0.20"), terms("250.00", "0.10"), "in use since 2025-06-01"
        )
    assert str(refused.value) == (
        "4008207788: minimum monthly consumption 500.00 -> 250.00 refused: a number already "
        "in use keeps its minimum (in use since 2025-06-01; rate 0.20/min -> 0.10/min)"
    )


def test_a_package_change_is_checked_the_same_way_and_named() -> None:
    with pytest.raises(MinimumChangeRefused, match=r"\(package nationwide-300 -> hall\)"):
        check_terms_change(
            NUMBER, terms("500.00", "0.20"), terms("0.00", "0.60", package="hall"), None
        )


def test_a_number_is_in_use_from_its_opening_day() -> None:
    assert in_use(date(2026, 12, 1), date(2026, 11, 30)) is None
    assert in_use(date(2026, 12, 1), date(2026, 12, 1)) == "in use since 2026-12-01"
    assert in_use(None, date(2026, 12, 1)) == "in use (its account names no opening day)"


def tariffs(packages: dict, accounts: dict) -> Tariffs:
    fixed = {"per_seconds": 60, "charge": "0.11"}
    return Tariffs.model_validate(
        {
            "caller_tariffs": {"fixed": fixed, "mobile": fixed, "other": fixed},
            "packages": packages,
            "accounts": accounts,
        }
    )


def nationwide(rate: str, minimum: str = "0") -> dict:
    return {"nationwide": {"per_seconds": 60, "charge": rate}, "minimum_monthly": minimum}


SIGNED = {"package": "flat", "opened": "2026-12-01"}  # opens after the change
OPEN = {"package": "flat", "opened": "2025-06-01"}
DAY = date(2026, 11, 20)


def refused(old: Tariffs, new: Tariffs) -> list[tuple[tuple[str, ...], str]]:
    return list(refused_terms_changes(old, new, DAY))


def test_files_are_compared_by_the_rate_each_number_is_charged() -> None:
    before = tariffs({"flat": nationwide("0.20", "500.00")}, {NUMBER: SIGNED})
    assert refused(before, tariffs({"flat": nationwide("0.10", "250.00")}, {NUMBER: SIGNED})) == []
    [(field, message)] = refused(
        before, tariffs({"flat": nationwide("0.20", "250.00")}, {NUMBER: SIGNED})
    )
    assert field == ("accounts", NUMBER, "package")
    assert "500.00 -> 250.00 refused: at an unchanged rate" in message


def test_a_number_in_use_keeps_its_minimum_when_its_package_lowers_it() -> None:
    before = tariffs({"flat": nationwide("0.20", "500.00")}, {NUMBER: OPEN})
    lowered = {"flat": nationwide("0.10", "250.00")}
    [(_, message)] = refused(before, tariffs(lowered, {NUMBER: OPEN}))
    assert "a number already in use keeps its minimum (in use since 2025-06-01" in message
    kept = {**OPEN, "minimum_monthly": "500.00"}
    assert refused(before, tariffs(lowered, {NUMBER: kept})) == []


def test_a_numbers_own_minimum_is_checked_on_its_own_field() -> None:
    own = {**SIGNED, "minimum_monthly": "300.00"}
    before = tariffs({"flat": nationwide("0.20")}, {NUMBER: own})
    [(field, _)] = refused(
        before, tariffs({"flat": nationwide("0.20")}, {NUMBER: {**own, "minimum_monthly": "1"}})
    )
    assert field == ("accounts", NUMBER, "minimum_monthly")


def test_moving_a_number_to_a_package_without_a_minimum_is_checked() -> None:
    packages = {"flat": nationwide("0.20", "500.00"), "plain": nationwide("0.20")}
    before = tariffs(packages, {NUMBER: SIGNED})
    [(_, message)] = refused(before, tariffs(packages, {NUMBER: {**SIGNED, "package": "plain"}}))
    assert "500.00 -> 0.00 (package flat -> plain) refused" in message


def test_a_number_new_to_the_file_may_take_any_terms() -> None:
    before = tariffs({"flat": nationwide("0.20", "500.00")}, {})
    assert refused(before, tariffs({"flat": nationwide("0.20", "10.00")}, {NUMBER: OPEN})) == []


def per_7_seconds(charge: str, minimum: str = "0") -> dict:
    return {"nationwide": {"per_seconds": 7, "charge": charge}, "minimum_monthly": minimum}


def test_a_minimum_scales_by_the_exact_rates_not_their_four_decimals() -> None:
    """0.02 per 7 s is 6/35 yuan a minute (compared and recorded as 0.1714): 100.00 agreed
    at 0.30/min may go down to 100 / 0.30 * 6/35 = 57.142857... = 57.14, not 57.13."""
    before = tariffs({"flat": nationwide("0.30", "100.00")}, {NUMBER: SIGNED})
    [(_, message)] = refused(
        before, tariffs({"flat": per_7_seconds("0.02", "57.13")}, {NUMBER: SIGNED})
    )
    assert message == (
        "4008207788: minimum monthly consumption 100.00 -> 57.13 refused: with the rate "
        "0.30/min -> 0.1714/min the minimum may go down to 100.00 / 0.30 * 0.17142857… = "
        "57.14, never lower"
    )
    assert (
        refused(before, tariffs({"flat": per_7_seconds("0.02", "57.14")}, {NUMBER: SIGNED})) == []
    )


def test_terms_keep_their_recorded_rate_and_compare_without_the_exact_one() -> None:
    """The store's history keeps the rate to 4 decimals: terms from the file equal the
    terms recorded from it, and a recorded rate scales as it was recorded."""
    file = tariffs({"flat": per_7_seconds("0.02", "57.14")}, {NUMBER: SIGNED})
    current = terms_of(file, NUMBER, DAY)
    recorded = Terms("flat", D("57.14"), D("0.1714"))
    assert (current.rate, current.exact_rate) == (D("0.1714"), Fraction(6, 35))
    assert current == recorded
    # a recorded 0.30 against the file's 0.02 per 7 s: the file's rate is taken exactly
    check_terms_change(NUMBER, terms("100.00", "0.30"), terms_of(file, NUMBER, DAY), None)
    with pytest.raises(MinimumChangeRefused, match=r"0\.30 \* 0\.17142857… = 57\.14"):
        lower = Terms("flat", D("57.13"), current.rate, current.exact_rate)
        check_terms_change(NUMBER, terms("100.00", "0.30"), lower, None)


def test_an_exactly_scaled_minimum_is_rounded_half_up_at_an_exact_half_fen() -> None:
    """0.02 -> 0.01 per 7 s (6/35 -> 3/35 a minute) halves 0.13 to 0.065 exactly: 0.07,
    where the rates as 28-digit decimals give 0.0649999... and 0.06."""
    assert scale_minimum(D("0.13"), Fraction(6, 35), Fraction(3, 35)) == D("0.07")
    assert scale_minimum(D("100.00"), D("0.30"), Fraction(6, 35)) == D("57.14")
