"""The values of the exports of the command line and the console, and the CSV cells a
spreadsheet shows as text."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from router.storage.cdr import CDR, encode_value

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What makes Excel or LibreOffice read a cell as a formula (or hide one behind it)."""


def spreadsheet_cell(value: object) -> object:
    """An export's value for a CSV cell, written as the JSON export writes it (a time in
    ISO-8601 with its offset, money to the fen, an outcome by name); text a caller (or
    anyone outside) chose that a spreadsheet would run as a formula gets a leading quote so
    it stays text, while a number stays a number (a balance of -618.00 is no formula); None
    is an empty cell."""
    text = encode_value(value)
    if text is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def cdr_values(cdr: CDR, columns: Sequence[str], legs: str) -> list[object]:
    """The call's values for `columns`, each of its own type (a time, money, a count, text):
    a field of the record, a part of its caller's region, or its `legs` as the export sums
    them up. The CSV writes them through `spreadsheet_cell`, the workbook as typed cells."""
    derived = {**dataclasses.asdict(cdr.region), "legs": legs}
    return [derived[name] if name in derived else getattr(cdr, name) for name in columns]
