"""Exports as Excel workbooks (.xlsx): each value in the cell type it is, so Excel keeps it.

A CSV leaves every cell for Excel to guess: a caller 01062345678 loses its leading zero, a
13800138000 turns into 1.38E+10, and without a byte order mark 北京 becomes mojibake. Here
text is written as text (never read as a number or run as a formula), money as a number
with two decimals taken from the Decimal's own digits, counts as integers and times as
Excel date-times in the configured zone (Excel has no zones: the header names it).

XlsxWriter's constant_memory mode writes each row out as it is added, so a million rows
take no more memory than one; rows beyond a sheet's 1,048,576 go on to a sheet after it
(`calls`, `calls 2`, ...), each under the same header. XlsxWriter drops a cell it cannot
place without raising (it returns -1): here that stops the export instead.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from zoneinfo import ZoneInfo

from xlsxwriter import Workbook
from xlsxwriter.exceptions import FileCreateError
from xlsxwriter.worksheet import Worksheet

from router.commands.exits import refuse_usage
from router.commands.spreadsheet import FORMULA_STARTS

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXCEL_ROWS = 1_048_576
"""Rows an Excel sheet holds, its header included."""
TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
MONEY_FORMAT = "0.00"
COUNT_FORMAT = "0"
TIME_WIDTH = 20
MIN_WIDTH = 10


class ExportSheet:
    """One export written row by row into an .xlsx file: `add` each row of values in the
    order of `columns`; leaving the `with` block writes the file (OSError if it cannot),
    unless an error left it first. The rows wait in a scratch folder of their own, removed
    either way."""

    def __init__(
        self,
        target: Path,
        columns: Sequence[str],
        *,
        title: str,
        zone: ZoneInfo,
        times: Collection[str] = (),
        rows_per_sheet: int = EXCEL_ROWS,
    ) -> None:
        if not 1 < rows_per_sheet <= EXCEL_ROWS:
            raise ValueError(f"a sheet holds 2 to {EXCEL_ROWS:,} rows, its header included")
        self._scratch = tempfile.TemporaryDirectory(prefix="hotline400-xlsx-")
        options = {"constant_memory": True, "tmpdir": self._scratch.name}
        self._book = Workbook(str(target), options)
        self._header = [_heading(name, zone) if name in times else name for name in columns]
        self._widths = [TIME_WIDTH if name in times else len(name) + 2 for name in columns]
        self._title = title
        self._zone = zone
        self._rows_per_sheet = rows_per_sheet
        self._formats = {
            "header": self._book.add_format({"bold": True}),
            "text": self._book.add_format({"num_format": "@"}),
            # Excel's own mark of a cell typed with a leading ', so editing keeps it text
            "guarded": self._book.add_format({"num_format": "@", "quote_prefix": True}),
            "time": self._book.add_format({"num_format": TIME_FORMAT}),
            "money": self._book.add_format({"num_format": MONEY_FORMAT}),
            "count": self._book.add_format({"num_format": COUNT_FORMAT}),
        }
        self._sheets = 0
        self._sheet, self._row = self._new_sheet(), 1

    def add(self, values: Sequence[object]) -> None:
        if self._row == self._rows_per_sheet:
            self._sheet, self._row = self._new_sheet(), 1
        for column, value in enumerate(values):
            self._write(column, value)
        self._row += 1

    def close(self) -> None:
        """Write the file now (a no-op once written); OSError if it cannot be."""
        if self._book.fileclosed:
            return
        try:
            self._book.close()
        except FileCreateError as error:
            cause = error.args[0] if error.args else error
            raise cause if isinstance(cause, OSError) else OSError(str(error)) from error

    def __enter__(self) -> ExportSheet:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is None:
                self.close()
        finally:
            self._scratch.cleanup()

    def _new_sheet(self) -> Worksheet:
        """A sheet with the header, frozen above the rows; the second is `calls 2`."""
        self._sheets += 1
        name = self._title if self._sheets == 1 else f"{self._title} {self._sheets}"
        sheet = self._book.add_worksheet(name)
        for column, (heading, width) in enumerate(zip(self._header, self._widths, strict=True)):
            sheet.set_column(column, column, max(width, MIN_WIDTH))
            _placed(sheet.write_string(0, column, heading, self._formats["header"]), 0, column)
        sheet.freeze_panes(1, 0)
        return sheet

    def _write(self, column: int, value: object) -> None:
        sheet, row, formats = self._sheet, self._row, self._formats
        if value is None:
            return
        if isinstance(value, bool):
            written = sheet.write_boolean(row, column, value)
        elif isinstance(value, int):
            written = sheet.write_number(row, column, value, formats["count"])
        elif isinstance(value, Decimal):
            written = sheet.write_number(row, column, float(str(value)), formats["money"])
        elif isinstance(value, datetime):
            local = value.astimezone(self._zone).replace(tzinfo=None)
            written = sheet.write_datetime(row, column, local, formats["time"])
        else:
            text = value.value if isinstance(value, Enum) else value
            if not isinstance(text, str):
                raise TypeError(f"no cell type for {value!r}")
            guarded = text.startswith(FORMULA_STARTS)
            written = sheet.write_string(
                row, column, text, formats["guarded" if guarded else "text"]
            )
        _placed(written, row, column)


def _placed(written: int, row: int, column: int) -> None:
    """XlsxWriter answers a cell outside the sheet (past its 1,048,576th row or 16,384th
    column) with -1 and writes nothing: an export stops there rather than go on short of it."""
    if written == -1:
        raise OverflowError(f"row {row + 1:,}, column {column + 1:,} is outside an Excel sheet")


def _heading(name: str, zone: ZoneInfo) -> str:
    """'started_at (Asia/Shanghai)': the zone of the local times below it."""
    return f"{name} ({zone.key})"


def refuse_output(args: argparse.Namespace, command: str) -> int:
    """The usage status, said, when --format and --output do not go together (a workbook
    goes to a file, never to a terminal; the other formats go to standard output); else 0."""
    if args.format == "xlsx" and not args.output:
        return refuse_usage(command, "--format xlsx writes a workbook: give --output FILE")
    if args.output and args.format != "xlsx":
        return refuse_usage(
            command, f"--output is for --format xlsx; {args.format} goes to standard output"
        )
    return 0


def write_workbook(sheet: ExportSheet, rows: Iterable[Sequence[object]], output: Path) -> int:
    """Write `rows` through `sheet` to `output`: the command's exit status, 1 when the file
    cannot be written (said on standard error)."""
    try:
        with sheet:
            for row in rows:
                sheet.add(row)
    except OSError as error:
        return _cannot_write(output, error)
    return 0


async def write_workbook_pages(
    sheet: ExportSheet, pages: AsyncIterator[Sequence[Sequence[object]]], output: Path
) -> int:
    """`write_workbook` of rows read a page at a time (from the store, as they are written)."""
    try:
        with sheet:
            async for rows in pages:
                for row in rows:
                    sheet.add(row)
    except OSError as error:
        return _cannot_write(output, error)
    return 0


def _cannot_write(output: Path, error: OSError) -> int:
    print(f"cannot write {output}: {error.strerror or error}", file=sys.stderr)
    return 1
