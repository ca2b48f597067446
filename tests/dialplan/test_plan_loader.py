"""Plan files: every problem of a file at once, each with file, line, field and a plain message."""

import asyncio
import shutil
import textwrap
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dialplan import plan_loader
from dialplan.errors import ConfigError
from dialplan.pin import hash_pin, verify_pin
from dialplan.plan import Plan
from dialplan.plan_loader import load_plan, load_plans, parse_plan
from router.configuration import plan_book as plan_book_module
from router.configuration.plan_book import PlanBook
from tests.conftest import REPO

EXAMPLES = REPO / "config" / "plans"


def problems_of(text: str, file: str = "config/plans/4006001234.yaml") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_plan(file, textwrap.dedent(text).lstrip())
    return [str(problem) for problem in caught.value.problems]


def test_the_example_plans_load() -> None:
    plans, problems = load_plans(EXAMPLES)
    assert problems == []
    assert sorted(plans) == ["4001234567", "4006001234", "4008207788"]


def test_a_split_that_does_not_sum_to_100_names_file_line_and_field() -> None:
    assert problems_of(
        """
        number: "4006001234"
        name: Test Co.
        rules:
          - name: a
            target: "13900000001"
          - name: b
            target: "13900000002"
          - name: orders
            split:
              - {number: "02155556666", percent: 60}
              - {number: "02866667777", percent: 30}
        default: {target: "13900000001"}
        """
    ) == ["config/plans/4006001234.yaml:9 rules[2].split: percentages sum to 90, must be 100"]


def test_all_problems_of_a_file_are_reported_at_once() -> None:
    assert problems_of(
        """
        number: "4006001234"
        name: Test Co.
        stauts: active
        ring_timeout: 500
        screening:
          mode: block
        forwarding:
          on_busy: ["13900000001", "13900000002", "13900000003"]
          max_forwards: 4
        rules:
          - name: night
            when: {time: ["22:00-25:00"], days: [fri, someday]}
            target: "13900000001"
        """
    ) == [
        "config/plans/4006001234.yaml:1 default: required field is missing",
        "config/plans/4006001234.yaml:3 stauts: unknown key (did you mean status?)",
        "config/plans/4006001234.yaml:4 ring_timeout: must be less than or equal to 120 "
        "(found 500)",
        "config/plans/4006001234.yaml:6 screening.mode: must be 'allow' or 'deny' (found 'block')",
        "config/plans/4006001234.yaml:8 forwarding.on_busy: 3 busy forwarding numbers, "
        "at most 2 are allowed (a subscriber registers 2 for busy and 2 for no-answer)",
        "config/plans/4006001234.yaml:9 forwarding.max_forwards: 4 forwards per call, "
        "at most 3 are allowed in one call",
        "config/plans/4006001234.yaml:12 rules[0].when.days[1]: must be 'mon', 'tue', 'wed', "
        "'thu', 'fri', 'sat' or 'sun' (found 'someday')",
        "config/plans/4006001234.yaml:12 rules[0].when.time: '22:00-25:00' is not a window "
        "like '09:00-18:00'",
    ]


def test_a_third_busy_number_in_a_rule_override_is_refused() -> None:
    assert problems_of(
        """
        number: "4006001234"
        name: Test Co.
        forwarding:
          on_busy: ["13900000001", "13900000002"]
        rules:
          - name: night
            target: "13900000009"
            forwarding:
              on_busy: ["13900000005"]
        default: {target: "13900000001"}
        """
    ) == [
        "config/plans/4006001234.yaml:9 rules[0].forwarding.on_busy: 3 different busy "
        "forwarding numbers across the plan (13900000001, 13900000002, 13900000005), at most 2 "
        "per subscriber (2 for busy and 2 for no-answer, rule overrides included)"
    ]


def test_no_answer_numbers_are_counted_across_every_override() -> None:
    assert problems_of(
        """
        number: "4006001234"
        name: Test Co.
        forwarding:
          on_no_answer: ["13900000003"]
        rules:
          - name: day
            target: "13900000009"
            forwarding: {on_no_answer: ["13900000004"]}
        default:
          target: "13900000001"
          forwarding: {on_no_answer: ["13900000006"]}
        """
    ) == [
        "config/plans/4006001234.yaml:11 default.forwarding.on_no_answer: 3 different "
        "no-answer forwarding numbers across the plan (13900000003, 13900000004, 13900000006), "
        "at most 2 per subscriber (2 for busy and 2 for no-answer, rule overrides included)"
    ]


def test_the_same_two_busy_and_two_no_answer_numbers_may_be_reused_by_every_rule() -> None:
    plan = parse_plan(
        "config/plans/4006001234.yaml",
        textwrap.dedent(
            """
            number: "4006001234"
            name: Test Co.
            forwarding:
              on_busy: ["13900000001", "13900000002"]
              on_no_answer: ["13900000003", "13900000004"]
            rules:
              - name: night
                target: "13900000009"
                forwarding: {on_busy: ["13900000002", "13900000001"], on_no_answer: ["13900000004"]}
            default:
              target: "13900000001"
              forwarding: {on_busy: ["13900000002"]}
            """
        ),
    )
    assert plan.rules[0].forwarding is not None


def test_a_route_needs_exactly_one_of_target_split_reject_or_menu() -> None:
    assert problems_of(
        """
        number: "4006001234"
        name: Test Co.
        default:
          target: "13900000001"
          reject: closed
        """
    ) == [
        "config/plans/4006001234.yaml:3 default: give exactly one of target, split, reject or "
        "menu (found target, reject)"
    ]


def test_phone_numbers_must_be_quoted_so_yaml_keeps_the_leading_zero() -> None:
    assert problems_of(
        """
        number: "4006001234"
        name: Test Co.
        default: {target: 02155556666}
        """
    ) == [
        "config/plans/4006001234.yaml:3 default.target: write phone numbers as quoted strings "
        "(YAML reads 0531... as a number and drops the 0)"
    ]


def test_a_pin_in_clear_is_refused() -> None:
    assert problems_of(
        """
        number: "4006001234"
        name: Test Co.
        pin: {hash: "2468"}
        default: {target: "13900000001"}
        """
    ) == [
        "config/plans/4006001234.yaml:3 pin.hash: not a salted PIN hash: store the output of "
        "`hotline400 pin-hash`, never the PIN"
    ]


def test_unknown_regions_are_refused() -> None:
    assert problems_of(
        """
        number: "4006001234"
        name: Test Co.
        screening:
          callers:
            provinces: [山东, Atlantis]
            cities: [Gotham]
            area_codes: ["531"]
        default: {target: "13900000001"}
        """
    ) == [
        "config/plans/4006001234.yaml:5 screening.callers.provinces[1]: 'Atlantis' is not a "
        "province of China",
        "config/plans/4006001234.yaml:6 screening.callers.cities[0]: 'Gotham' is not a city known "
        "to the geocoder",
        "config/plans/4006001234.yaml:7 screening.callers.area_codes[0]: '531' is not an area "
        "code like '010' or '0531'",
    ]


@pytest.mark.parametrize(
    ("city", "message"),
    [
        (
            "Suzhou",
            "'Suzhou' names several cities (宿州 in 安徽, 苏州 in 江苏): write the one "
            "meant in Chinese",
        ),
        (
            "taizhou",
            "'taizhou' names several cities (泰州 in 江苏, 台州 in 浙江): write the one "
            "meant in Chinese",
        ),
        ("Shandong", "'Shandong' is a province-level region, not a city: list it under provinces"),
        ("香港", "'香港' is a province-level region, not a city: list it under provinces"),
    ],
)
def test_a_city_name_that_cannot_be_placed_says_why(city: str, message: str) -> None:
    assert problems_of(
        f"""
        number: "4006001234"
        name: Test Co.
        blacklist: {{cities: ["{city}"]}}
        default: {{target: "13900000001"}}
        """
    ) == [f"config/plans/4006001234.yaml:3 blacklist.cities[0]: {message}"]


def test_a_listed_number_no_caller_can_have_is_refused_rather_than_matching_nobody() -> None:
    assert problems_of(
        """
        number: "4006001234"
        name: Test Co.
        blacklist:
          numbers: ["13012345678", "8888 9999"]
        queue:
          vip: {numbers: ["1380165123"]}
        default: {target: {number: "13900000001", max_calls: 2}}
        """
    ) == [
        "config/plans/4006001234.yaml:4 blacklist.numbers[1]: '8888 9999' is no number a caller "
        "can have, so it would match no call: write a fixed line with its area code "
        "('0531 8888 6666'), a mobile with its 11 digits, or a number abroad with its country "
        "code ('+852 2123 4567')",
        "config/plans/4006001234.yaml:6 queue.vip.numbers[0]: '1380165123' is no number a caller "
        "can have, so it would match no call: write a fixed line with its area code "
        "('0531 8888 6666'), a mobile with its 11 digits, or a number abroad with its country "
        "code ('+852 2123 4567')",
    ]
    plan = parse_plan(
        "4006001234.yaml",
        'number: "4006001234"\nname: T\n'
        'blacklist: {numbers: ["0531-8888 9999", "+86 139 0531 0001", "10086", "+852 2123 4567"]}\n'
        'default: {target: "13905310001"}\n',
    )
    assert plan.blacklist.numbers == ["053188889999", "13905310001", "10086", "+85221234567"]


def test_a_bad_entry_of_a_caller_list_is_named_at_its_own_line() -> None:
    """A long blacklist or VIP list is read entry by entry: the problem points at the entry,
    not at the list's first line."""
    assert problems_of(
        """
        number: "4006001234"
        name: T
        blacklist:
          numbers:
            - "13012345678"
            - "8888 9999"
          prefixes:
            - "139"
            - "12"
          area_codes:
            - "0531"
            - "531"
          provinces:
            - 山东
            - Atlantis
          cities:
            - 济南
            - Gotham
        queue:
          vip:
            numbers:
              - "13800000011"
              - "1380165123"
        default: {target: {number: "13900000001", max_calls: 2}}
        """
    ) == [
        "config/plans/4006001234.yaml:6 blacklist.numbers[1]: '8888 9999' is no number a caller "
        f"can have, {NO_CALL}",
        "config/plans/4006001234.yaml:9 blacklist.prefixes[1]: '12' is not a number prefix "
        "(3 digits or more, or + and a country code)",
        "config/plans/4006001234.yaml:12 blacklist.area_codes[1]: '531' is not an area code "
        "like '010' or '0531'",
        "config/plans/4006001234.yaml:15 blacklist.provinces[1]: 'Atlantis' is not a province "
        "of China",
        "config/plans/4006001234.yaml:18 blacklist.cities[1]: 'Gotham' is not a city known to "
        "the geocoder",
        "config/plans/4006001234.yaml:23 queue.vip.numbers[1]: '1380165123' is no number a "
        f"caller can have, {NO_CALL}",
    ]


NO_CALL = (
    "so it would match no call: write a fixed line with its area code ('0531 8888 6666'), a "
    "mobile with its 11 digits, or a number abroad with its country code ('+852 2123 4567')"
)


def test_duplicate_keys_and_a_mismatched_file_name_are_reported() -> None:
    assert problems_of(
        """
        number: "4008207788"
        name: Test Co.
        name: Other Co.
        default: {target: "13900000001"}
        """
    ) == [
        "config/plans/4006001234.yaml:3 name: key given twice (first at line 2); only one may stand"
    ]
    assert problems_of(
        """
        number: "4008207788"
        name: Test Co.
        default: {target: "13900000001"}
        """
    ) == [
        "config/plans/4006001234.yaml:1 number: 4008207788 does not match the file name "
        "4006001234.yaml"
    ]


def test_rule_names_are_unique_and_require_pin_needs_a_pin() -> None:
    assert problems_of(
        """
        number: "4006001234"
        name: Test Co.
        rules:
          - {name: a, target: "13900000001"}
          - {name: a, target: "13900000002", require_pin: true}
        default: {target: "13900000001"}
        """
    ) == [
        "config/plans/4006001234.yaml:5 rules[1].name: rule name 'a' is already used by rules[0]",
        "config/plans/4006001234.yaml:5 rules[1].require_pin: require_pin needs a pin: section "
        "in the plan",
    ]


def test_recording_fields_are_checked_with_their_line() -> None:
    assert problems_of(
        """
        number: "4006001234"
        name: Test Co.
        rules:
          - {name: a, target: "13900000001", record: true}
        default: {target: "13900000001"}
        """
    ) == [
        "config/plans/4006001234.yaml:4 rules[0].record: record needs a recording: section "
        "in the plan",
    ]
    assert problems_of(
        """
        number: "4006001234"
        name: Test Co.
        recording: {notice: "bad notice", applies_to: some}
        rules:
          - {name: a, reject: closed, record: true}
        default: {target: "13900000001"}
        """
    ) == [
        "config/plans/4006001234.yaml:3 recording.notice: 'bad notice' is not a sound file name "
        "(letters, digits, _-/., at most 120)",
        "config/plans/4006001234.yaml:3 recording.applies_to: must be 'all' or 'rules' "
        "(found 'some')",
    ]


def test_survey_fields_are_checked_with_their_line() -> None:
    assert problems_of(
        """
        number: "4006001234"
        name: Test Co.
        menus:
          main:
            prompt: acme/main
            options:
              1: {target: "13900000001", survey: true}
            default: {target: "13900000001"}
        default: {menu: main}
        """
    ) == [
        "config/plans/4006001234.yaml:7 menus.main.options.1.survey: survey needs a survey: "
        "section in the plan",
    ]
    assert problems_of(
        """
        number: "4006001234"
        name: Test Co.
        survey:
          prompt: "bad prompt"
          timeout: 0
          retries: 4
          scale: 10
        rules:
          - {name: a, reject: closed, survey: true}
          - {name: b, target: "13900000002", survey: true}
        default: {target: "13900000001"}
        """
    ) == [
        "config/plans/4006001234.yaml:4 survey.prompt: 'bad prompt' is not a sound file name "
        "(letters, digits, _-/., at most 120)",
        "config/plans/4006001234.yaml:5 survey.timeout: must be greater than or equal to 1 "
        "(found 0)",
        "config/plans/4006001234.yaml:6 survey.retries: must be less than or equal to 3 (found 4)",
        "config/plans/4006001234.yaml:7 survey.scale: unknown key (expected prompt, timeout, "
        "retries, invalid_prompt, thanks, applies_to)",
    ]
    assert problems_of(
        """
        number: "4006001234"
        name: Test Co.
        survey: {thanks: acme/thanks}
        rules:
          - {name: a, reject: closed, survey: true}
        default: {target: "13900000001", survey: true}
        """
    ) == [
        "config/plans/4006001234.yaml:5 rules[0].survey: survey does nothing while "
        "survey.applies_to is all (every answered call is asked)",
        "config/plans/4006001234.yaml:5 rules[0].survey: a route that refuses calls surveys nobody",
        "config/plans/4006001234.yaml:6 default.survey: survey does nothing while "
        "survey.applies_to is all (every answered call is asked)",
    ]


def test_a_misspelt_key_is_told_the_key_it_is_closest_to_where_it_stands() -> None:
    assert problems_of(
        """
        number: "4006001234"
        name: Test Co.
        forwading:
          on_busy: ["13900000002"]
        rules:
          - name: day
            when: {tme: ["08:00-18:00"]}
            target: "13900000001"
        default: {target: "13900000001", ring_timout: 20, colour: red}
        """
    ) == [
        "config/plans/4006001234.yaml:3 forwading: unknown key (did you mean forwarding?)",
        "config/plans/4006001234.yaml:7 rules[0].when.tme: unknown key (did you mean time?)",
        "config/plans/4006001234.yaml:9 default.ring_timout: unknown key "
        "(did you mean ring_timeout?)",
        "config/plans/4006001234.yaml:9 default.colour: unknown key (expected target, split, "
        "reject, announcement, ring_timeout, require_pin, forwarding, menu, record, survey)",
    ]


def test_a_misspelt_required_key_is_one_problem_not_also_a_missing_one() -> None:
    assert problems_of(
        """
        number: "4006001234"
        nmae: Test Co.
        default: {target: "13900000001"}
        """
    ) == ["config/plans/4006001234.yaml:2 nmae: unknown key (did you mean name?)"]


def test_one_value_where_a_list_is_due_is_shown_written_as_a_list() -> None:
    assert problems_of(
        """
        number: "4006001234"
        name: Test Co.
        forwarding: {on_busy: "13900000002"}
        rules:
          - name: day
            when: {time: "08:00-18:00", days: {mon: 1}}
            target: "13900000001"
        default: {target: "13900000001"}
        """
    ) == [
        "config/plans/4006001234.yaml:3 forwarding.on_busy: must be a list "
        "(found '13900000002': write [\"13900000002\"])",
        "config/plans/4006001234.yaml:6 rules[0].when.days: must be a list",
        "config/plans/4006001234.yaml:6 rules[0].when.time: must be a list "
        "(found '08:00-18:00': write [\"08:00-18:00\"])",
    ]


def test_a_percentage_with_a_fraction_is_refused_as_not_a_whole_number() -> None:
    assert problems_of(
        """
        number: "4006001234"
        name: Test Co.
        default:
          split:
            - {number: "02155556666", percent: 59.5}
            - {number: "02866667777", percent: 40.5}
        """
    ) == [
        "config/plans/4006001234.yaml:5 default.split[0].percent: must be a whole number "
        "(found 59.5)",
        "config/plans/4006001234.yaml:6 default.split[1].percent: must be a whole number "
        "(found 40.5)",
    ]


def test_broken_yaml_is_reported_with_its_line_and_column() -> None:
    assert problems_of('number: "4006001234"\nname: [unclosed\ndefault: x\n') == [
        "config/plans/4006001234.yaml:3 (file): invalid YAML at column 8: expected ',' or ']', "
        "but got ':' (the [ at line 2 is not closed)"
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            'number: "4006001234"\n\tname: Test Co.\n',
            "2 (file): invalid YAML at column 1: a tab character; indent with spaces "
            "(YAML does not accept tabs)",
        ),
        (
            'number: "4006001234"\nname: "Test Co.\ndefault:\n  target: "13900000001"\n',
            "4 (file): invalid YAML at column 12: expected <block end>, but found '<scalar>' "
            '(the " opened at line 2 is not closed)',
        ),
        (
            'number: "4006001234"\ndefault:\n  target: "13900000001"\n   ring_timeout: 20\n',
            "4 (file): invalid YAML at column 4: expected <block end>, but found "
            "'<block mapping start>' (check this line's indentation against the lines above)",
        ),
        (
            'number: "4006001234"\n---\ndefault: {target: "13900000001"}\n',
            "2 (file): invalid YAML at column 1: expected a single document in the stream, but "
            "found another document (the file holds one document: remove this --- line)",
        ),
        (
            'number: "4006001234"\nname: Test\x00Co.\n',
            "2 (file): invalid YAML at column 11: the character U+0000 is not allowed in "
            "YAML: remove it",
        ),
        (
            'number: "4006001234"\nname: \'Test Co.\n',
            "3 (file): invalid YAML at column 1: found unexpected end of stream "
            "(the ' opened at line 2 is not closed)",
        ),
    ],
    ids=[
        "a tab",
        "an unclosed quote",
        "an indentation",
        "two documents",
        "a control character",
        "a quote open to the end",
    ],
)
def test_a_yaml_mistake_says_where_and_what_to_look_for(text: str, problem: str) -> None:
    assert problems_of(text) == [f"config/plans/4006001234.yaml:{problem}"]


def test_a_directory_load_keeps_good_plans_and_reports_bad_ones(tmp_path: Path) -> None:
    (tmp_path / "4006001234.yaml").write_text(
        'number: "4006001234"\nname: Good\ndefault: {target: "13900000001"}\n'
    )
    (tmp_path / "4006001235.yaml").write_text('number: "4006001235"\nname: Bad\n')
    plans, problems = load_plans(tmp_path)
    assert list(plans) == ["4006001234"]
    assert [str(p) for p in problems] == [
        f"{tmp_path}/4006001235.yaml:1 default: required field is missing"
    ]


def test_a_file_not_in_utf_8_names_the_line_and_column_of_its_first_unreadable_byte(
    tmp_path: Path,
) -> None:
    path = tmp_path / "4006001234.yaml"
    path.write_bytes('number: "4006001234"\nname: 济南重工\n'.encode("gbk"))
    with pytest.raises(ConfigError) as caught:
        load_plan(path)
    assert [str(problem) for problem in caught.value.problems] == [
        f"{path}:2 (file): not UTF-8 text: byte 0xbc at column 7 cannot be read; "
        "save the file as UTF-8 (an editor's GBK or GB18030 is not read)"
    ]


def test_a_missing_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_plan(tmp_path / "4006009999.yaml")


def test_24_00_ends_a_window_but_cannot_start_one_and_an_empty_window_is_refused() -> None:
    assert problems_of(
        """
        number: "4006001234"
        name: Test Co.
        rules:
          - name: all-day
            when: {time: ["00:00-24:00", "24:00-06:00", "08:00-08:00"]}
            target: "13900000009"
        default: {target: "13900000001"}
        """
    ) == [
        "config/plans/4006001234.yaml:5 rules[0].when.time: '24:00-06:00' is not a window like "
        "'09:00-18:00'"
    ]
    assert problems_of(
        """
        number: "4006001234"
        name: Test Co.
        rules:
          - name: never
            when: {time: ["08:00-08:00"]}
            target: "13900000009"
        default: {target: "13900000001"}
        """
    ) == [
        "config/plans/4006001234.yaml:5 rules[0].when.time: '08:00-08:00' is empty: start and "
        "end are equal (00:00-24:00 is the whole day)"
    ]


# --- values YAML cannot build ------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        (
            "rules:\n  - name: national-day\n    when:\n      dates: [2026-02-30]\n"
            '    target: "13905310001"\ndefault: {target: "13905310001"}\n',
            "6 rules[0].when.dates[0]: 2026-02-30 is not a date: day is out of range for month",
        ),
        (
            'ring_timeout: !!int abc\ndefault: {target: "13905310001"}\n',
            "3 ring_timeout: abc is not a whole number",
        ),
        (
            "default:\n  target: !!python/name:os.system '1'\n",
            "4 default.target: the tag !!python/name:os.system is not allowed: write plain "
            "values (text, numbers, dates, lists and mappings)",
        ),
    ],
)
def test_a_value_yaml_cannot_build_is_a_problem_at_its_line_and_field(
    lines: str, problem: str
) -> None:
    assert problems_of('number: "4006001234"\nname: T\n' + lines) == [
        f"config/plans/4006001234.yaml:{problem}"
    ]


def test_every_value_that_cannot_be_built_is_reported_at_once() -> None:
    assert problems_of(
        """
        number: "4006001234"
        name: T
        ring_timeout: !!int abc
        rules:
          - name: holidays
            when: {dates: [2026-02-30, 2026-04-31]}
            target: "13905310001"
        default: {target: "13905310001"}
        """
    ) == [
        "config/plans/4006001234.yaml:3 ring_timeout: abc is not a whole number",
        "config/plans/4006001234.yaml:6 rules[0].when.dates[0]: 2026-02-30 is not a date: "
        "day is out of range for month",
        "config/plans/4006001234.yaml:6 rules[0].when.dates[1]: 2026-04-31 is not a date: "
        "day is out of range for month",
    ]


def test_aliases_that_expand_without_end_are_refused_not_followed() -> None:
    levels = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for name, below in zip("bcdefg", "abcdef", strict=True):
        levels.append(f"{name}: &{name} [{', '.join([f'*{below}'] * 10)}]")
    [problem] = problems_of("\n".join(levels))
    assert problem.startswith("config/plans/4006001234.yaml:1 (file): aliases expand to more")


BAD_DATE_PLAN = """\
number: "4006005678"
name: T
rules:
  - name: national-day
    when:
      dates: [DATE]
    target: "13905310001"
default:
  target: "13905310001"
"""


def test_one_plan_with_an_impossible_date_does_not_stop_the_others_loading(
    tmp_path: Path,
) -> None:
    shutil.copytree(EXAMPLES, tmp_path, dirs_exist_ok=True)
    (tmp_path / "4006005678.yaml").write_text(BAD_DATE_PLAN.replace("DATE", "2026-02-30"))
    plans, problems = load_plans(tmp_path)
    assert sorted(plans) == ["4001234567", "4006001234", "4008207788"]
    assert [str(problem) for problem in problems] == [
        f"{tmp_path / '4006005678.yaml'}:6 rules[0].when.dates[0]: 2026-02-30 is not a date: "
        "day is out of range for month"
    ]


def test_a_file_that_breaks_the_checks_themselves_is_one_problem_among_the_plans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(EXAMPLES, tmp_path, dirs_exist_ok=True)
    real_parse = plan_loader.parse_plan

    def broken_for_one(file: str, text: str) -> Plan:
        if Path(file).name == "4006001234.yaml":
            raise RuntimeError("a bug in a check")
        return real_parse(file, text)

    monkeypatch.setattr(plan_loader, "parse_plan", broken_for_one)
    plans, problems = load_plans(tmp_path)
    assert sorted(plans) == ["4001234567", "4008207788"]
    assert [str(problem) for problem in problems] == [
        f"{tmp_path / '4006001234.yaml'}:1 (file): could not be checked: RuntimeError"
    ]


def plan_book(tmp_path: Path) -> PlanBook:
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    book = PlanBook(config, ZoneInfo("Asia/Shanghai"))
    assert book.reload().ok
    return book


def test_a_reload_reports_an_impossible_date_and_keeps_the_previous_plan(tmp_path: Path) -> None:
    book = plan_book(tmp_path)
    plan_file = book.config_dir / "plans" / "4006005678.yaml"
    plan_file.write_text(BAD_DATE_PLAN.replace("DATE", "2026-02-28"))
    assert book.reload().ok
    plan_file.write_text(BAD_DATE_PLAN.replace("DATE", "2026-02-30"))
    result = book.reload()  # what SIGHUP runs
    assert [str(problem) for problem in result.problems] == [
        f"{plan_file}:6 rules[0].when.dates[0]: 2026-02-30 is not a date: "
        "day is out of range for month"
    ]
    assert result.kept == ["4006005678"]
    assert book.numbers() == ["4001234567", "4006001234", "4006005678", "4008207788"]


async def test_the_watcher_goes_on_after_a_bad_file_and_loads_it_once_fixed(
    tmp_path: Path,
) -> None:
    book = plan_book(tmp_path)
    plan_file = book.config_dir / "plans" / "4006005678.yaml"

    async def reloaded_after(version: int) -> None:
        async with asyncio.timeout(10):
            while book.version == version:
                await asyncio.sleep(0.05)

    stop = asyncio.Event()
    watcher = asyncio.create_task(book.watch(stop))
    try:
        await asyncio.sleep(0.3)  # the watcher is set up
        version = book.version
        plan_file.write_text(BAD_DATE_PLAN.replace("DATE", "2026-02-30"))
        await reloaded_after(version)
        assert not watcher.done()
        assert book.get("4006005678") is None
        version = book.version
        plan_file.write_text(BAD_DATE_PLAN.replace("DATE", "2026-02-28"))
        await reloaded_after(version)
        assert not watcher.done()
        plan = book.get("4006005678")
        assert plan is not None and plan.rules[0].when.dates == [date(2026, 2, 28)]
    finally:
        stop.set()
        await watcher


async def test_a_reload_that_fails_unexpectedly_leaves_the_watcher_watching(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    book = plan_book(tmp_path)
    plan_file = book.config_dir / "plans" / "4006005678.yaml"
    faults = iter([RuntimeError("a fault in a loader")])
    real_parse_calendar = plan_book_module.parse_calendar

    def parse_calendar_failing_once(file: str, text: str):  # type: ignore[no-untyped-def]
        fault = next(faults, None)
        if fault is not None:
            raise fault
        return real_parse_calendar(file, text)

    monkeypatch.setattr(plan_book_module, "parse_calendar", parse_calendar_failing_once)
    stop = asyncio.Event()
    watcher = asyncio.create_task(book.watch(stop))
    try:
        await asyncio.sleep(0.3)  # the watcher is set up
        version, failed = book.version, book.reloads_failed
        plan_file.write_text(BAD_DATE_PLAN.replace("DATE", "2026-02-27"))
        async with asyncio.timeout(10):
            while book.reloads_failed == failed:
                await asyncio.sleep(0.05)
        assert not watcher.done() and book.version == version
        assert "reload failed; the plans loaded before keep serving" in caplog.text
        plan_file.write_text(BAD_DATE_PLAN.replace("DATE", "2026-02-28"))
        async with asyncio.timeout(10):
            while book.version == version:
                await asyncio.sleep(0.05)
        plan = book.get("4006005678")
        assert plan is not None and plan.rules[0].when.dates == [date(2026, 2, 28)]
    finally:
        stop.set()
        await watcher


# --- destinations are real phones ----------------------------------------------------------

NOT_A_PHONE = "calls are put through only to fixed lines or mobiles"


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        (
            'default:\n  target: "4006001234"\n',
            "4 default.target: '4006001234' is a 400 number: the call would come back into "
            f"the platform; {NOT_A_PHONE}",
        ),
        (
            'forwarding:\n  on_busy: ["400-820-7788"]\ndefault:\n  target: "13905310001"\n',
            "4 forwarding.on_busy: '400-820-7788' is a 400 number: the call would come back "
            f"into the platform; {NOT_A_PHONE}",
        ),
        (
            "default:\n  split:\n    - {number: '8008101234', percent: 50}\n"
            "    - {number: '13905310001', percent: 50}\n",
            "5 default.split[0].number: '8008101234' is an 800 number: a service number, not a "
            f"phone; {NOT_A_PHONE}",
        ),
        (
            'default:\n  target: "110"\n',
            "4 default.target: '110' is a service number (a short code such as 110 or 95588); "
            f"{NOT_A_PHONE}",
        ),
        (
            "rules:\n  - name: night\n    target: {number: '13905310001'}\n"
            '    forwarding: {on_no_answer: ["95588"]}\ndefault:\n  target: "13905310001"\n',
            "6 rules[0].forwarding.on_no_answer: '95588' is a service number (a short code such "
            f"as 110 or 95588); {NOT_A_PHONE}",
        ),
        (
            'default:\n  target: "+852 2345 6789"\n',
            f"4 default.target: '+852 2345 6789' is a number abroad; {NOT_A_PHONE}",
        ),
        (
            'default:\n  target: "12345678"\n',
            "4 default.target: '12345678' is not a complete fixed line (area code first) or "
            f"mobile number; {NOT_A_PHONE}",
        ),
    ],
)
def test_a_destination_or_forwarding_number_that_is_no_phone_is_refused(
    lines: str, problem: str
) -> None:
    assert problems_of('number: "4006001234"\nname: T\n' + lines) == [
        f"config/plans/4006001234.yaml:{problem}"
    ]


def test_fixed_lines_and_mobiles_in_any_form_are_destinations() -> None:
    plan = parse_plan(
        "4006001234.yaml",
        'number: "4006001234"\nname: T\n'
        'forwarding: {on_busy: ["+86 139 0531 0002"], on_no_answer: ["0086-531-8888 6666"]}\n'
        'default: {target: "(0531) 8888-6667"}\n',
    )
    assert plan.forwarding.on_busy == ["13905310002"]
    assert plan.forwarding.on_no_answer == ["053188886666"]
    assert [d.number for d in plan.default.destinations()] == ["053188886667"]


# --- caller prefixes, screening, dates, PIN ----------------------------------------------


def test_a_prefix_with_the_country_code_is_kept_in_the_national_forms_callers_have() -> None:
    plan = parse_plan(
        "4006001234.yaml",
        'number: "4006001234"\nname: T\n'
        'blacklist: {prefixes: ["+86 139 0531", "0086 (531) 8888", "+86 0755", "139", '
        '"00852 2", "+44 20"]}\n'
        'default: {target: "13905310001"}\n',
    )
    assert plan.blacklist.prefixes == [
        "01390531",
        "1390531",
        "05318888",
        "5318888",
        "0755",
        "755",
        "139",
        "+8522",
        "+4420",
    ]


def test_a_prefix_of_the_country_code_alone_is_refused() -> None:
    assert problems_of(
        """
        number: "4006001234"
        name: T
        blacklist: {prefixes: ["0086"]}
        default: {target: "13905310001"}
        """
    ) == [
        "config/plans/4006001234.yaml:3 blacklist.prefixes[0]: '0086' names no digits after the "
        "country code: it would match every caller in China"
    ]


def test_a_country_code_alone_is_a_prefix_in_either_form() -> None:
    plan = parse_plan(
        "4006001234.yaml",
        'number: "4006001234"\nname: T\n'
        'blacklist: {prefixes: ["+1", "0044", "+852"]}\n'
        'default: {target: "13905310001"}\n',
    )
    assert plan.blacklist.prefixes == ["+1", "+44", "+852"]


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("+", "'+' is not a number prefix (3 digits or more, or + and a country code)"),
        ("12", "'12' is not a number prefix (3 digits or more, or + and a country code)"),
        (
            "+8",
            "'+8' begins China's country code (+86) as well as others': callers in China are "
            "matched in national form, so it would match only callers abroad; write the country "
            "codes meant (+81, +82, +852, ...)",
        ),
    ],
)
def test_a_prefix_too_short_to_mean_anything_is_refused(prefix: str, message: str) -> None:
    assert problems_of(
        f"""
        number: "4006001234"
        name: T
        blacklist: {{prefixes: ["{prefix}"]}}
        default: {{target: "13905310001"}}
        """
    ) == [f"config/plans/4006001234.yaml:3 blacklist.prefixes[0]: {message}"]


@pytest.mark.parametrize("callers", ["\n  callers: {}", ""])
def test_an_allow_list_that_lists_nobody_is_refused(callers: str) -> None:
    assert problems_of(
        f'number: "4006001234"\nname: T\nscreening:\n  mode: allow{callers}\n'
        'default: {target: "13905310001"}\n'
    ) == [
        f"config/plans/4006001234.yaml:{5 if callers else 3} screening.callers: mode allow "
        "admits only the callers listed here, and none is listed: list the provinces, cities, "
        "area codes, prefixes or numbers to admit, or use mode deny"
    ]


def test_a_single_date_may_be_quoted() -> None:
    plan = parse_plan(
        "4006001234.yaml",
        'number: "4006001234"\nname: T\nrules:\n  - name: national-day\n'
        "    when: {dates: ['2026-10-01', 2026-10-02, '2026-10-03..2026-10-08']}\n"
        '    target: "13905310001"\ndefault: {target: "13905310001"}\n',
    )
    assert [str(days) for days in plan.rules[0].when.date_ranges()] == [
        "2026-10-01",
        "2026-10-02",
        "2026-10-03..2026-10-08",
    ]


def test_a_quoted_impossible_date_is_refused() -> None:
    assert problems_of(
        """
        number: "4006001234"
        name: T
        rules:
          - name: national-day
            when: {dates: ["2026-02-30"]}
            target: "13905310001"
        default: {target: "13905310001"}
        """
    ) == ["config/plans/4006001234.yaml:5 rules[0].when.dates: '2026-02-30' is not a date"]


EIGHT_DIGIT_PIN = hash_pin("12345678", salt=bytes(16))
OLD_FORMAT_PIN = (  # 2468, hashed before hashes recorded the PIN's length
    "scrypt$14$8$1$61dbd8f90589be2ce2595a2aa0bf3a89"
    "$f476ee02f112801ccaf3afd259be2753f68f70f61e99828171953fd1e83e8f6f"
)


def pin_plan(pin_lines: str) -> str:
    return f'number: "4006001234"\nname: T\npin:\n{pin_lines}default: {{target: "13905310001"}}\n'


def test_max_digits_is_the_pins_own_length_unless_set() -> None:
    plan = parse_plan("4006001234.yaml", pin_plan(f'  hash: "{EIGHT_DIGIT_PIN}"\n'))
    assert plan.pin is not None and plan.pin.max_digits == 8
    assert verify_pin("12345678"[: plan.pin.max_digits], plan.pin.hash)
    longer = parse_plan(
        "4006001234.yaml", pin_plan(f'  hash: "{EIGHT_DIGIT_PIN}"\n  max_digits: 10\n')
    )
    assert longer.pin is not None and longer.pin.max_digits == 10


def test_max_digits_below_the_pins_length_is_refused() -> None:
    assert problems_of(pin_plan(f'  hash: "{EIGHT_DIGIT_PIN}"\n  max_digits: 6\n')) == [
        "config/plans/4006001234.yaml:5 pin.max_digits: 6 is shorter than the PIN, which has 8 "
        "digits (pin.hash): the entry would stop before its last digit and no caller could "
        "ever get through; set max_digits to 8 or more, or leave it out"
    ]


def test_a_hash_without_the_pins_length_is_still_accepted_with_six_digits_read() -> None:
    plan = parse_plan("4006001234.yaml", pin_plan(f'  hash: "{OLD_FORMAT_PIN}"\n'))
    assert plan.pin is not None and plan.pin.max_digits == 6
    assert verify_pin("2468", plan.pin.hash)


def test_a_prompt_is_named_under_the_sounds_folder_never_anywhere_on_the_server() -> None:
    assert problems_of(
        """
        number: "4006001234"
        name: Test Co.
        recording: {notice: /var/spool/asterisk/monitor/hotline400/4001234567/call}
        survey: {prompt: acme/../../../../etc/asterisk/secret}
        rules:
          - {name: a, target: "13900000002", record: true, survey: true}
        default: {target: "13900000001"}
        """
    ) == [
        "config/plans/4006001234.yaml:3 recording.notice: "
        "'/var/spool/asterisk/monitor/hotline400/4001234567/call' is not a sound of the sounds "
        "folder: no leading / and no ..",
        "config/plans/4006001234.yaml:4 survey.prompt: 'acme/../../../../etc/asterisk/secret' "
        "is not a sound of the sounds folder: no leading / and no ..",
    ]


def test_a_reload_while_the_plans_directory_is_missing_keeps_every_plan_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A deployment renames the plans directory away before renaming the new one in; a
    reload in between takes no number off the air and is not reported as a success."""
    book = plan_book(tmp_path)
    plans_dir = book.config_dir / "plans"
    serving = book.numbers()
    plans_dir.rename(book.config_dir / "plans.old")
    result = book.reload()
    assert [str(problem) for problem in result.problems] == [
        f"{plans_dir}:1 (directory): no such directory"
    ]
    assert result.kept == serving and book.numbers() == serving
    assert not book.last_reload_ok and book.reloads_failed == 1
    assert f"previous plan kept serving for {', '.join(serving)}" in caplog.text


async def test_the_watcher_follows_a_plans_directory_swapped_in_by_a_deployment(
    tmp_path: Path,
) -> None:
    """The new plans directory is renamed into place; the swap is reloaded, and a plan saved
    in the new directory afterwards is picked up too."""
    book = plan_book(tmp_path)
    config = book.config_dir

    async def serving_with(dates: list[date]) -> bool:
        """Whether the watcher reloads 4006005678 with `dates` within 10 s."""
        for _ in range(200):
            plan = book.get("4006005678")
            if plan is not None and plan.rules[0].when.dates == dates:
                return True
            await asyncio.sleep(0.05)
        return False

    stop = asyncio.Event()
    watcher = asyncio.create_task(book.watch(stop))
    try:
        await asyncio.sleep(0.3)  # the watcher is set up
        shutil.copytree(config / "plans", config / "plans.new")
        (config / "plans.new" / "4006005678.yaml").write_text(
            BAD_DATE_PLAN.replace("DATE", "2026-02-28")
        )
        (config / "plans").rename(config / "plans.old")
        (config / "plans.new").rename(config / "plans")
        assert await serving_with([date(2026, 2, 28)])
        (config / "plans" / "4006005678.yaml").write_text(
            BAD_DATE_PLAN.replace("DATE", "2026-02-27")
        )
        assert await serving_with([date(2026, 2, 27)])
    finally:
        stop.set()
        await watcher


def test_a_yml_beside_the_numbers_yaml_is_a_problem_not_the_plan_served(tmp_path: Path) -> None:
    """The console saves N.yaml; a stale N.yml left beside it must not be what is served."""
    plans_dir = tmp_path / "plans"
    shutil.copytree(REPO / "config" / "plans", plans_dir)
    saved = plans_dir / "4001234567.yaml"
    saved.with_suffix(".yml").write_text(saved.read_text(encoding="utf-8"), encoding="utf-8")
    saved.write_text(
        saved.read_text(encoding="utf-8").replace("ring_timeout: 25", "ring_timeout: 40"),
        encoding="utf-8",
    )
    plans, problems = load_plans(plans_dir)
    assert plans["4001234567"].ring_timeout == 40
    assert [str(problem) for problem in problems] == [
        f"{plans_dir / '4001234567.yml'}:1 (file): 4001234567.yaml is this number's plan; "
        "remove one of the two files"
    ]


def test_values_of_the_wrong_form_are_refused_in_plain_words_not_regular_expressions() -> None:
    assert problems_of(
        """
        number: "4006001234"
        name: Test Co.
        language: Chinese
        menus:
          main:
            prompt: acme/main
            options:
              1: {target: "13900000001", language: EN}
              2: {menu: "after sales"}
            default: {target: "13900000001"}
        crm: {url: "crm.example.com/events", secret_env: crm_key}
        default: {menu: main}
        """
    ) == [
        "config/plans/4006001234.yaml:3 language: must be an Asterisk language such as zh, en "
        "or fr_FR (found 'Chinese')",
        "config/plans/4006001234.yaml:8 menus.main.options.1.language: must be an Asterisk "
        "language such as zh, en or fr_FR (found 'EN')",
        "config/plans/4006001234.yaml:9 menus.main.options.2.menu: must be a menu name: "
        "letters, digits, _ and -, at most 40 (found 'after sales')",
        "config/plans/4006001234.yaml:11 crm.url: must be an http:// or https:// address "
        "without spaces (found 'crm.example.com/events')",
        "config/plans/4006001234.yaml:11 crm.secret_env: must be an environment variable name: "
        "a capital letter, then capitals, digits or _ (found 'crm_key')",
    ]


def test_an_announcement_on_a_route_that_refuses_nothing_is_refused() -> None:
    """A route's announcement plays only before its refusal: on a route that dials or plays
    a menu it would silently never play (a welcome message is a menu's prompt)."""
    assert problems_of(
        """
        number: "4006001234"
        name: Test Co.
        menus:
          main:
            prompt: acme/main
            options:
              1: {target: "13900000001", announcement: acme/welcome}
            default: {reject: closed, announcement: acme/closed}
        rules:
          - {name: menu, menu: main, announcement: acme/welcome}
        default: {target: "13900000001"}
        """
    ) == [
        "config/plans/4006001234.yaml:7 menus.main.options.1.announcement: an announcement "
        "plays only before a refusal (reject:); this route refuses nothing",
        "config/plans/4006001234.yaml:10 rules[0].announcement: an announcement plays only "
        "before a refusal (reject:); this route refuses nothing",
    ]


def test_too_few_or_too_many_entries_are_counted_in_plain_words() -> None:
    assert problems_of(
        """
        number: "4006001234"
        name: Test Co.
        notifications: {sms_to: ["13905310001", "13905310002", "13905310003", "13905310004"]}
        crm: {url: "https://crm.example.com/events", secret_env: CRM_KEY, events: []}
        menus:
          main: {prompt: acme/main, options: {}, default: {target: "13900000001"}}
        default: {menu: main}
        """
    ) == [
        "config/plans/4006001234.yaml:3 notifications.sms_to: must have at most 3 entries "
        "(found 4)",
        "config/plans/4006001234.yaml:4 crm.events: must have at least 1 entry (found 0)",
        "config/plans/4006001234.yaml:6 menus.main.options: must have at least 1 entry (found 0)",
    ]


def test_a_recording_or_survey_for_the_rules_that_no_route_asks_for_is_refused() -> None:
    """`applies_to: rules` with no route saying `record: true` (or `survey: true`) records
    (asks) nobody: the section would silently do nothing."""
    assert problems_of(
        """
        number: "4006001234"
        name: Test Co.
        recording: {applies_to: rules}
        survey: {applies_to: rules}
        default: {target: "13900000001"}
        """
    ) == [
        "config/plans/4006001234.yaml:3 recording.applies_to: no route has record: true, so "
        "no call is recorded: mark the routes to record, or write applies_to: all",
        "config/plans/4006001234.yaml:4 survey.applies_to: no route has survey: true, so "
        "nobody is asked: mark the routes to survey, or write applies_to: all",
    ]
