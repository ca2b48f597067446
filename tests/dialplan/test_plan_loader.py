"""Plan files: every problem of a file at once, each with file, line, field and a plain message."""

import textwrap
from pathlib import Path

import pytest

from dialplan.errors import ConfigError
from dialplan.plan_loader import load_plan, load_plans, parse_plan
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
        "config/plans/4006001234.yaml:3 stauts: unknown key",
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
        "config/plans/4006001234.yaml:5 screening.callers.provinces: 'Atlantis' is not a "
        "province of China",
        "config/plans/4006001234.yaml:6 screening.callers.cities: 'Gotham' is not a city known "
        "to the geocoder",
        "config/plans/4006001234.yaml:7 screening.callers.area_codes: '531' is not an area code "
        "like '010' or '0531'",
    ]


def test_duplicate_keys_and_a_mismatched_file_name_are_reported() -> None:
    assert problems_of(
        """
        number: "4008207788"
        name: Test Co.
        name: Other Co.
        default: {target: "13900000001"}
        """
    ) == ["config/plans/4006001234.yaml:3 name: key given twice; only one may stand"]
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
        "(letters, digits, _-/.)",
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
        "(letters, digits, _-/.)",
        "config/plans/4006001234.yaml:5 survey.timeout: must be greater than or equal to 1 "
        "(found 0)",
        "config/plans/4006001234.yaml:6 survey.retries: must be less than or equal to 3 "
        "(found 4)",
        "config/plans/4006001234.yaml:7 survey.scale: unknown key",
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
        "config/plans/4006001234.yaml:5 rules[0].survey: a route that refuses calls surveys "
        "nobody",
        "config/plans/4006001234.yaml:6 default.survey: survey does nothing while "
        "survey.applies_to is all (every answered call is asked)",
    ]


def test_broken_yaml_is_reported_with_its_line() -> None:
    assert problems_of('number: "4006001234"\nname: [unclosed\ndefault: x\n') == [
        "config/plans/4006001234.yaml:3 (file): invalid YAML: expected ',' or ']', but got ':'"
    ]


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
