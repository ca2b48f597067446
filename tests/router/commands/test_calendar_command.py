"""`hotline400 calendar`: a year as the router sees it, each day with its source."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml

from dialplan.calendar import load_calendar
from router.cli import main
from tests.conftest import REPO

Capture = pytest.CaptureFixture[str]
SHIPPED_CONFIG = REPO / "config"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return Path(shutil.copytree(SHIPPED_CONFIG, tmp_path / "config"))


def calendar(capsys: Capture, config_dir: Path, *argv: str) -> tuple[int, list[str]]:
    code = main(["calendar", "--config", str(config_dir), *argv])
    captured = capsys.readouterr()
    return code, (captured.out + captured.err).splitlines()


def test_an_undeclared_year_lists_its_estimated_statutory_holidays(
    capsys: Capture, config_dir: Path
) -> None:
    code, lines = calendar(capsys, config_dir, "--year", "2027")
    assert code == 0
    assert lines[1] == "holidays:"
    assert lines[2].split() == ["2027-01-01", "Fri", "New", "Year's", "Day", "estimated"]
    assert any(line.startswith("  2027-02-08 Mon  Chinese New Year") for line in lines)
    assert lines[lines.index("adjusted working weekends:") + 1] == "  none known"
    assert "  2027-01 20  4-8, 11-15, 18-22, 25-29" in "\n".join(lines)
    assert lines[-2] == (
        "2027: 248 working days, 19 holidays, 0 adjusted working weekend days; "
        "days by source: estimated 365"
    )


def test_an_announced_year_shows_the_library_and_its_adjusted_weekends(
    capsys: Capture, config_dir: Path
) -> None:
    code, lines = calendar(capsys, config_dir, "--year", "2026")
    assert code == 0
    adjusted = lines[lines.index("adjusted working weekends:") + 1 : lines.index("working days:")]
    assert [line.split()[0] for line in adjusted] == [
        "2026-01-04",
        "2026-02-14",
        "2026-02-28",
        "2026-05-09",
        "2026-09-20",
        "2026-10-10",
    ]
    assert all(line.endswith("library") for line in adjusted)
    assert "estimated" not in "\n".join(lines)


def test_declared_dates_show_as_config_beside_the_estimate(
    capsys: Capture, config_dir: Path
) -> None:
    (config_dir / "calendar.yaml").write_text(
        "holidays:\n  2027-02-11: Spring Festival\nworkdays:\n  2027-02-20: Spring Festival\n",
        encoding="utf-8",
    )
    _, lines = calendar(capsys, config_dir, "--year", "2027")
    assert "  2027-02-11 Thu  Spring Festival" in "\n".join(lines)
    assert next(line for line in lines if line.startswith("  2027-02-20")).endswith("config")
    february = next(line for line in lines if line.startswith("  2027-02 "))
    assert february.endswith("config, estimated")


def test_the_heading_names_where_the_years_days_come_from(
    capsys: Capture, config_dir: Path
) -> None:
    """A year the calendar file does not declare must not read as declared there."""
    _, announced = calendar(capsys, config_dir, "--year", "2026")
    assert announced[0] == "official calendar 2026 (the State Council's schedule, built in)"
    _, undeclared = calendar(capsys, config_dir, "--year", "2027")
    assert undeclared[0] == (
        "official calendar 2027 (estimated from the holidays' rules: not announced yet, "
        f"declare it in {config_dir / 'calendar.yaml'})"
    )
    (config_dir / "calendar.yaml").write_text("covers: [2027]\n", encoding="utf-8")
    _, declared = calendar(capsys, config_dir, "--year", "2027")
    assert declared[0] == f"official calendar 2027 (declared in {config_dir / 'calendar.yaml'})"


def test_yaml_output_is_a_calendar_file_that_loads_back(
    capsys: Capture, config_dir: Path, tmp_path: Path
) -> None:
    code, lines = calendar(capsys, config_dir, "--year", "2027", "--yaml")
    assert code == 0
    path = tmp_path / "calendar.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["covers"] == [2027]
    declared = load_calendar(path)
    assert declared.day(date(2027, 2, 9)).source == "config"
    assert declared.estimated_holidays(2027) == []


def test_a_broken_calendar_file_is_reported_with_its_line(
    capsys: Capture, config_dir: Path
) -> None:
    (config_dir / "calendar.yaml").write_text("holidays:\n  2027-02-30: x\n", encoding="utf-8")
    code, lines = calendar(capsys, config_dir, "--year", "2027")
    assert code == 1
    path = config_dir / "calendar.yaml"
    assert lines == [f"{path}:2 holidays.2027-02-30: not a date (YYYY-MM-DD)"]
