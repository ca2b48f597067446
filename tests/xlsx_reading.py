"""The .xlsx exports read back with the standard library, as Excel shows their cells: the
workbook's sheets, each cell's value (text, number or boolean) and the number format its
style gives it (a date-time format is what makes a number a date-time in Excel)."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree

MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
RELATIONSHIP = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
PACKAGE_RELATIONSHIP = "{http://schemas.openxmlformats.org/package/2006/relationships}"
BUILTIN_FORMATS = {0: "General", 1: "0", 2: "0.00", 49: "@"}
EXCEL_EPOCH = datetime(1899, 12, 30)
"""Day 0 of Excel's date serials (as it counts them after 1900-03-01)."""


@dataclass(frozen=True)
class Cell:
    value: str | float | bool
    number_format: str
    quote_prefix: bool = False

    @property
    def is_text(self) -> bool:
        return isinstance(self.value, str)

    def as_time(self) -> datetime:
        """The naive local date-time a date serial shows, to the second."""
        assert isinstance(self.value, float) and not self.is_text
        assert "yy" in self.number_format and "hh" in self.number_format, self.number_format
        moment = EXCEL_EPOCH + timedelta(days=self.value)
        return (moment + timedelta(milliseconds=500)).replace(microsecond=0)


Row = dict[str, Cell]
"""A row's cells by the heading of their column; a blank cell is absent."""


@dataclass(frozen=True)
class Sheet:
    header: list[str]
    rows: list[Row]


def read_workbook(source: bytes | Path) -> dict[str, Sheet]:
    """Each sheet's header and rows, by sheet name in the workbook's order."""
    data = source.read_bytes() if isinstance(source, Path) else source
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        shared = _shared_strings(package)
        styles = _styles(package)
        return {
            name: _rows(ElementTree.fromstring(package.read(path)), shared, styles)
            for name, path in _sheet_paths(package)
        }


def _sheet_paths(package: zipfile.ZipFile) -> list[tuple[str, str]]:
    rels = ElementTree.fromstring(package.read("xl/_rels/workbook.xml.rels"))
    targets = {
        rel.get("Id"): rel.get("Target") for rel in rels.iter(f"{PACKAGE_RELATIONSHIP}Relationship")
    }
    workbook = ElementTree.fromstring(package.read("xl/workbook.xml"))
    return [
        (sheet.get("name"), str(PurePosixPath("xl") / targets[sheet.get(RELATIONSHIP)]))
        for sheet in workbook.iter(f"{MAIN}sheet")
    ]


def _shared_strings(package: zipfile.ZipFile) -> list[str]:
    if "xl/sharedStrings.xml" not in package.namelist():
        return []
    table = ElementTree.fromstring(package.read("xl/sharedStrings.xml"))
    return [
        "".join(t.text or "" for t in item.iter(f"{MAIN}t")) for item in table.iter(f"{MAIN}si")
    ]


def _styles(package: zipfile.ZipFile) -> list[tuple[str, bool]]:
    """Each cell style's number format and whether it marks its text with Excel's quote."""
    sheet = ElementTree.fromstring(package.read("xl/styles.xml"))
    formats = dict(BUILTIN_FORMATS)
    for custom in sheet.iter(f"{MAIN}numFmt"):
        formats[int(custom.get("numFmtId", "0"))] = custom.get("formatCode", "")
    cell_styles = sheet.find(f"{MAIN}cellXfs")
    assert cell_styles is not None
    return [
        (formats[int(xf.get("numFmtId", "0"))], xf.get("quotePrefix") == "1")
        for xf in cell_styles.iter(f"{MAIN}xf")
    ]


def _rows(sheet: ElementTree.Element, shared: list[str], styles: list[tuple[str, bool]]) -> Sheet:
    grid = [
        {_column(cell.get("r", "")): _cell(cell, shared, styles) for cell in row.iter(f"{MAIN}c")}
        for row in sheet.iter(f"{MAIN}row")
    ]
    header = {column: str(cell.value) for column, cell in grid[0].items()}
    rows = [{header[column]: cell for column, cell in row.items()} for row in grid[1:]]
    return Sheet(list(header.values()), rows)


def _column(reference: str) -> str:
    match = re.match(r"[A-Z]+", reference)
    assert match, reference
    return match.group()


def _cell(cell: ElementTree.Element, shared: list[str], styles: list[tuple[str, bool]]) -> Cell:
    number_format, quote_prefix = styles[int(cell.get("s", "0"))]
    kind = cell.get("t", "n")
    if kind == "inlineStr":
        value: str | float | bool = "".join(t.text or "" for t in cell.iter(f"{MAIN}t"))
    else:
        raw = cell.findtext(f"{MAIN}v", "")
        value = shared[int(raw)] if kind == "s" else raw == "1" if kind == "b" else float(raw)
        assert kind in {"s", "b", "n"}, kind
    return Cell(value, number_format, quote_prefix)
