"""Quoting untrusted strings for AGI commands, and keeping them out of Dial's syntax."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.fastagi.protocol import MAX_COMMAND_BYTES, AGISession
from router.fastagi.quoting import (
    DEFAULT_MAX_LEN,
    UnsafeArgument,
    clean,
    dial_argument,
    dial_token,
    quote,
)
from router.simulation.asterisk_agi import SimulatedCall, run_call, split_agi_args
from tests.router.fastagi.sessions import serve_sessions

# --- quote -----------------------------------------------------------------------------------


def test_quotes_and_spaces_are_quoted_as_asterisk_expects() -> None:
    value = 'a b "c" d'
    assert f"SET VARIABLE NAME {quote(value)}" == 'SET VARIABLE NAME "a b \\"c\\" d"'


def test_backslashes_are_escaped() -> None:
    assert quote("C:\\dir\\") == '"C:\\\\dir\\\\"'


def test_line_breaks_cannot_start_a_second_command() -> None:
    assert quote('x"\r\nEXEC Dial "PJSIP/evil"') == '"x\\"EXEC Dial \\"PJSIP/evil\\""'


def test_other_control_characters_and_line_separators_are_removed() -> None:
    assert quote("a\x00b\x1bc\x7fd\u2028e\u2029f\x85g\tz") == '"abcdefgz"'


def test_commas_pipes_and_parentheses_stay_literal_inside_one_word() -> None:
    assert split_agi_args(f"SET VARIABLE X {quote('1,2|3&(4)')}")[3] == "1,2|3&(4)"


def test_empty_value_is_an_empty_word() -> None:
    assert quote("") == '""'
    assert split_agi_args(f"SET VARIABLE X {quote('')}") == ["SET", "VARIABLE", "X", ""]


def test_long_values_are_cut_before_escaping() -> None:
    assert len(clean("x" * 10_000)) == DEFAULT_MAX_LEN
    quoted = quote('"' * 1000, max_len=5)
    assert quoted == '"' + '\\"' * 5 + '"'
    assert split_agi_args(f"SET VARIABLE X {quoted}")[3] == '"' * 5


@given(st.text())
def test_a_quoted_value_never_holds_a_raw_line_break(value: str) -> None:
    quoted = quote(value)
    assert "\n" not in quoted and "\r" not in quoted


@given(st.text(), st.integers(min_value=0, max_value=300))
def test_a_quoted_value_round_trips_through_asterisks_unquoting(value: str, limit: int) -> None:
    words = split_agi_args(f"SET VARIABLE NAME {quote(value, limit)}")
    assert words == ["SET", "VARIABLE", "NAME", clean(value, limit)]


@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=DEFAULT_MAX_LEN))
def test_a_default_quoted_value_fits_one_asterisk_command_line(value: str) -> None:
    line = f"SET VARIABLE HOTLINE_CALLER_NAME {quote(value)}\n"
    assert len(line.encode("utf-8")) <= MAX_COMMAND_BYTES


NASTY = [
    'Robert"); EXEC Dial("PJSIP/evil',
    "line one\nHANGUP\nline two",
    "back\\slash\\",
    '\\"',
    "tab\tand  spaces ",
    "x) endpos=5",
    "(parenthesised)",
    "张三 <053188889999>",
    "",
    "\r\n",
]


async def test_nasty_values_survive_set_and_get_through_the_simulator() -> None:
    got: list[str | None] = []

    async def router(session: AGISession) -> None:
        for value in NASTY:
            await session.set_variable("CALLER_NAME", value)
            got.append(await session.get_variable("CALLER_NAME"))
        await session.close()

    server, host, port = await serve_sessions(router)
    async with server:
        result = await run_call(host, port, SimulatedCall())
    assert got == [clean(value) for value in NASTY]
    assert all(reply != ["510 Invalid or unknown command"] for reply in result.replies)
    assert len(result.commands) == 2 * len(NASTY)


# --- Dial arguments --------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["13800000011", "+8613800000011", "*99#", "400-123_4.5"])
def test_plain_numbers_may_be_spliced_into_dial(number: str) -> None:
    assert dial_token(number) == number


@pytest.mark.parametrize(
    "number",
    [
        "13800000011,20,L(1)",
        "13800000011&PJSIP/evil@carrier",
        "1|2",
        "1(2)",
        "138@other-context",
        "PJSIP/138",
        "sip:138",
        " 138",
        "138\n",
        '138"',
        "138\\",
        "${CALLERID(num)}",
        "",
        "1" * 65,
        "１３８",
    ],
)
def test_numbers_that_would_inject_dial_syntax_are_refused(number: str) -> None:
    with pytest.raises(UnsafeArgument):
        dial_token(number)


def test_dial_argument_joins_destination_timeout_and_options() -> None:
    assert dial_argument("Local/{number}@phones", "13800000011", 20) == (
        "Local/13800000011@phones,20"
    )
    assert dial_argument("PJSIP/{number}@carrier", "13800000011", 30, "gL(5000)") == (
        "PJSIP/13800000011@carrier,30,gL(5000)"
    )


def test_dial_argument_refuses_injection_through_number_options_or_template() -> None:
    with pytest.raises(UnsafeArgument):
        dial_argument("Local/{number}@phones", "13800000011,5,g", 20)
    with pytest.raises(UnsafeArgument):
        dial_argument("Local/{number}@phones", "13800000011", 20, "g,http://x")
    with pytest.raises(UnsafeArgument):
        dial_argument("Local/{number}@phones&PJSIP/x", "13800000011", 20)
    with pytest.raises(ValueError):
        dial_argument("Local/13800000011@phones", "13800000011", 20)
    with pytest.raises(ValueError):
        dial_argument("Local/{number}@phones", "13800000011", 0)


async def test_a_quoted_dial_argument_reaches_dial_as_one_destination() -> None:
    async def router(session: AGISession) -> None:
        argument = dial_argument("Local/{number}@phones", "13800000021", 20, "L(5000)")
        await session.exec("Dial", argument)
        await session.close()

    server, host, port = await serve_sessions(router)
    async with server:
        result = await run_call(host, port, SimulatedCall())
    assert result.commands == ['EXEC Dial "Local/13800000021@phones,20,L(5000)"']
    assert [(dial.argument, dial.status) for dial in result.dials] == [
        ("Local/13800000021@phones,20,L(5000)", "BUSY")
    ]
