"""The official Chinese calendar: built-in schedule, admins' declarations, fallback rule."""

from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialplan.calendar import ESTIMATE_RULE, FALLBACK_RULE, OfficialCalendar, load_calendar
from dialplan.errors import ConfigError, Problem
from tests.conftest import REPO

REPO = REPO

DECLARED_2027 = """\
# Official schedule declared by admins; wins over the built-in calendar.
covers: [2027]
holidays:
  2027-01-01: New Year's Day
workdays:
  2027-02-07: Spring Festival (adjusted working day)
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "calendar.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_calendar(path)
    return [str(problem) for problem in raised.value.problems]


# --- the built-in schedule ---------------------------------------------------------------


def test_national_day_2026_is_a_holiday_from_the_library():
    day = OfficialCalendar().day(date(2026, 10, 1))
    assert (day.holiday, day.workday) == (True, False)
    assert day.name == "National Day"
    assert day.source == "library"


@pytest.mark.parametrize("adjusted", [date(2026, 2, 14), date(2026, 9, 20)])
def test_adjusted_working_weekend_day_of_2026_is_a_workday(adjusted: date):
    day = OfficialCalendar().day(adjusted)
    assert adjusted.weekday() >= 5
    assert (day.workday, day.holiday) == (True, False)
    assert day.source == "library"


def test_ordinary_saturday_is_a_restday_but_not_a_holiday():
    day = OfficialCalendar().day(date(2026, 11, 21))
    assert (not day.workday, day.holiday, day.name) == (True, False, None)
    assert day.source == "library"


# --- declarations win, the fallback fills the rest -------------------------------------------


def test_declared_new_years_day_2027_is_a_holiday_from_config(tmp_path):
    day = load_calendar(write(tmp_path, DECLARED_2027)).day(date(2027, 1, 1))
    assert (day.holiday, not day.workday, day.name, day.source) == (
        True,
        True,
        "New Year's Day",
        "config",
    )


def test_declared_adjusted_sunday_2027_is_a_workday_from_config(tmp_path):
    day = load_calendar(write(tmp_path, DECLARED_2027)).day(date(2027, 2, 7))
    assert (day.workday, day.source) == (True, "config")


def test_undeclared_date_of_a_covered_year_is_monday_to_friday_from_config(tmp_path):
    calendar = load_calendar(write(tmp_path, DECLARED_2027))
    monday, saturday = calendar.day(date(2027, 3, 1)), calendar.day(date(2027, 3, 6))
    assert (monday.workday, monday.source) == (True, "config")
    assert (saturday.workday, saturday.holiday, saturday.source) == (False, False, "config")


def test_date_known_nowhere_falls_back_to_monday_to_friday_and_says_so():
    calendar = OfficialCalendar()
    monday, saturday = calendar.day(date(2101, 1, 3)), calendar.day(date(2101, 1, 1))
    assert (monday.workday, monday.holiday, monday.source) == (True, False, "fallback")
    assert (saturday.workday, saturday.holiday, saturday.source) == (False, False, "fallback")
    assert str(monday) == f"2101-01-03 workday [fallback: {FALLBACK_RULE}]"


# --- the estimate of the statutory holidays, after the built-in years ---------------------


def test_new_years_day_2027_is_an_estimated_holiday_not_a_working_friday():
    day = OfficialCalendar().day(date(2027, 1, 1))
    assert (day.workday, day.holiday, day.name, day.source) == (
        False,
        True,
        "New Year's Day",
        "estimated",
    )
    assert str(day) == f"2027-01-01 holiday: New Year's Day [estimated: {ESTIMATE_RULE}]"


def test_the_2027_spring_festival_week_is_estimated_from_the_lunar_calendar():
    calendar = OfficialCalendar()
    week = [calendar.day(date(2027, 2, day)) for day in range(5, 11)]
    assert all(info.holiday and info.source == "estimated" for info in week)
    assert week[1].name == "Chinese New Year (Spring Festival)"
    assert calendar.day(date(2027, 2, 11)).workday


def test_every_statutory_holiday_of_2027_is_estimated():
    names = {info.name for info in OfficialCalendar().estimated_holidays(2027)}
    for holiday in (
        "New Year's Day",
        "Chinese New Year (Spring Festival)",
        "Tomb-Sweeping Day",
        "Labor Day",
        "Dragon Boat Festival",
        "Mid-Autumn Festival",
        "National Day",
    ):
        assert holiday in names


def test_an_ordinary_day_of_an_estimated_year_is_monday_to_friday_labelled_estimated():
    calendar = OfficialCalendar()
    monday, saturday = calendar.day(date(2027, 3, 1)), calendar.day(date(2027, 3, 6))
    assert (monday.workday, monday.source) == (True, "estimated")
    assert (saturday.workday, saturday.holiday, saturday.source) == (False, False, "estimated")


def test_declared_dates_win_over_the_estimate():
    calendar = OfficialCalendar(
        holidays={date(2027, 2, 11): "Spring Festival"},
        workdays={date(2027, 2, 10): "Spring Festival (adjusted working day)"},
    )
    assert calendar.day(date(2027, 2, 11)).source == "config"
    assert calendar.day(date(2027, 2, 10)).workday
    assert calendar.day(date(2027, 2, 9)).source == "estimated"
    assert (
        len(calendar.estimated_holidays(2027))
        == len(OfficialCalendar().estimated_holidays(2027)) - 1
    )


def test_a_covered_year_is_never_estimated():
    assert OfficialCalendar(covers=[2027]).estimated_holidays(2027) == []
    assert OfficialCalendar(covers=[2027]).day(date(2027, 1, 1)).source == "config"


def test_the_library_years_are_never_estimated():
    assert OfficialCalendar().estimated_holidays(2026) == []


def test_a_year_lists_every_day_in_order():
    days = OfficialCalendar().year(2028)
    assert len(days) == 366
    assert [info.date for info in days[:2]] == [date(2028, 1, 1), date(2028, 1, 2)]


def test_declared_date_of_2026_overrides_the_library(tmp_path):
    path = write(tmp_path, "holidays:\n  2026-10-10: Company day off\n")
    day = load_calendar(path).day(date(2026, 10, 10))
    assert OfficialCalendar().day(date(2026, 10, 10)).workday
    assert (day.holiday, day.name, day.source) == (True, "Company day off", "config")


def test_declared_holidays_without_covers_leave_the_rest_of_the_year_to_the_estimate(tmp_path):
    calendar = load_calendar(write(tmp_path, "holidays:\n  2027-01-01: New Year's Day\n"))
    assert calendar.day(date(2027, 1, 1)).source == "config"
    assert calendar.day(date(2027, 1, 4)).source == "estimated"


def test_trace_text_names_the_day_and_its_source():
    national_day = OfficialCalendar().day(date(2026, 10, 1))
    assert str(national_day) == "2026-10-01 holiday: National Day [library]"


def test_a_datetime_is_refused_so_a_call_time_is_not_mistaken_for_a_date():
    with pytest.raises(TypeError):
        OfficialCalendar().day(datetime(2026, 10, 1, 9, 0))


def test_a_date_declared_both_holiday_and_workday_is_refused_by_the_constructor():
    with pytest.raises(ValueError, match="2027-01-01"):
        OfficialCalendar(holidays={date(2027, 1, 1): "a"}, workdays={date(2027, 1, 1): "b"})


@given(st.dates(min_value=date(2004, 1, 1), max_value=date(2035, 12, 31)))
def test_every_date_is_either_a_workday_or_a_restday_and_never_raises(d: date):
    for calendar in (OfficialCalendar(), OfficialCalendar(covers=[2027, 2028])):
        day = calendar.day(d)
        assert not (day.holiday and day.workday)
        assert day.source in ("config", "library", "estimated")


# --- the file -------------------------------------------------------------------------------


def test_missing_file_declares_nothing(tmp_path):
    calendar = load_calendar(tmp_path / "absent.yaml")
    assert calendar.day(date(2027, 1, 1)).source == "estimated"


def test_empty_file_declares_nothing(tmp_path):
    assert load_calendar(write(tmp_path, "# nothing yet\n")).covered_until() == date(2026, 12, 31)


def test_shipped_example_file_loads_and_declares_no_year():
    calendar = load_calendar(REPO / "config" / "calendar.yaml")
    assert calendar.covered_until() == date(2026, 12, 31)
    assert calendar.day(date(2027, 1, 1)).source == "estimated"


def test_an_entry_of_covers_that_is_not_a_year_is_told_as_written(tmp_path):
    path = write(
        tmp_path,
        """\
covers:
  - 2027
  - 2028-01-01
  - "２０２９"
  - [2030]
  - {year: 2031}
  -
""",
    )
    assert problems_of(path) == [
        f"{path}:3 covers[1]: not a year like 2027 (found 2028-01-01)",
        f"{path}:4 covers[2]: not a year like 2027 (found ２０２９)",
        f"{path}:5 covers[3]: not a year like 2027 (found a list)",
        f"{path}:6 covers[4]: not a year like 2027 (found a mapping)",
        f"{path}:7 covers[5]: not a year like 2027 (found nothing)",
    ]


def test_every_problem_in_the_file_is_reported_at_once_with_its_line(tmp_path):
    path = write(
        tmp_path,
        """\
covers: [2027, next, 27]
holidays:
  2027-01-01: New Year's Day
  2027-13-01: Nowhere Day
  2027-1-2: Short Day
  2027-01-01: Again
  2027-05-01:
workdays:
  2027-01-01: Spring Festival (adjusted working day)
timezone: Asia/Shanghai
""",
    )
    assert problems_of(path) == [
        f"{path}:1 covers[1]: not a year like 2027 (found next)",
        f"{path}:1 covers[2]: not a year like 2027 (found 27)",
        f"{path}:4 holidays.2027-13-01: not a date (YYYY-MM-DD)",
        f"{path}:5 holidays.2027-1-2: not a date (YYYY-MM-DD)",
        f"{path}:6 holidays.2027-01-01: listed twice (first at line 3)",
        f"{path}:7 holidays.2027-05-01: expected a name, e.g. New Year's Day",
        f"{path}:9 workdays.2027-01-01: also declared a holiday at line 3; "
        "a date is one or the other",
        f"{path}:10 timezone: unknown key (expected covers, holidays, workdays)",
    ]


def test_problem_reads_file_line_field_message():
    problem = Problem("config/calendar.yaml", 7, "holidays.2027-13-01", "not a date (YYYY-MM-DD)")
    assert str(problem) == "config/calendar.yaml:7 holidays.2027-13-01: not a date (YYYY-MM-DD)"
    assert str(ConfigError([problem, problem])) == f"{problem}\n{problem}"


def test_sections_of_the_wrong_shape_are_reported(tmp_path):
    path = write(tmp_path, "covers: 2027\nholidays: [2027-01-01]\nworkdays: yes\ncovers: []\n")
    assert problems_of(path) == [
        f"{path}:1 covers: expected a list of years (found 2027: write [2027])",
        f"{path}:2 holidays: expected lines of YYYY-MM-DD: name",
        f"{path}:3 workdays: expected lines of YYYY-MM-DD: name",
        f"{path}:4 covers: key given twice (first at line 1); only one may stand",
    ]


def test_a_file_that_is_not_a_mapping_is_reported(tmp_path):
    path = write(tmp_path, "- 2027-01-01\n")
    assert problems_of(path) == [
        f"{path}:1 (file): a calendar file is a mapping of keys (covers, holidays, workdays)"
    ]


def test_a_misspelt_key_is_told_the_key_it_is_closest_to(tmp_path):
    path = write(tmp_path, "covers: [2027]\nholiday:\n  2027-01-01: New Year's Day\n")
    assert problems_of(path) == [f"{path}:2 holiday: unknown key (did you mean holidays?)"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "covers: [2027]\nholidays:\n  2027-01-01: New Year's Day\n bad: [\n",
            "4 (file): invalid YAML at column 2: expected <block end>, but found "
            "'<block mapping start>' (check this line's indentation against the lines above)",
        ),
        (
            "covers: [2027]\nholidays:\n\t2027-01-01: New Year's Day\n",
            "3 (file): invalid YAML at column 1: a tab character; indent with spaces "
            "(YAML does not accept tabs)",
        ),
        (
            "covers: [2027\nholidays:\n  2027-01-01: New Year's Day\n",
            "2 (file): invalid YAML at column 9: expected ',' or ']', but got ':' "
            "(the [ at line 1 is not closed)",
        ),
        (
            "holidays:\n  2027-01-01: \"New Year's Day\n  2027-10-01: National Day\n",
            "4 (file): invalid YAML at column 1: found unexpected end of stream "
            '(the " opened at line 2 is not closed)',
        ),
        (
            "holidays:\n  2027-01-01: New Year\x00s Day\n",
            "2 (file): invalid YAML at column 23: the character U+0000 is not allowed in "
            "YAML: remove it",
        ),
    ],
    ids=["an indentation", "a tab", "an unclosed bracket", "an unclosed quote", "a control"],
)
def test_a_yaml_mistake_says_where_and_what_to_look_for_as_in_a_plan(tmp_path, text, problem):
    path = write(tmp_path, text)
    assert problems_of(path) == [f"{path}:{problem}"]


def test_a_file_saved_in_gbk_names_the_line_and_column_of_its_first_unreadable_byte(tmp_path):
    path = tmp_path / "calendar.yaml"
    path.write_bytes("covers: [2027]\nholidays:\n  2027-10-01: 国庆节\n".encode("gbk"))
    assert problems_of(path) == [
        f"{path}:3 (file): not UTF-8 text: byte 0xb9 at column 15 cannot be read; save the "
        "file as UTF-8 (an editor's GBK or GB18030 is not read)"
    ]


# --- coverage and the expiry warning ----------------------------------------------------------


def test_calendar_is_covered_until_the_end_of_the_library_years():
    assert OfficialCalendar().covered_until() == date(2026, 12, 31)


def test_declared_years_extend_coverage_only_without_a_gap():
    assert OfficialCalendar(covers=[2027, 2028]).covered_until() == date(2028, 12, 31)
    assert OfficialCalendar(covers=[2028]).covered_until() == date(2026, 12, 31)


def test_expiry_is_warned_within_60_days():
    warning = OfficialCalendar().expiry_warning(today=date(2026, 11, 23))
    assert warning == (
        "official calendar ends 2026-12-31 (38 days left): declare the 2027 schedule in the "
        "calendar file (holidays, workdays, covers: [2027]); 19 statutory holiday days of "
        "2027 are only estimated (adjusted working weekends unknown) until then"
    )


def test_expiry_warning_past_the_estimate_names_the_fallback_rule():
    warning = OfficialCalendar(covers=range(2027, 2101)).expiry_warning(today=date(2100, 12, 1))
    assert warning is not None
    assert warning.endswith(
        "dates after 2100-12-31 fall back to Monday-Friday working, no public holidays"
    )


def test_expiry_is_warned_from_exactly_60_days_before_and_not_61():
    calendar = OfficialCalendar()
    assert calendar.expiry_warning(today=date(2026, 11, 1)) is not None
    assert calendar.expiry_warning(today=date(2026, 10, 31)) is None


def test_no_expiry_warning_once_next_year_is_declared():
    assert OfficialCalendar(covers=[2027]).expiry_warning(today=date(2026, 11, 23)) is None


def test_expiry_warning_says_when_the_calendar_has_already_ended():
    warning = OfficialCalendar().expiry_warning(today=date(2027, 1, 10))
    assert warning is not None
    assert warning.startswith("official calendar ended 2026-12-31 (10 days ago): ")


def test_a_calendar_path_that_cannot_be_read_is_a_problem_naming_the_file(tmp_path):
    (tmp_path / "calendar.yaml").mkdir()
    with pytest.raises(ConfigError) as refused:
        load_calendar(tmp_path / "calendar.yaml")
    (problem,) = refused.value.problems
    assert (problem.file, problem.line, problem.field) == (
        str(tmp_path / "calendar.yaml"),
        1,
        "(file)",
    )
    assert problem.message.startswith("cannot read: ")
