"""Real-name material kept minimal: a business licence number, a legal representative's
name, and an ID number of which only a masked form is ever kept or shown.

Both numbers carry a check character (GB 11643 for the resident ID, GB 32100 for the
unified social credit code): python-stdnum computes them, so a mistyped character is
refused as it is typed instead of at the operator's review days later."""

from __future__ import annotations

from stdnum.cn import ric, uscc
from stdnum.exceptions import InvalidChecksum, InvalidComponent, ValidationError


def check_id(id_number: str) -> str:
    """The 18-character resident ID number, its X upper-case; ValueError saying what is
    wrong (first-generation 15-digit cards lost their validity on 2013-01-01). A message
    never repeats the number: it ends in logs, pages and the audit log."""
    text = id_number.strip().upper()
    if len(text) == 15 and text.isdigit():
        raise ValueError(
            "the ID number is a first-generation card's (15 digits), no longer valid since "
            "2013: give the 18-character number of the current card"
        )
    if len(text) != 18 or not text[:17].isdigit() or text[17] not in "0123456789X":
        raise ValueError("an ID number is 18 characters: 17 digits, then a digit or X")
    try:
        ric.get_birth_date(text)
    except InvalidComponent:
        raise ValueError(
            "the ID number's birth date (its 7th to 14th characters) is no date, a character "
            "mistyped?"
        ) from None
    try:
        ric.validate(text)
    except InvalidChecksum:
        raise ValueError(
            "the ID number's check character (the last) does not match the others, a "
            "character mistyped?"
        ) from None
    return text


def mask_id(id_number: str) -> str:
    """'11010119900307123X' -> '110***********123X', once checked: the full number goes
    nowhere; ValueError for what is no ID number."""
    text = check_id(id_number)
    return text[:3] + "*" * (len(text) - 7) + text[-4:]


def check_licence(licence: str) -> str:
    """The business licence's 18-character unified social credit code, upper-case; the
    15-digit registration numbers it replaced were void from 2018."""
    text = licence.strip().upper()
    if len(text) == 15 and text.isdigit():
        raise ValueError(
            f"{text} is an old registration number (15 digits), replaced by the 18-character "
            "unified social credit code printed on the licence since 2018"
        )
    if len(text) != 18:
        raise ValueError(
            f"{licence!r} is not a unified social credit code (18 digits and capitals)"
        )
    try:
        uscc.validate(text)
    except InvalidChecksum:
        raise ValueError(
            f"{text} is no unified social credit code: its check character (the last) is "
            "wrong, a character mistyped?"
        ) from None
    except ValidationError:
        raise ValueError(
            f"{text} is no unified social credit code (digits and capitals other than I, O, "
            "S, V and Z)"
        ) from None
    return text
