"""IVR menus in plans: how they are written, what the loader refuses (file:line field), and
how a caller's keys walk them to a route (the same walk the router and simulate make)."""

import textwrap

import pytest

from dialplan.calendar import OfficialCalendar
from dialplan.errors import ConfigError
from dialplan.evaluator import RoutingState, follow_keys, skip_menus
from dialplan.plan_loader import parse_plan
from tests.conftest import plan_from, route

FILE = "config/plans/4006001234.yaml"
HEAD = 'number: "4006001234"\nname: Test Co.\n'

SHOP = """
menus:
  main:
    prompt: shop/main
    invalid_prompt: shop/invalid
    options:
      1: {target: "13800000011"}
      2: {menu: after-sales}
      3: {split: [{number: "13800000021", percent: 50}, {number: "13800000022", percent: 50}]}
      9: repeat
    default: {target: "13800000012"}
  after-sales:
    prompt: shop/after-sales
    retries: 0
    options:
      1: {target: "13800000013", language: en}
    default: {reject: closed}
rules:
  - name: daytime
    when: {time: ["08:00-20:00"]}
    menu: main
default: {target: "13800000019"}
"""


def problems_of(body: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_plan(FILE, HEAD + textwrap.dedent(body).lstrip())
    return [str(problem) for problem in caught.value.problems]


def walked(keys: str, when: str = "2026-11-23 10:00") -> list[str]:
    plan = plan_from(SHOP)
    decision = route(plan, when=when)
    follow_keys(plan, decision, keys, _state())
    outcome = decision.first.number if decision.first else f"reject {decision.reject}"
    return [decision.menu_path or "", decision.menu_digits or "", outcome, decision.rule or ""]


def _state() -> RoutingState:
    return RoutingState(OfficialCalendar())


def test_a_rule_that_plays_a_menu_is_decided_as_a_menu_to_play() -> None:
    decision = route(plan_from(SHOP))
    assert (decision.action, decision.menu, decision.rule) == ("menu", "main", "daytime")
    assert decision.trace() == ["rule 0 'daytime': matched -> menu 'main'"]


def test_keys_walk_the_menus_to_a_route_and_the_rule_stays_the_one_that_led_there() -> None:
    assert walked("1") == ["main:1", "1", "13800000011", "daytime"]
    assert walked("21") == ["main:2>after-sales:1", "21", "13800000013", "daytime"]


def test_no_key_and_wrong_keys_spend_the_retries_then_the_default() -> None:
    assert walked("") == ["main:default", "", "13800000012", "daytime"]
    assert walked("77") == ["main:default", "77", "13800000012", "daytime"]
    assert walked("71") == ["main:1", "71", "13800000011", "daytime"]  # one retry left
    assert walked("2") == ["main:2>after-sales:default", "2", "reject closed", "daytime"]


def test_repeat_is_not_a_retry_but_a_menu_plays_ten_times_at_most() -> None:
    assert walked("9991") == ["main:1", "9991", "13800000011", "daytime"]
    assert walked("9" * 12) == ["main:default", "9" * 10, "13800000012", "daytime"]


def test_the_trace_tells_the_way_through_the_menus() -> None:
    plan = plan_from(SHOP)
    decision = route(plan)
    follow_keys(plan, decision, "72", _state())
    assert decision.trace() == [
        "rule 0 'daytime': matched -> menu 'main'",
        "menu 'main': key 7 has no option, plays again (retry 1 of 2)",
        "menu 'main': key 2 -> menu 'after-sales'",
        "menu 'after-sales': no key, retries spent -> default",
        "menu 'after-sales' default: matched",
        "decision: reject (closed): menu 'after-sales' default refuses the call",
    ]


def test_a_menu_option_split_keeps_its_own_round_robin() -> None:
    assert {walked("3")[2] for _ in range(2)} <= {"13800000021", "13800000022"}


def test_a_menu_option_chooses_the_prompt_language() -> None:
    plan = plan_from("language: zh\n" + SHOP)
    decision = route(plan)
    assert decision.language == "zh"
    follow_keys(plan, decision, "21", _state())
    assert decision.language == "en"
    assert plan.languages() == ["zh", "en"]


def test_a_repeat_option_with_a_language_plays_the_menu_again_in_that_language() -> None:
    """ "For English, press 9": the same menu again, its prompts in English from then on."""
    plan = plan_from(
        """
        language: zh
        menus:
          main:
            prompt: shop/main
            options:
              1: {target: "13800000011"}
              9: {repeat: true, language: en}
            default: {target: "13800000012"}
        default: {menu: main}
        """
    )
    decision = route(plan)
    follow_keys(plan, decision, "91", _state())
    assert (decision.menu_path, decision.menu_digits, decision.language) == ("main:1", "91", "en")
    assert decision.first is not None and decision.first.number == "13800000011"
    assert decision.trace()[1] == "menu 'main': key 9: repeat, prompts in en"


def test_skipped_menus_lead_through_each_default_and_leave_no_path() -> None:
    """What the router does for an account without the ivr feature: no menu is played."""
    nested = SHOP.replace('default: {target: "13800000012"}', "default: {menu: after-sales}")
    nested = nested.replace("default: {reject: closed}", 'default: {target: "13800000014"}')
    plan = plan_from(nested)
    decision = route(plan, when="2026-11-23 10:00")
    skip_menus(plan, decision, _state(), "not paid for")
    assert decision.first is not None and decision.first.number == "13800000014"
    assert (decision.menu_path, decision.menu_digits, decision.rule) == (None, None, "daytime")
    assert [line for line in decision.trace() if "not played" in line] == [
        "menu 'main': not played (not paid for) -> default",
        "menu 'after-sales': not played (not paid for) -> default",
    ]


def test_a_menu_that_is_not_defined_is_named_with_its_line() -> None:
    assert problems_of("default: {menu: main}\n") == [
        f"{FILE}:3 default.menu: no menu named 'main' (menus: none defined)"
    ]


def test_menus_nest_three_deep_at_most_and_never_loop() -> None:
    def menu(name: str, below: str) -> str:
        return (
            f"  {name}:\n    prompt: p/{name}\n    options:\n      1: {{menu: {below}}}\n"
            f'    default: {{target: "13800000011"}}\n'
        )

    deep = "menus:\n" + menu("a", "b") + menu("b", "c") + menu("c", "d")
    deep += "  d:\n    prompt: p/d\n    options:\n      1: repeat\n"
    deep += '    default: {target: "13800000011"}\n'
    assert problems_of(deep + "default: {menu: a}\n") == [
        f"{FILE}:4 menus.a: menu 'a' nests 4 menus deep (a -> b -> c -> d); menus nest at "
        "most 3 deep and never loop (an option `repeat` plays a menu again)"
    ]
    loop = "menus:\n" + menu("a", "b") + menu("b", "a")
    found = problems_of(loop + "default: {menu: a}\n")
    assert found[0].startswith(f"{FILE}:4 menus.a: menu 'a' loops back (a -> b -> a -> b)")


def test_menu_keys_defaults_and_prompts_are_checked() -> None:
    found = problems_of(
        """
        menus:
          main:
            prompt: "bad prompt"
            options:
              "#": {target: "13800000011"}
            default: repeat
        default: {menu: main}
        """
    )
    assert found == [
        f"{FILE}:5 menus.main.prompt: 'bad prompt' is not a sound file name "
        "(letters, digits, _-/., at most 120)",
        f"{FILE}:6 menus.main.options: '#' is not a key a caller can press for an option "
        "(0-9 or *)",
        f"{FILE}:8 menus.main.default: the default ends the retries: a route or a menu, not repeat",
    ]


def test_an_option_gives_exactly_one_thing_to_do() -> None:
    found = problems_of(
        """
        menus:
          main:
            prompt: p/main
            options:
              1: {target: "13800000011", menu: main}
            default: {target: "13800000011"}
        default: {menu: main}
        """
    )
    assert found == [
        f"{FILE}:7 menus.main.options.1: give exactly one of target, split, reject, menu or "
        "repeat (found target, menu)"
    ]


def test_what_only_a_dialling_route_does_is_refused_on_a_route_that_plays_a_menu() -> None:
    """The caller's key chooses the route that dials: a rule that plays a menu records,
    surveys, asks a PIN, rings and forwards nothing itself, so a setting there that would
    silently do nothing is refused with its line, pointing at the menu's options."""
    pin_hash = "scrypt$14$8$1$" + "ab" * 16 + "$" + "cd" * 32 + "$4"
    found = problems_of(
        f"""
        pin: {{hash: "{pin_hash}", applies_to: rules}}
        recording: {{applies_to: rules}}
        survey: {{applies_to: rules}}
        menus:
          main:
            prompt: p/main
            options:
              1: {{target: "13800000011", record: true}}
            default: {{target: "13800000011"}}
        rules:
          - name: daytime
            menu: main
            record: true
            survey: true
            require_pin: true
            ring_timeout: 30
            forwarding: {{on_busy: ["13800000012"]}}
        default: {{target: "13800000011"}}
        """
    )
    where = "does nothing on a route that plays a menu: set it on the menu's options"
    assert found == [
        f"{FILE}:15 rules[0].record: record {where}",
        f"{FILE}:16 rules[0].survey: survey {where}",
        f"{FILE}:17 rules[0].require_pin: require_pin {where}",
        f"{FILE}:18 rules[0].ring_timeout: ring_timeout {where}",
        f"{FILE}:19 rules[0].forwarding: forwarding {where}",
    ]


def test_what_only_a_dialling_route_does_is_refused_on_a_repeat_option() -> None:
    found = problems_of(
        """
        recording: {applies_to: rules}
        menus:
          main:
            prompt: p/main
            options:
              9: {repeat: true, record: true, ring_timeout: 30}
            default: {target: "13800000011"}
        default: {menu: main}
        """
    )
    where = "does nothing on an option that plays the menu again"
    assert found == [
        f"{FILE}:8 menus.main.options.9.record: record {where}",
        f"{FILE}:8 menus.main.options.9.ring_timeout: ring_timeout {where}",
    ]


def test_a_star_key_written_without_quotes_is_explained() -> None:
    """YAML reads a bare `*` as an alias: the admin is told to quote the key."""
    found = problems_of(
        """
        menus:
          main:
            prompt: p/main
            options:
              *: {target: "13800000011"}
            default: {target: "13800000011"}
        default: {menu: main}
        """
    )
    assert found == [
        f"{FILE}:7 (file): invalid YAML at column 8: expected alphabetic or numeric character, "
        "but found ':' (YAML reads a bare * as an alias: write it in quotes, \"*\")"
    ]
