"""Structured log lines: call id from the call context, caller numbers masked by default."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import aiosqlite
import pytest

from router.monitoring.logs import call_context, configure_logging, mask_number, mask_text

log = logging.getLogger("hotline400.call")


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def lines_of(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def json_records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in lines_of(stream)]


def logfmt_pairs(line: str) -> dict[str, str]:
    """A logfmt line read back: bare values, or quoted ones with \\" \\\\ \\n escapes."""
    pairs = {}
    for key, quoted, bare in re.findall(r'(\w+)=(?:"((?:[^"\\]|\\.)*)"|(\S*))', line):
        if quoted:
            value = re.sub(
                r"\\(.)", lambda m: {"n": "\n", "r": "\r", "t": "\t"}.get(m[1], m[1]), quoted
            )
        else:
            value = bare
        pairs[key] = value
    return pairs


@pytest.fixture
def stream() -> io.StringIO:
    return io.StringIO()


# --- masking ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("13812345678", "138******78"),
        ("053188889999", "0531******99"),
        ("01088889999", "010******99"),
        ("02112345678", "021******78"),
        ("+8613812345678", "+86138******78"),
        ("008613812345678", "0086138******78"),
        ("8613812345678", "86138******78"),
        ("+86 138 1234 5678", "+86 138 **** **78"),
        ("0531-8888 9999", "0531-**** **99"),
        ("+442079460958", "+442*******58"),
    ],
)
def test_a_caller_number_keeps_its_area_code_or_first_3_digits_and_last_2(
    number: str, masked: str
) -> None:
    assert mask_number(number) == masked


@pytest.mark.parametrize("caller_id", ["10086", "95588", "anonymous", "Restricted", ""])
def test_short_numbers_and_withheld_markers_have_nothing_to_mask(caller_id: str) -> None:
    assert mask_number(caller_id) == caller_id


def test_phone_shaped_numbers_in_text_are_masked() -> None:
    text = "caller 13812345678 from 053188889999 via +442079460958, then 8613900001111."

    assert mask_text(text) == (
        "caller 138******78 from 0531******99 via +442*******58, then 86139******11."
    )


def test_the_shortest_phone_shaped_text_is_masked_and_words_are_left_as_they_are() -> None:
    assert mask_text("+4420794") == "+442**94"  # + and 7 digits: the shortest shape
    assert mask_text("answered") == "answered"
    assert mask_text("北京联通") == "北京联通"


@pytest.mark.parametrize(
    "text",
    [
        "dialled 4008207788",
        "call 1732345678.42 ended",
        "took 1732345678123 ms",
        "charged 0.22 yuan, 13 legs, port 4573",
        "call hotline400-13812345678abcdef failed",
    ],
)
def test_400_numbers_call_ids_counts_and_amounts_are_left_alone(text: str) -> None:
    assert mask_text(text) == text


# --- JSON lines ---------------------------------------------------------------------------


def test_a_json_line_carries_time_level_logger_call_id_message_and_extra_fields(
    stream: io.StringIO,
) -> None:
    configure_logging("json", stream=stream)

    with call_context("1732345678.42"):
        log.info("dialled %s", "4008207788", extra={"leg": 2})

    (record,) = json_records(stream)
    assert record["level"] == "info"
    assert record["logger"] == "hotline400.call"
    assert record["call_id"] == "1732345678.42"
    assert record["msg"] == "dialled 4008207788"
    assert record["leg"] == 2
    assert datetime.fromisoformat(str(record["ts"])).utcoffset() is not None


def test_extra_fields_are_written_however_the_record_was_made_or_formatted_before(
    stream: io.StringIO,
) -> None:
    handler = configure_logging("json", stream=stream)
    made = logging.makeLogRecord({"name": "hotline400.call", "msg": "ended", "leg": 2})
    logging.Formatter("%(asctime)s %(message)s").format(made)  # another handler went first
    handler.handle(made)

    (record,) = json_records(stream)
    assert record["msg"] == "ended"
    assert record["leg"] == 2
    assert "asctime" not in record and "message" not in record


def test_a_caller_given_as_a_field_or_in_the_message_is_masked_by_default(
    stream: io.StringIO,
) -> None:
    configure_logging("json", stream=stream)

    log.warning("caller %s blacklisted", "13812345678", extra={"caller": "+86 138 1234 5678"})

    (record,) = json_records(stream)
    assert record["msg"] == "caller 138******78 blacklisted"
    assert record["caller"] == "+86 138 **** **78"
    assert "13812345678" not in stream.getvalue()


def test_numbers_in_a_traceback_are_masked_too(stream: io.StringIO) -> None:
    configure_logging("json", stream=stream)

    try:
        raise ValueError("bad caller 13812345678")
    except ValueError:
        log.exception("call failed")

    (record,) = json_records(stream)
    assert "ValueError: bad caller 138******78" in str(record["exc"])
    assert "13812345678" not in stream.getvalue()


def test_full_numbers_are_logged_only_when_masking_is_turned_off(stream: io.StringIO) -> None:
    configure_logging("json", mask_callers=False, stream=stream)

    log.info("caller %s", "13812345678", extra={"caller": "13812345678"})

    (record,) = json_records(stream)
    assert record["msg"] == "caller 13812345678"
    assert record["caller"] == "13812345678"


def test_outside_a_call_the_call_id_is_null(stream: io.StringIO) -> None:
    configure_logging("json", stream=stream)

    log.info("plans loaded")

    assert json_records(stream)[0]["call_id"] is None


# --- logfmt lines -------------------------------------------------------------------------


def test_a_logfmt_record_is_one_line_of_key_value_pairs_even_with_a_traceback(
    stream: io.StringIO,
) -> None:
    configure_logging("logfmt", stream=stream)

    with call_context("1732345678.42"):
        try:
            raise RuntimeError('the "store" is\nlocked')
        except RuntimeError:
            log.exception("write failed = %d ops", 3, extra={"caller": "13812345678"})

    (line,) = lines_of(stream)
    pairs = logfmt_pairs(line)
    assert line.startswith("ts=")
    assert pairs["level"] == "error"
    assert pairs["call_id"] == "1732345678.42"
    assert pairs["msg"] == "write failed = 3 ops"
    assert pairs["caller"] == "138******78"
    assert 'RuntimeError: the "store" is\nlocked' in pairs["exc"]


# --- the call context ---------------------------------------------------------------------


def test_the_call_id_is_restored_when_a_nested_context_ends(stream: io.StringIO) -> None:
    configure_logging("json", stream=stream)

    with call_context("outer"):
        with call_context("inner"):
            log.info("inside")
        log.info("after")
    log.info("outside")

    assert [record["call_id"] for record in json_records(stream)] == ["inner", "outer", None]


async def test_concurrent_calls_each_log_their_own_call_id(stream: io.StringIO) -> None:
    configure_logging("json", stream=stream)

    async def session(call_id: str) -> None:
        with call_context(call_id):
            for step in range(3):
                log.info("step %d", step)
                await asyncio.sleep(0)

    await asyncio.gather(session("call-a"), session("call-b"))

    records = json_records(stream)
    assert [r["call_id"] for r in records] == ["call-a", "call-b"] * 3
    assert all(r["msg"].startswith("step") for r in records)  # type: ignore[union-attr]


# --- configuration ------------------------------------------------------------------------


def test_configuring_again_replaces_the_handler_rather_than_adding_one(
    stream: io.StringIO,
) -> None:
    first = io.StringIO()
    configure_logging("json", stream=first)
    configure_logging("logfmt", stream=stream)

    log.info("once")

    assert first.getvalue() == ""
    assert len(lines_of(stream)) == 1


def test_records_below_the_level_are_dropped(stream: io.StringIO) -> None:
    configure_logging("logfmt", "WARNING", stream=stream)

    log.info("quiet")
    log.warning("heard")

    assert [logfmt_pairs(line)["msg"] for line in lines_of(stream)] == ["heard"]


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="json or logfmt"):
        configure_logging("xml")  # type: ignore[arg-type]


async def test_at_debug_the_database_driver_writes_no_line_per_statement(
    stream: io.StringIO, tmp_path: Path
) -> None:
    """aiosqlite logs every statement it runs, with its parameters (caller numbers among
    them, unmasked) and whole result sets: some 70 lines a call. It is kept to warnings."""
    configure_logging("logfmt", "DEBUG", stream=stream)
    async with aiosqlite.connect(tmp_path / "calls.db") as db:
        await db.execute("SELECT ?", ("13901234567",))
    log.debug("the call went on")
    text = stream.getvalue()
    assert "aiosqlite" not in text and "13901234567" not in text
    assert "the call went on" in text
