"""CSV cells a spreadsheet shows as text: the exports of the command line and the console."""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What makes Excel or LibreOffice read a cell as a formula (or hide one behind it)."""


def spreadsheet_cell(value: object) -> object:
    """`value` for a CSV cell: text a caller (or anyone outside) chose that a spreadsheet
    would run as a formula gets a leading quote so it stays text; None is an empty cell."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
