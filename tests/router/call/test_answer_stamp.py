"""The Dial's answer hook as Asterisk's source reads it (docs/architecture.md, "The answer
hook"): which caller channel names U(hotline400-answered^<name>) carries to the subroutine
unchanged, and how the stamp it leaves names the destination's answer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from router.call.answer_stamp import ANSWER_HOOK, ASTERISK_CLOCK, HOOKABLE_CHANNEL, stamp_epoch
from tests.conftest import REPO


@pytest.mark.parametrize(
    "name",
    [
        "PJSIP/carrier-0000001a",
        "SIP/1.2.3.4-00000001",
        "IAX2/carrier-12345",
        "Local/4006001234@inbound-400-00000001;2",
        "DAHDI/i1/053188886666-1",
    ],
)
def test_a_channel_name_the_hook_carries_unchanged_is_hooked(name: str) -> None:
    assert HOOKABLE_CHANNEL.fullmatch(name)


@pytest.mark.parametrize(
    "name",
    [
        "PJSIP/a,b-00000001",  # Gosub splits its arguments at the comma: ARG1 cut short
        "PJSIP/a^b-00000001",  # Dial turns every ^ of U() into a comma
        "PJSIP/a(b-00000001",  # U()'s argument ends at its closing parenthesis
        "PJSIP/a)b-00000001",
        "PJSIP/a[b]-00000001",  # brackets hold commas together in the argument splits
        'PJSIP/a"b-00000001',  # quotes are taken out of Dial's arguments
        "PJSIP/a\\b-00000001",  # so is a backslash
        "PJSIP/a=b-00000001",  # Set() splits the name from the value at the first =
        "PJSIP/${X}-00000001",  # expanded by EXEC Dial on a channel that sets AGIEXECFULL
        "PJSIP/a b-00000001",  # one more AGI argument unless quoted
        "",
    ],
)
def test_a_channel_name_the_hook_would_mangle_is_dialled_without_it(name: str) -> None:
    assert not HOOKABLE_CHANNEL.fullmatch(name)


def test_the_stamp_names_its_instant_in_utc_whatever_zone_asterisk_runs_in() -> None:
    """STRFTIME with the UTC zone writes the answer's UTC date and time: no `%s`, which
    libc's strftime computes with mktime() in the process's TZ from fields Asterisk took
    from /etc/localtime, 8 hours off when the two differ."""
    assert ASTERISK_CLOCK == "STRFTIME(,UTC,%Y-%m-%dT%H:%M:%S.%3q)"
    answered = datetime(2026, 12, 7, 6, 30, 5, 123000, tzinfo=UTC)
    assert stamp_epoch("2026-12-07T06:30:05.123") == answered.timestamp()


def test_a_stamp_in_epoch_seconds_from_an_earlier_dialplan_still_reads() -> None:
    assert stamp_epoch("1796700000.123") == 1796700000.123


@pytest.mark.parametrize("text", [None, "", "   ", "yesterday", "2026-12-07", "1e9", "-5.0"])
def test_no_stamp_or_a_stamp_that_is_no_time_reads_as_none(text: str | None) -> None:
    assert stamp_epoch(text) is None


@pytest.mark.parametrize("text", ["9" * 400, "9" * 400 + ".5", "1" * 13])
def test_epoch_seconds_beyond_any_clock_read_as_none(text: str) -> None:
    """400 digits read as float infinity, and the talk between two stamps then failed the
    call's end (round() of infinity or NaN raises): no clock Asterisk runs on is there."""
    assert stamp_epoch(text) is None


@pytest.mark.parametrize("document", ["asterisk/extensions.conf", "README.md"])
def test_the_shipped_subroutine_stamps_what_the_router_reads(document: str) -> None:
    text = (REPO / document).read_text(encoding="utf-8")
    assert f"[{ANSWER_HOOK}]\n" in text
    assert f"Set(SHARED(HOTLINE_ANSWERED,${{ARG1}})=${{{ASTERISK_CLOCK}}})" in text
