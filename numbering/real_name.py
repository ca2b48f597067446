"""Real-name material kept minimal: a business licence number, a legal representative's
name, and an ID number of which only a masked form is ever kept or shown."""

from __future__ import annotations

import re

_ID = re.compile(r"^(\d{15}|\d{17}[\dXx])$")
_LICENCE = re.compile(r"^[0-9A-Z]{15,20}$")


def mask_id(id_number: str) -> str:
    """'110101199003071234' -> '110***********1234'; ValueError for what is no ID number."""
    if not _ID.match(id_number):
        raise ValueError("an ID number is 15 digits, or 17 digits and a digit or X")
    return id_number[:3] + "*" * (len(id_number) - 7) + id_number[-4:].upper()


def check_licence(licence: str) -> str:
    """A business licence number (unified social credit code, 18 characters, or an older
    15-digit registration number)."""
    if not _LICENCE.match(licence):
        raise ValueError(f"{licence!r} is not a business licence number (15-20 digits/capitals)")
    return licence
