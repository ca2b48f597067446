"""`hotline400 check` holds the plans to the inventory as calls see it at the check's instant:
a number a subscriber still holds needs a plan, and a plan's own `status` is compared with
the status the periods run out by then give, whether or not a numbers tick wrote them."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from dialplan.plan_loader import load_plan
from numbering import lifecycle
from numbering.lifecycle import NumberRecord, Status
from numbering.rules import NumberRules
from router.numbers.plan_check import compare
from tests.conftest import E2E_CONFIG

RULES = NumberRules()
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
HELD = NumberRecord(
    "4000000099", status=Status.ACTIVE, since=NOW - timedelta(days=40), provider="sp-east",
    subscriber="acme",
)  # fmt: skip


def given_notice(days_ago: int) -> NumberRecord:
    return lifecycle.cancel(HELD, "ops", NOW - timedelta(days=days_ago), RULES).after


def test_a_number_given_notice_still_needs_its_plan_for_the_calls_of_its_notice():
    _, warnings = compare(Path("config"), {}, {}, [given_notice(days_ago=1)], NOW, RULES)
    assert warnings == [
        "4000000099 is cancellation requested in the inventory (subscriber acme) but has no "
        "plan: its calls are refused as unknown"
    ]


def test_a_number_whose_notice_ran_out_needs_no_plan_though_no_tick_wrote_it():
    stale = given_notice(days_ago=31)
    assert stale.status is Status.CANCELLATION_REQUESTED
    assert compare(Path("config"), {}, {}, [stale], NOW, RULES) == ([], [])


def test_a_plans_status_is_compared_with_the_status_at_the_checks_instant():
    plan = load_plan(E2E_CONFIG / "plans" / "4000000007.yaml")  # says `status: suspended`
    suspended = lifecycle.suspend(HELD, "ops", NOW - timedelta(days=2), RULES).after
    given = lifecycle.cancel(suspended, "ops", NOW - timedelta(days=1), RULES).after
    record = {"4000000007": given}
    assert compare(Path("config"), {"4000000007": plan}, record, [], NOW, RULES) == ([], [])
    later = NOW + timedelta(days=30)  # the notice ran out: cancelled, no longer suspended
    [problem], _ = compare(Path("config"), {"4000000007": plan}, record, [], later, RULES)
    assert "the inventory has 4000000007 cancelled (cancelled on calls)" in problem.message


def test_a_plan_left_on_a_number_nobody_holds_is_a_past_holders_and_is_warned_of():
    plan = load_plan(E2E_CONFIG / "plans" / "4000000001.yaml")
    gone = {"4000000001": given_notice(days_ago=31)}  # cancelled by now, then frozen 90 days
    _, warnings = compare(Path("config"), {"4000000001": plan}, gone, [], NOW, RULES)
    assert warnings == [
        "config/plans/4000000001.yaml: 4000000001 is cancelled in the inventory, held by "
        "nobody: this plan is a past holder's; remove it, or replace it before the number is "
        "given again (its calls would go to that holder's destinations)"
    ]
    pooled = {"4000000001": NumberRecord("4000000001")}
    _, warnings = compare(Path("config"), {"4000000001": plan}, pooled, [], NOW, RULES)
    assert warnings and "is available in the inventory, held by nobody" in warnings[0]
    held = {"4000000001": HELD}
    assert compare(Path("config"), {"4000000001": plan}, held, [], NOW, RULES) == ([], [])


def test_a_plan_naming_another_subscriber_than_the_holder_is_a_problem_at_its_line(
    tmp_path: Path,
):
    """The router routes none of the calls of a number held by beta by a plan naming acme;
    check says so at the plan's `subscriber` line, and a plan naming beta passes."""
    directory = tmp_path / "config"
    (directory / "plans").mkdir(parents=True)
    path = directory / "plans" / "4000000099.yaml"
    text = (
        'number: "4000000099"\nname: Direct answer\nsubscriber: {}\n'
        'default: {{target: "13800000011"}}\n'
    )
    path.write_text(text.format("beta"), encoding="utf-8")
    held = {"4000000099": HELD_BY_BETA}
    assert compare(directory, {"4000000099": load_plan(path)}, held, [], NOW, RULES) == ([], [])

    path.write_text(text.format("acme"), encoding="utf-8")
    [problem], warnings = compare(directory, {"4000000099": load_plan(path)}, held, [], NOW, RULES)
    assert warnings == []
    assert str(problem) == (
        f"{path}:3 subscriber: acme, but beta holds 4000000099: a past holder's plan routes "
        "none of its calls (refused as a number without a plan); write beta's plan"
    )


HELD_BY_BETA = NumberRecord(
    "4000000099", status=Status.ACTIVE, since=NOW - timedelta(days=2), provider="sp-west",
    subscriber="beta",
)  # fmt: skip
