"""Real-name material is checked to its check character as it is typed: the resident ID
number (GB 11643) and the business licence's unified social credit code (GB 32100)."""

from __future__ import annotations

import pytest

from numbering.real_name import check_id, check_licence, mask_id


def test_an_id_number_is_kept_masked_with_its_x_upper_case() -> None:
    assert mask_id("11010519491231002x") == "110***********002X"
    assert mask_id(" 110101199003071233 ") == "110***********1233"


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("110101199003071234", "check character (the last) does not match the others"),
        ("110101199002301233", "birth date (its 7th to 14th characters) is no date"),
        ("110105491231002", "a first-generation card's (15 digits), no longer valid"),
        ("11010119900307123", "an ID number is 18 characters: 17 digits, then a digit or X"),
        ("1101011990030712Y3", "an ID number is 18 characters: 17 digits, then a digit or X"),
    ],
    ids=["mistyped", "no birth date", "first generation", "a digit short", "a letter inside"],
)
def test_an_id_number_that_cannot_be_a_card_is_refused_saying_why(typed: str, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        check_id(typed)
    assert message in str(refused.value)
    assert typed not in str(refused.value), "the full number goes nowhere, errors included"


def test_a_licence_is_its_unified_social_credit_code_upper_case() -> None:
    assert check_licence("91310000ma1fl0yy26") == "91310000MA1FL0YY26"


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("91310000MA1FL0YY2Y", "its check character (the last) is wrong, a character mistyped?"),
        ("91310000MA1FL0YOIY", "digits and capitals other than I, O, S, V and Z"),
        ("110000450001234", "an old registration number (15 digits), replaced by the 18-char"),
        ("9131000", "is not a unified social credit code (18 digits and capitals)"),
    ],
    ids=["mistyped", "a letter never used", "old registration number", "too short"],
)
def test_a_licence_that_cannot_be_a_credit_code_is_refused_saying_why(
    typed: str, message: str
) -> None:
    with pytest.raises(ValueError) as refused:
        check_licence(typed)
    assert message in str(refused.value)
