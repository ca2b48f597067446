"""The .xlsx writer of the exports: each value in the cell type Excel keeps, rows streamed
to a scratch folder that goes away, and more rows than a sheet holds continued on the next."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from router.commands.workbook import EXCEL_ROWS, ExportSheet
from router.storage.cdr import Outcome
from tests.xlsx_reading import Cell, read_workbook

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder temporary files go to in this test alone: other tests running beside it
    write their own exports' scratch folders into the machine's."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_each_value_gets_the_cell_excel_keeps_it_in(tmp_path: Path) -> None:
    output = tmp_path / "out.xlsx"
    columns = ["text", "at", "money", "count", "flag", "outcome", "empty"]
    with ExportSheet(output, columns, title="t", zone=SHANGHAI, times={"at"}) as sheet:
        at = datetime(2026, 11, 23, 16, 30, 5, tzinfo=UTC)  # 00:30:05 the next day in Beijing
        sheet.add(["007", at, Decimal("-0.10"), 12, True, Outcome.NOANSWER, None])
    [row] = read_workbook(output)["t"].rows
    assert row["text"] == Cell("007", "@")
    assert row["at (Asia/Shanghai)"].as_time() == datetime(2026, 11, 24, 0, 30, 5)
    assert row["money"] == Cell(-0.1, "0.00")
    assert row["count"] == Cell(12, "0")
    assert row["flag"].value is True
    assert row["outcome"] == Cell("noanswer", "@")
    assert "empty" not in row


def test_a_value_without_a_cell_type_is_refused_and_no_file_is_left(
    tmp_path: Path, scratch: Path
) -> None:
    output = tmp_path / "out.xlsx"
    with pytest.raises(TypeError), ExportSheet(output, ["x"], title="t", zone=SHANGHAI) as sheet:
        sheet.add([3.5])  # a float: money is Decimal, counts are int
    assert not output.exists()
    assert list(scratch.iterdir()) == []


def test_rows_beyond_a_sheets_limit_continue_on_the_next_sheet_under_the_same_header(
    tmp_path: Path, scratch: Path
) -> None:
    """Excel's sheet ends at 1,048,576 rows: an export longer than that is not cut short."""
    output = tmp_path / "out.xlsx"
    sheet = ExportSheet(output, ["n"], title="calls", zone=SHANGHAI, rows_per_sheet=3)
    with sheet:
        for n in range(5):
            sheet.add([str(n)])
    sheets = read_workbook(output)
    assert list(sheets) == ["calls", "calls 2", "calls 3"]
    assert [[row["n"].value for row in s.rows] for s in sheets.values()] == [
        ["0", "1"],
        ["2", "3"],
        ["4"],
    ]
    assert {s.header[0] for s in sheets.values()} == {"n"}
    assert list(scratch.iterdir()) == []


def test_a_sheet_is_never_asked_to_hold_more_rows_than_excel_shows(tmp_path: Path) -> None:
    """XlsxWriter answers a row past 1,048,576 with -1 and writes nothing: a sheet of more
    rows than that would lose the rest without a word, so none is made."""
    output = tmp_path / "out.xlsx"
    with pytest.raises(ValueError, match="1,048,576 rows"):
        ExportSheet(output, ["n"], title="calls", zone=SHANGHAI, rows_per_sheet=EXCEL_ROWS + 1)
    assert not output.exists()


def test_a_cell_excel_cannot_hold_stops_the_export_rather_than_go_missing(
    tmp_path: Path, scratch: Path
) -> None:
    """Whatever XlsxWriter refuses to place (here a column past Excel's 16,384th) ends the
    export with an error and no file, never a workbook quietly short of it."""
    output = tmp_path / "out.xlsx"
    with (
        pytest.raises(OverflowError, match="column 16,385"),
        ExportSheet(output, ["a"], title="t", zone=SHANGHAI) as sheet,
    ):
        sheet.add(["x"] * 16_385)
    assert not output.exists()
    assert list(scratch.iterdir()) == []
