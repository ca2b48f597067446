"""decide(): status, screening, caps, rules in order, calendar, splits and PIN, with a trace."""

from collections import Counter
from datetime import date
from decimal import Decimal

import pytest

from dialplan.calendar import OfficialCalendar
from dialplan.caps import Usage
from dialplan.evaluator import RoutingState, decide
from dialplan.geo import locate
from dialplan.matchers import Call
from dialplan.pin import hash_pin
from tests.conftest import at, plan_from, route

SHANDONG_FIRST = """
rules:
  - name: shandong
    when:
      callers: {provinces: [山东]}
    target: "053188886666"
  - name: beijing-office-hours
    when:
      callers: {area_codes: ["010"]}
      days: [mon, tue, wed, thu, fri]
      time: ["09:00-18:00"]
    target: "01088887777"
default:
  target: "13905310001"
"""


def test_first_matching_rule_wins_and_the_trace_says_why_earlier_rules_did_not() -> None:
    decision = route(plan_from(SHANDONG_FIRST), caller="010-6666 5555", when="2026-11-23 10:00")
    assert decision.action == "dial"
    assert decision.rule == "beijing-office-hours"
    assert decision.first is not None and decision.first.number == "01088887777"
    trace = decision.trace()
    assert trace[0] == (
        "rule 0 'shandong': no: caller 01066665555 (北京/010) is not in provinces ['山东']"
    )
    assert trace[1] == "rule 1 'beijing-office-hours': matched -> dial 01088887777"


def test_a_mobile_caller_is_routed_by_the_province_of_its_number_block() -> None:
    decision = route(plan_from(SHANDONG_FIRST), caller="+86 159 6666 8888")
    assert decision.rule == "shandong"


def test_no_rule_matching_takes_the_default_route() -> None:
    decision = route(plan_from(SHANDONG_FIRST), caller="02155551234")
    assert decision.rule == "default"
    assert decision.first is not None and decision.first.number == "13905310001"


NIGHT = """
rules:
  - name: night
    when:
      days: [fri]
      time: ["22:00-06:00"]
    target: "13900000001"
default:
  target: "02000000000"
"""


@pytest.mark.parametrize(
    ("when", "rule"),
    [
        ("2026-11-27 21:59", "default"),  # Friday before the window
        ("2026-11-27 22:00", "night"),  # Friday night
        ("2026-11-28 02:00", "night"),  # Saturday early morning: Friday's window
        ("2026-11-28 06:00", "default"),  # the window has closed
        ("2026-11-28 23:00", "default"),  # Saturday night is not Friday night
        ("2026-11-27 02:00", "default"),  # Friday early morning belongs to Thursday
    ],
)
def test_a_window_across_midnight_belongs_to_the_day_it_started(when: str, rule: str) -> None:
    assert route(plan_from(NIGHT), when=when).rule == rule


WHOLE_DAYS = """
rules:
  - name: weekend-all-day
    when:
      days: [sat, sun]
      time: ["00:00-24:00"]
    target: "13900000001"
  - name: late-evening
    when:
      time: ["22:00-24:00"]
    target: "13900000002"
default:
  target: "02000000000"
"""


@pytest.mark.parametrize(
    ("when", "rule"),
    [
        ("2026-11-28 00:00", "weekend-all-day"),  # Saturday's first minute
        ("2026-11-28 23:59", "weekend-all-day"),  # and its last: 23:59 is not left out
        ("2026-11-29 12:00", "weekend-all-day"),
        ("2026-11-30 00:00", "default"),  # Monday: Sunday's day has ended
        ("2026-11-27 23:59", "late-evening"),  # Friday's last minute
        ("2026-11-27 21:59", "default"),
    ],
)
def test_24_00_ends_a_window_at_the_end_of_the_day(when: str, rule: str) -> None:
    assert route(plan_from(WHOLE_DAYS), when=when).rule == rule


@pytest.mark.parametrize(
    ("when", "rule"),
    [
        ("2026-11-27 23:59", "open"),  # the last minute written is in the window
        ("2026-11-28 00:00", "open"),  # 00:00-23:59 is the whole day
        ("2026-11-28 06:59", "default"),
    ],
)
def test_a_window_ending_at_23_59_takes_in_the_last_minute_of_the_day(when: str, rule: str) -> None:
    plan = plan_from(
        """
        rules:
          - name: open
            when: {time: ["00:00-06:00", "18:00-23:59"]}
            target: "13900000001"
        default: {target: "02000000000"}
        """
    )
    assert route(plan, when=when).rule == rule


WORKDAYS = """
rules:
  - name: office
    when:
      calendar: cn_workday
      time: ["09:00-18:00"]
    target: "053188886666"
  - name: holiday
    when:
      calendar: cn_holiday
    target: "13900000002"
default:
  target: "13900000001"
"""


def test_national_day_2026_is_an_official_holiday() -> None:
    decision = route(plan_from(WORKDAYS), when="2026-10-01 09:30")
    assert decision.rule == "holiday"


def test_an_adjusted_working_saturday_of_2026_routes_as_a_working_day() -> None:
    assert date(2026, 9, 20).weekday() >= 5 and date(2026, 2, 14).weekday() >= 5
    assert route(plan_from(WORKDAYS), when="2026-09-20 10:00").rule == "office"
    assert route(plan_from(WORKDAYS), when="2026-02-14 10:00").rule == "office"


def test_an_ordinary_saturday_is_not_a_working_day_nor_a_holiday() -> None:
    assert route(plan_from(WORKDAYS), when="2026-11-28 10:00").rule == "default"


def test_a_2027_holiday_declared_in_config_wins() -> None:
    calendar = OfficialCalendar(holidays={date(2027, 1, 1): "New Year's Day"}, covers=[2027])
    decision = route(plan_from(WORKDAYS), when="2027-01-01 10:00", state=RoutingState(calendar))
    assert decision.rule == "holiday"
    assert decision.calendar_fallback == []


def test_an_undeclared_2027_working_day_is_estimated_and_says_so() -> None:
    decision = route(plan_from(WORKDAYS), when="2027-01-04 10:00")
    assert decision.rule == "office"
    assert [day.date for day in decision.calendar_fallback] == [date(2027, 1, 4)]
    assert decision.trace()[-1] == (
        "calendar: 2027-01-04 is known neither to the official calendar nor to "
        "config/calendar.yaml; estimated working day by the statutory-holiday rules "
        "(adjusted working weekends unknown)"
    )


def test_new_years_day_2027_is_not_taken_for_a_working_day() -> None:
    decision = route(plan_from(WORKDAYS), when="2027-01-01 10:00")
    assert decision.rule == "holiday"
    assert decision.trace()[-1] == (
        "calendar: 2027-01-01 is known neither to the official calendar nor to "
        "config/calendar.yaml; estimated holiday (New Year's Day) by the statutory-holiday "
        "rules (adjusted working weekends unknown)"
    )


def test_a_date_past_the_estimate_falls_back_to_monday_to_friday_and_says_so() -> None:
    decision = route(plan_from(WORKDAYS), when="2101-01-03 10:00")
    assert decision.rule == "office"
    assert decision.trace()[-1] == (
        "calendar: 2101-01-03 is known neither to the official calendar nor to "
        "config/calendar.yaml; assumed working day by the fallback rule (Monday-Friday working)"
    )


def test_dates_ranges_match_inclusively() -> None:
    plan = plan_from(
        """
        rules:
          - name: golden-week
            when: {dates: ["2026-10-01..2026-10-08"]}
            target: "13900000002"
        default: {target: "13900000001"}
        """
    )
    assert route(plan, when="2026-10-08 23:59").rule == "golden-week"
    assert route(plan, when="2026-10-09 00:00").rule == "default"


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("suspended", "suspended"),
        ("cancelled", "cancelled"),
        ("frozen", "frozen"),
        ("arrears", "arrears"),
    ],
)
def test_a_number_that_is_not_active_connects_nothing_and_says_why(
    status: str, reason: str
) -> None:
    decision = route(plan_from(f"status: {status}\ndefault: {{target: '13900000001'}}\n"))
    assert (decision.action, decision.reject) == ("reject", reason)
    assert decision.trace() == [
        f"decision: reject ({reason}): number is {status}; it connects no calls"
    ]


def test_an_exhausted_prepaid_balance_puts_the_number_in_arrears() -> None:
    plan = plan_from("default: {target: '13900000001'}\n")
    decision = route(plan, usage=Usage(balance=Decimal("0.00")))
    assert decision.reject == "arrears"


SCREENED = """
announcements:
  blocked: acme/not-served
  blacklisted: acme/blacklisted
screening:
  mode: {mode}
  callers:
    provinces: [广东]
    area_codes: ["0531"]
  anonymous: reject
blacklist:
  numbers: ["139-1234-5678"]
  prefixes: ["170"]
default:
  target: "13900000001"
"""


@pytest.mark.parametrize(
    ("mode", "caller", "allowed"),
    [
        ("allow", "02088881234", True),  # Guangzhou, Guangdong
        ("allow", "053188889999", True),  # area code 0531
        ("allow", "01088881234", False),  # Beijing
        ("deny", "02088881234", False),
        ("deny", "01088881234", True),
    ],
)
def test_region_screening_allows_or_denies_the_listed_regions(
    mode: str, caller: str, allowed: bool
) -> None:
    decision = route(plan_from(SCREENED.replace("{mode}", mode)), caller=caller)
    assert (decision.action == "dial") is allowed
    if not allowed:
        assert (decision.reject, decision.announcement) == ("blocked", "acme/not-served")


def test_blacklisted_numbers_and_prefixes_are_refused_whatever_the_region() -> None:
    plan = plan_from(SCREENED.replace("{mode}", "deny"))
    assert route(plan, caller="+8613912345678").reject == "blacklisted"
    assert route(plan, caller="17012345678").reject == "blacklisted"
    assert route(plan, caller="17012345678").announcement == "acme/blacklisted"


def test_screening_may_refuse_the_callers_of_a_country_by_its_country_code() -> None:
    plan = plan_from(
        """
        screening:
          mode: deny
          callers: {prefixes: ["+1", "+44"]}
        default: {target: "13900000001"}
        """
    )
    assert route(plan, caller="+1 415 555 2671").reject == "blocked"
    assert route(plan, caller="0044 20 7123 4567").reject == "blocked"
    assert route(plan, caller="+852 2123 4567").action == "dial"
    assert route(plan, caller="13905310001").action == "dial"  # +86 139..., not +1


PREFIXES_WITH_THE_COUNTRY_CODE = """
blacklist:
  prefixes: ["+86 139 0531"]
screening:
  mode: allow
  callers:
    prefixes: ["0086 531", "+86 138"]
rules:
  - name: beijing
    when:
      callers: {prefixes: ["+86 10"]}
    target: "13900000002"
default:
  target: "13900000001"
"""


@pytest.mark.parametrize(
    ("caller", "action", "detail"),
    [
        ("13905310001", "reject", "blacklisted"),  # the blacklist's +86 139 0531
        ("+86 139 0531 0001", "reject", "blacklisted"),
        ("053188889999", "dial", "13900000001"),  # screening's 0086 531: a Jinan fixed line
        ("+86 531 8888 9999", "dial", "13900000001"),
        ("13812345678", "dial", "13900000001"),  # screening's +86 138
        ("02088881234", "reject", "blocked"),  # listed nowhere
        ("13912345678", "reject", "blocked"),
    ],
)
def test_prefixes_written_with_the_country_code_match_callers_in_any_form(
    caller: str, action: str, detail: str
) -> None:
    decision = route(plan_from(PREFIXES_WITH_THE_COUNTRY_CODE), caller=caller)
    assert decision.action == action
    assert (decision.reject if action == "reject" else decision.first.number) == detail


def test_a_rule_prefix_with_the_country_code_matches_fixed_lines_and_service_numbers() -> None:
    plan = plan_from(
        PREFIXES_WITH_THE_COUNTRY_CODE.replace('"0086 531", "+86 138"', '"+86 10", "+86 531"')
    )
    assert route(plan, caller="01088881234").rule == "beijing"  # +86 10 8888 1234
    assert route(plan, caller="+86 10 8888 1234").rule == "beijing"
    assert route(plan, caller="10086").rule == "beijing"  # +86 10086
    assert route(plan, caller="053188889999").rule == "default"


@pytest.mark.parametrize(
    "caller",
    [
        "anonymous",  # withheld, as the carrier marks it
        "",
        "unknown",
        "Restricted",
        "abc",  # no number at all
        "12",  # too short to dial back
        "+",
        "1" * 70,  # too long to be a number
        "0531-8888-99x9",
    ],
)
def test_every_caller_id_that_cannot_be_dialled_back_follows_the_anonymous_policy(
    caller: str,
) -> None:
    withheld = locate(caller).anonymous
    plan = plan_from(SCREENED.replace("{mode}", "deny"))
    decision = route(plan, caller=caller)
    assert decision.reject == "anonymous"
    assert decision.trace()[-1] == "decision: reject (anonymous): " + (
        "caller ID withheld" if withheld else "caller ID cannot be dialled back"
    )
    allowing = plan_from("default: {target: '13900000001'}\n")
    decision = route(allowing, caller=caller)
    assert decision.action == "dial"
    assert decision.trace()[0] == "screening: " + (
        "withheld caller ID allowed by policy"
        if withheld
        else "caller ID that cannot be dialled back allowed by policy"
    )


@pytest.mark.parametrize(
    ("mode", "policy", "withheld_dialled"),
    [
        ("allow", "", False),  # an allow-list admits the callers it lists: no one else
        ("allow", "  anonymous: allow\n", True),  # unless the plan says withheld may pass
        ("deny", "", True),  # a deny-list refuses the callers it lists: the others pass
        ("deny", "  anonymous: reject\n", False),
    ],
)
def test_a_withheld_caller_passes_an_allow_list_only_when_the_plan_says_so(
    mode: str, policy: str, withheld_dialled: bool
) -> None:
    text = SCREENED.replace("{mode}", mode).replace("  anonymous: reject\n", policy)
    decision = route(plan_from(text), caller="anonymous")
    assert (decision.action == "dial") is withheld_dialled
    if not withheld_dialled:
        assert decision.reject == "anonymous"


def test_the_trace_quotes_a_caller_id_that_is_no_number_rather_than_calling_it_withheld() -> None:
    plan = plan_from(SHANDONG_FIRST)
    assert route(plan, caller="0531").trace()[1] == (
        "rule 0 'shandong': no: caller '0531' (unknown) is not in provinces ['山东']"
    )
    assert route(plan, caller="anonymous").trace()[1] == (
        "rule 0 'shandong': no: caller withheld (unknown) is not in provinces ['山东']"
    )


def test_a_caller_id_that_can_be_dialled_back_is_screened_by_region_not_as_withheld() -> None:
    plan = plan_from(SCREENED.replace("{mode}", "deny"))
    assert route(plan, caller="10086").action == "dial"  # a service number: it can be called


CAPPED = """
caps:
  monthly_cost: "500.00"
  monthly_calls: 100
  daily_cost: "50.00"
announcements:
  capped: acme/capped
default:
  target: "13900000001"
"""


@pytest.mark.parametrize(
    ("usage", "capped"),
    [
        (Usage(month_calls=99, month_cost=Decimal("499.99"), day_cost=Decimal("49.99")), False),
        (Usage(month_calls=100), True),
        (Usage(month_cost=Decimal("500.00")), True),
        (Usage(day_cost=Decimal("50.00")), True),
    ],
)
def test_caps_stop_connecting_calls_once_reached(usage: Usage, capped: bool) -> None:
    decision = route(plan_from(CAPPED), usage=usage)
    assert (decision.reject == "capped") is capped
    if capped:
        assert decision.announcement == "acme/capped"


SPLIT = """
rules:
  - name: orders
    split:
      - {number: "02155556666", percent: 60}
      - {number: "02866667777", percent: 30}
      - {number: "02788889999", percent: 10, ring_timeout: 30, down: DOWN}
default:
  target: "13900000001"
"""


def test_a_60_30_10_split_sends_exactly_those_counts_of_100_calls() -> None:
    plan = plan_from(SPLIT.replace("DOWN", "false"))
    state = RoutingState(OfficialCalendar())
    firsts = [route(plan, state=state).first for _ in range(100)]
    assert Counter(t.number for t in firsts if t) == {
        "02155556666": 60,
        "02866667777": 30,
        "02788889999": 10,
    }
    assert {t.ring_timeout for t in firsts if t and t.number == "02788889999"} == {30}


def test_a_rule_named_default_keeps_its_split_apart_from_the_default_routes() -> None:
    plan = plan_from(
        """
        rules:
          - name: default
            when: {callers: {provinces: [山东]}}
            split: [{number: "13900000001", percent: 50}, {number: "13900000002", percent: 50}]
        default:
          split: [{number: "02000000001", percent: 50}, {number: "02000000002", percent: 50}]
        """
    )
    state = RoutingState(OfficialCalendar())
    callers = ["053188889999", "02155551234"] * 50  # Shandong and Shanghai callers in turn
    counts = Counter(route(plan, caller, state=state).first.number for caller in callers)  # type: ignore[union-attr]
    assert counts == {"13900000001": 25, "13900000002": 25, "02000000001": 25, "02000000002": 25}


def test_a_destination_marked_down_is_skipped_and_its_share_spread() -> None:
    plan = plan_from(SPLIT.replace("DOWN", "true"))
    state = RoutingState(OfficialCalendar())
    counts = Counter(route(plan, state=state).first.number for _ in range(90))  # type: ignore[union-attr]
    assert counts == {"02155556666": 60, "02866667777": 30}


def test_a_rule_whose_destinations_are_all_down_gives_way_to_the_next() -> None:
    every_one_down = SPLIT.replace("percent: 60}", "percent: 60, down: true}").replace(
        "percent: 30}", "percent: 30, down: true}"
    )
    decision = route(plan_from(every_one_down.replace("DOWN", "true")))
    assert decision.rule == "default"
    assert "matched, but every destination is down" in decision.trace()[0]


PIN_PLAN = (
    f'pin:\n  hash: "{hash_pin("2468", salt=bytes(16))}"\n'
    + """  applies_to: rules
rules:
  - name: after-hours
    when: {time: ["20:00-08:00"]}
    target: "13926005678"
    require_pin: true
default:
  target: "02088881234"
"""
)


def test_a_rule_may_ask_for_the_pin_before_dialling() -> None:
    plan = plan_from(PIN_PLAN)
    night = route(plan, when="2026-11-23 23:00")
    assert night.pin is not None and night.pin.attempts == 3
    day = route(plan, when="2026-11-23 10:00")
    assert day.pin is None


def test_a_closed_rule_rejects_with_its_announcement() -> None:
    plan = plan_from(
        """
        rules:
          - name: closed-at-night
            when: {time: ["23:00-07:00"]}
            reject: closed
            announcement: shop/closed
        default: {target: "13900000001"}
        """
    )
    decision = route(plan, when="2026-11-23 23:30")
    assert (decision.reject, decision.announcement) == ("closed", "shop/closed")


def test_decide_is_deterministic_for_the_same_inputs() -> None:
    plan = plan_from(SPLIT.replace("DOWN", "false"))
    first = [route(plan, state=RoutingState(OfficialCalendar())).first for _ in range(3)]
    again = [route(plan, state=RoutingState(OfficialCalendar())).first for _ in range(3)]
    assert first == again


def test_decide_refuses_a_naive_instant() -> None:
    plan = plan_from("default: {target: '13900000001'}\n")
    naive = at("2026-11-23 10:00").replace(tzinfo=None)
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(
            plan, Call(plan.number, locate("")), naive, Usage(), RoutingState(OfficialCalendar())
        )
