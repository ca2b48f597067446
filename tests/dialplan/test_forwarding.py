"""Busy and no-answer forwarding: the registered numbers, in order, at most 3 forwards a call."""

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from dialplan.calendar import OfficialCalendar
from dialplan.decision import (
    Decision,
    DialResult,
    DialTarget,
    ForwardingChain,
    forward_step,
)
from dialplan.geo import locate
from dialplan.matchers import Call, Moment
from tests.conftest import plan_from, route


def decision_with(
    on_busy: tuple[str, ...] = ("B1", "B2"),
    on_no_answer: tuple[str, ...] = ("N1", "N2"),
    max_forwards: int = 3,
    busy_statuses: frozenset[str] = frozenset({"BUSY", "CONGESTION", "CHANUNAVAIL"}),
) -> Decision:
    moment = Moment(
        datetime(2026, 11, 23, 10, tzinfo=ZoneInfo("Asia/Shanghai")), OfficialCalendar()
    )
    decision = Decision("dial", Call("4006001234", locate("053188889999")), moment)
    decision.first = DialTarget("P", 20)
    decision.forwarding = ForwardingChain(on_busy, on_no_answer, max_forwards, busy_statuses, 20)
    return decision


def follow(decision: Decision, statuses: list[str]) -> list[tuple[str, str]]:
    """Dial through the chain, giving each attempt the next status; (number, reason) per attempt."""
    attempts = []
    results: list[DialResult] = []
    target = decision.first
    for status in statuses:
        if target is None:
            break
        attempts.append((target.number, target.reason))
        results.append(DialResult(target.number, status))
        target = forward_step(decision, results).target
    if target is not None:
        attempts.append((target.number, target.reason))
    return attempts


def test_busy_moves_to_the_first_busy_number_and_an_answer_ends_the_chain() -> None:
    assert follow(decision_with(), ["BUSY", "ANSWER"]) == [("P", "primary"), ("B1", "busy")]


def test_no_answer_twice_then_the_chain_stops_when_its_numbers_run_out() -> None:
    attempts = follow(decision_with(), ["NOANSWER", "NOANSWER", "NOANSWER", "NOANSWER"])
    assert attempts == [("P", "primary"), ("N1", "no_answer"), ("N2", "no_answer")]


def test_at_most_three_forwards_in_one_call() -> None:
    attempts = follow(decision_with(), ["BUSY", "NOANSWER", "BUSY", "NOANSWER", "BUSY"])
    assert attempts == [("P", "primary"), ("B1", "busy"), ("N1", "no_answer"), ("B2", "busy")]


def test_a_plan_may_allow_fewer_forwards() -> None:
    attempts = follow(decision_with(max_forwards=1), ["BUSY", "BUSY", "BUSY"])
    assert attempts == [("P", "primary"), ("B1", "busy")]


def test_congestion_and_unavailable_count_as_busy_by_default() -> None:
    assert follow(decision_with(), ["CONGESTION", "CHANUNAVAIL", "ANSWER"]) == [
        ("P", "primary"),
        ("B1", "busy"),
        ("B2", "busy"),
    ]


def test_a_result_the_plan_does_not_count_as_busy_ends_the_call() -> None:
    decision = decision_with(busy_statuses=frozenset({"BUSY"}))
    assert follow(decision, ["CONGESTION", "ANSWER"]) == [("P", "primary")]


def test_caller_hang_up_ends_the_chain() -> None:
    assert follow(decision_with(), ["CANCEL", "ANSWER"]) == [("P", "primary")]


def test_a_number_is_never_dialled_twice_in_one_call() -> None:
    decision = decision_with(on_busy=("P", "B1"))
    assert follow(decision, ["BUSY", "ANSWER"]) == [("P", "primary"), ("B1", "busy")]


OUT_OF_SERVICE = """
forwarding:
  on_busy: ["13800000011", "13800000012"]
  on_no_answer: ["13800000011"]
rules:
  - name: beijing
    when: {callers: {area_codes: ["010"]}}
    target: "13800000031"
    forwarding: {on_no_answer: ["13800000011", "13800000013"]}
default:
  split:
    - {number: "13800000021", percent: 99}
    - {number: "13800000011", percent: 1, down: true}
"""


def test_a_number_marked_down_is_skipped_as_a_forward_too_and_the_next_one_dialled() -> None:
    decision = route(plan_from(OUT_OF_SERVICE))
    assert follow(decision, ["BUSY", "BUSY"]) == [
        ("13800000021", "primary"),
        ("13800000012", "busy"),
    ]


def test_a_call_whose_only_forwards_are_down_ends_as_when_the_forwards_run_out() -> None:
    decision = route(plan_from(OUT_OF_SERVICE))
    assert follow(decision, ["NOANSWER", "ANSWER"]) == [("13800000021", "primary")]


def test_a_rules_own_forwarding_skips_a_number_the_plan_marks_down_elsewhere() -> None:
    decision = route(plan_from(OUT_OF_SERVICE), "01066668888")
    assert follow(decision, ["NOANSWER", "NOANSWER", "NOANSWER"]) == [
        ("13800000031", "primary"),
        ("13800000013", "no_answer"),
    ]


def test_a_skipped_forward_is_not_counted_against_max_forwards() -> None:
    decision = decision_with(on_busy=("D", "B1", "B2"), max_forwards=2)
    assert decision.forwarding is not None
    decision.forwarding = replace(decision.forwarding, down=frozenset({"D"}))
    step = forward_step(decision, [DialResult("P", "BUSY")])
    assert step.skipped == ("D",) and step.target == DialTarget("B1", 20, "busy")
    attempts = follow(decision, ["BUSY", "BUSY", "BUSY"])
    assert attempts == [("P", "primary"), ("B1", "busy"), ("B2", "busy")]
