"""Structured log lines: one JSON object or one logfmt line per record, each with its call id.

The call session runs inside `call_context(call_id)`; every record logged from it, down to
the store and the accounting, carries that id without being passed it (a ContextVar: each
FastAGI connection is its own asyncio task with its own copy of the context).

Caller numbers are personal data, so they are masked by default, keeping what tells where
a call comes from: the area code of a fixed line, the first three digits of a mobile, and
the last two digits (13812345678 -> 138******78, 053188889999 -> 0531******99). A field
named in CALLER_FIELDS (pass it as `extra={"caller": ...}`) is masked whatever its shape;
in the message, in other fields and in tracebacks, runs of digits shaped like a phone
number are masked (mobiles, numbers with an area code, international numbers), while 400
numbers, call ids, counts and amounts are left alone. Full numbers appear only when an
admin turns masking off.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager
from contextvars import ContextVar, Token
from datetime import datetime
from typing import Any, Literal, TextIO
from zoneinfo import ZoneInfo

LogFormat = Literal["json", "logfmt"]
CallLines = Literal["all", "unanswered", "none"]
"""Which calls the router writes its per-call INFO line for (router.yaml's `log_calls`)."""

CALLER_FIELDS = frozenset({"caller", "caller_raw"})
"""Extra fields that hold a caller ID: masked in full, whatever they look like."""

_HANDLER_NAME = "hotline400-structured"
_current_call: ContextVar[str | None] = ContextVar("hotline400_call_id", default=None)

_DIGITS = frozenset("0123456789")
_PHONE_IN_TEXT = re.compile(
    r"(?<![0-9A-Za-z_.])"  # not the middle of a word, an id or a decimal
    r"(?:(?:\+|00)[1-9][0-9]{6,14}"  # international, +86 included
    r"|(?:86)?1[3-9][0-9]{9}"  # mobile
    r"|0[1-9][0-9]{8,10})"  # fixed line with its area code
    r"(?![0-9A-Za-z_])"
)
_KEPT_AT_END = 2
_LOGFMT_BARE = re.compile(r"[^\s\"=\\]+")
_SAMPLE_RECORD = logging.LogRecord("", 0, "", 0, "", None, None)
_STANDARD_ATTRIBUTES = frozenset(_SAMPLE_RECORD.__dict__) | {"message", "asctime", "call_id"}
_SET_BY_RECORD = len(_SAMPLE_RECORD.__dict__)
"""Attributes every LogRecord sets first, in this order; `extra` fields come after them."""
_MAX_HEADS = 256
"""Level and logger pairs whose logfmt part is remembered."""
_SHORTEST_PHONE = 8
"""Characters of the shortest phone-shaped run _PHONE_IN_TEXT matches (+ and 7 digits)."""


def call_context(call_id: str) -> AbstractContextManager[None]:
    """Records logged inside carry `call_id`."""
    return _CallContext(call_id)


class _CallContext:
    """`call_context`'s manager: a class, not a `@contextmanager` generator, which made
    every call a generator and raised a StopIteration at its end."""

    __slots__ = ("_call_id", "_token")

    def __init__(self, call_id: str) -> None:
        self._call_id = call_id
        self._token: Token[str | None] | None = None

    def __enter__(self) -> None:
        self._token = _current_call.set(self._call_id)

    def __exit__(self, *_exc: object) -> None:
        if self._token is not None:
            _current_call.reset(self._token)
            self._token = None


def mask_number(value: str) -> str:
    """A caller ID with its middle digits starred; separators and letters stay as they are.

    Kept: an international prefix (+, 00, 86), then the area code of a Chinese fixed line
    (3 digits for 01x and 02x, else 4) or the first 3 digits of any other number, and the
    last 2 digits. A number too short to hide anything (10086) is returned as it is.
    """
    plain = value.isascii() and value.isdigit()  # the usual caller ID: digits only
    digits = value if plain else "".join(c for c in value if c in _DIGITS)
    start = _prefix_length(digits, international=value.lstrip().startswith("+"))
    national = digits[start:]
    if national.startswith("0") and len(national) > 1:
        start += 3 if national[1] in "12" else 4
    else:
        start += 3
    end = len(digits) - _KEPT_AT_END
    if end <= start:
        return value
    if plain:
        return value[:start] + "*" * (end - start) + value[end:]
    masked, position = [], 0
    for char in value:
        if char in _DIGITS:
            masked.append("*" if start <= position < end else char)
            position += 1
        else:
            masked.append(char)
    return "".join(masked)


def mask_text(text: str) -> str:
    """Text with every phone-shaped run of digits masked (see the module's docstring)."""
    if len(text) < _SHORTEST_PHONE or text.isalpha():  # an outcome, a rule's name: no digits
        return text
    if text.isascii() and text.isdigit():  # a number field: phone-shaped as a whole or not
        return mask_number(text) if _PHONE_IN_TEXT.fullmatch(text) else text
    return _PHONE_IN_TEXT.sub(lambda match: mask_number(match.group()), text)


def _prefix_length(digits: str, *, international: bool) -> int:
    """Digits of the international prefix to keep before the national number."""
    if digits.startswith("0086"):
        return 4
    if digits.startswith("00"):
        return 2
    if digits.startswith("86") and (international or len(digits) == 13):
        return 2  # +86 ..., or 86 before an 11-digit mobile
    return 0


class StructuredFormatter(logging.Formatter):
    """JSON or logfmt: ts, level, logger, call_id, msg, extra fields, then exc.

    The call id is read from the call context as the record is formatted, which a
    StreamHandler does in the logging call itself (`extra={"call_id": ...}` overrides it).
    """

    def __init__(
        self,
        format: LogFormat = "logfmt",
        *,
        mask_callers: bool = True,
        zone: ZoneInfo | None = None,
    ) -> None:
        super().__init__()
        if format not in ("json", "logfmt"):
            raise ValueError(f"log format must be json or logfmt, not {format!r}")
        self.output = format
        self.mask_callers = mask_callers
        self.zone = zone or ZoneInfo("Asia/Shanghai")
        self._second: tuple[int, str, str] = (-1, "", "")
        """The last whole second stamped: its date and time, and its UTC offset."""
        self._heads: dict[tuple[str, str], str] = {}
        """`level=... logger=...` by level name and logger name."""

    def format(self, record: logging.LogRecord) -> str:
        if self.output == "json":
            return json.dumps(self.fields(record), ensure_ascii=False, default=str)
        return self._logfmt_line(record)

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        """The record as ordered key/value pairs, masked as configured."""
        fields: dict[str, Any] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "call_id": getattr(record, "call_id", None) or _current_call.get(),
            "msg": self._text(record.getMessage()),
        }
        fields.update(self._rest(record))
        return fields

    def _logfmt_line(self, record: logging.LogRecord) -> str:
        """`fields()` as one logfmt line, written without the dict between: a line is
        formatted for every call. The timestamp is always bare, and the level and logger
        part is the same for every line of a logger, so both skip the quoting check."""
        head = self._heads.get((record.levelname, record.name))
        if head is None:
            head = self._head(record.levelname, record.name)
        call_id = getattr(record, "call_id", None) or _current_call.get()
        parts = [
            f"ts={self._timestamp(record.created)} {head}"
            f" call_id={_logfmt_value(call_id)}"
            f" msg={_logfmt_value(self._text(record.getMessage()))}"
        ]
        parts += [f"{key}={_logfmt_value(value)}" for key, value in self._rest(record)]
        return " ".join(parts)

    def _head(self, levelname: str, logger: str) -> str:
        head = f"level={_logfmt_value(levelname.lower())} logger={_logfmt_value(logger)}"
        if len(self._heads) >= _MAX_HEADS:  # loggers made on the fly: stay bounded
            self._heads.clear()
        self._heads[(levelname, logger)] = head
        return head

    def _rest(self, record: logging.LogRecord) -> Iterator[tuple[str, Any]]:
        """The extra fields, then the traceback and the stack, masked as configured."""
        attributes = record.__dict__
        # Extras follow the 20-odd attributes every record sets: skip those unlooked (a line
        # is formatted for every call).
        for key in itertools.islice(attributes, _SET_BY_RECORD, None):
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                yield key, self._extra(key, attributes[key])
        if record.exc_info:
            yield "exc", self._text(self.formatException(record.exc_info))
        elif record.exc_text:
            yield "exc", self._text(record.exc_text)
        if record.stack_info:
            yield "stack", self._text(self.formatStack(record.stack_info))

    def _timestamp(self, created: float) -> str:
        """`created` as ISO 8601 to the millisecond in the zone, as
        `datetime.fromtimestamp(created, zone).isoformat(timespec="milliseconds")` gives it;
        the date, time and offset are worked out once a second (a call logs a line)."""
        second = int(created)
        micros = round((created - second) * 1_000_000)
        if micros >= 1_000_000 or created < 0:  # rounds up into the next second
            stamp = datetime.fromtimestamp(created, self.zone)
            return stamp.isoformat(timespec="milliseconds")
        cached, clock, offset = self._second
        if cached != second:
            whole = datetime.fromtimestamp(second, self.zone).isoformat()
            clock, offset = whole[:19], whole[19:]
            self._second = (second, clock, offset)
        return f"{clock}.{micros // 1000:03d}{offset}"

    def _text(self, text: str) -> str:
        return mask_text(text) if self.mask_callers else text

    def _extra(self, key: str, value: Any) -> Any:
        if type(value) is str:
            text = value
        elif value is None or isinstance(value, bool | int | float):
            return value
        else:
            text = str(value)
        if not self.mask_callers:
            return text
        return mask_number(text) if key in CALLER_FIELDS else mask_text(text)


def _logfmt_value(value: Any) -> str:
    if type(value) is str:
        text = value
    elif value is None:
        return ""
    elif isinstance(value, bool):
        return "true" if value else "false"
    else:
        text = str(value)
    if text.isascii() and text.isprintable():  # what _LOGFMT_BARE takes, without it
        bare = text and not (" " in text or '"' in text or "=" in text or "\\" in text)
    else:
        bare = _LOGFMT_BARE.fullmatch(text) is not None
    if bare:
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


def skip_unwritten_record_fields() -> None:
    """Stop `logging` working out, for every record, what StructuredFormatter never writes:
    the source file, line and function (a walk up the stack), the thread, process and
    multiprocessing names. The switches the logging HOWTO gives under "Optimization"; for
    the daemon, which logs a line per call, and set process-wide, so not by
    `configure_logging` (tests call it beside pytest's own log capture)."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


QUIET_LIBRARIES = ("httpx", "httpcore", "aiosqlite")
"""Loggers kept to warnings: httpx writes a line at INFO for every request, with its whole
URL (a CRM's credentials or token among them), so a CRM down under load would fill the
log with one line per attempt; the webhook sender says what went wrong, once a minute.
aiosqlite writes a line at DEBUG for every statement it runs, with its parameters (caller
numbers, unmasked) and its results: some 70 lines a call at `log_level: DEBUG`."""


def configure_logging(
    format: LogFormat = "logfmt",
    level: str | int = "INFO",
    mask_callers: bool = True,
    *,
    zone: ZoneInfo | None = None,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every record to `stream` (stderr) as structured lines; replaces the handler a
    previous call installed, so it can be called again when settings change."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(StructuredFormatter(format, mask_callers=mask_callers, zone=zone))
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for previous in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(previous)
        previous.close()
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for chatty in QUIET_LIBRARIES:
        logging.getLogger(chatty).setLevel(logging.WARNING)
    return handler
