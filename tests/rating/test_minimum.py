"""Minimum monthly consumption: the top-up, and how the agreed minimum may change."""

from decimal import Decimal

import pytest

from rating.minimum import (
    MinimumChangeRefused,
    check_minimum_change,
    check_package_change,
    minimum_topup,
    scale_minimum,
)
from rating.tariff import Package

D = Decimal


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


def test_a_minimum_may_be_raised_while_the_rate_stays() -> None:
    check_minimum_change(D("100"), D("150"), D("0.30"), D("0.30"))


def test_a_minimum_cannot_be_lowered_while_the_rate_stays_the_same() -> None:
    with pytest.raises(MinimumChangeRefused, match="cannot be lowered from 100 to 80 "):
        check_minimum_change(D("100"), D("80"), D("0.30"), D("0.30"))


def test_with_a_lower_rate_the_scaled_minimum_or_more_is_allowed() -> None:
    check_minimum_change(D("100"), D("50.00"), D("0.30"), D("0.15"))
    check_minimum_change(D("100"), D("60.00"), D("0.30"), D("0.15"))


def test_with_a_lower_rate_a_minimum_below_the_scaled_one_is_refused() -> None:
    with pytest.raises(MinimumChangeRefused, match=r"becomes 50\.00; 49\.99 is below it"):
        check_minimum_change(D("100"), D("49.99"), D("0.30"), D("0.15"))


def test_with_a_higher_rate_the_minimum_scales_up() -> None:
    with pytest.raises(MinimumChangeRefused, match=r"becomes 200\.00"):
        check_minimum_change(D("100"), D("100"), D("0.15"), D("0.30"))


def package(minimum: str, reference: str | None) -> Package:
    return Package.model_validate(
        {
            "nationwide": {"per_seconds": 60, "charge": "0.20"},
            "minimum_monthly": minimum,
            "minimum_reference_rate": reference,
        }
    )


def test_a_package_change_follows_the_same_rule() -> None:
    check_package_change(package("100.00", "0.30"), package("50.00", "0.15"))
    check_package_change(package("0", None), package("10.00", "0.20"))
    with pytest.raises(MinimumChangeRefused):
        check_package_change(package("100.00", "0.30"), package("90.00", "0.30"))
    with pytest.raises(MinimumChangeRefused, match="cannot be dropped"):
        check_package_change(package("100.00", "0.30"), package("0", None))
