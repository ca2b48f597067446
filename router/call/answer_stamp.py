"""The Dial's answer hook: what the router and asterisk/extensions.conf's
`[hotline400-answered]` agree on, as Asterisk's source reads it (docs/architecture.md, "The
answer hook").

A call the router answered for a prompt (PIN, menu) is dialled with
`U(hotline400-answered^<the caller's channel>)`: as the destination answers, Dial runs the
subroutine on the destination's channel, which writes the moment on the caller's channel,
`Set(SHARED(HOTLINE_ANSWERED,${ARG1})=${STRFTIME(,UTC,%Y-%m-%dT%H:%M:%S.%3q)})`. The router
reads it back with the Dial's outcome (GET FULL VARIABLE), and after a restart with AMI's
Getvar.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

ANSWER_HOOK = "hotline400-answered"
"""The shipped dialplan's subroutine that Dial's `U()` runs on the destination's channel."""
ANSWER_STAMP = "SHARED(HOTLINE_ANSWERED)"
"""Where the subroutine leaves the destination's answer, read on the caller's channel."""
ASTERISK_CLOCK = "STRFTIME(,UTC,%Y-%m-%dT%H:%M:%S.%3q)"
"""Asterisk's clock as the subroutine writes it: the UTC date and time to the millisecond
(ast_strftime's own `%3q`). Not `%s`: libc's strftime computes it with mktime() in the
process's TZ from the fields Asterisk's own zone code took from /etc/localtime, which is off
by the difference of the two zones when the TZ variable names another one."""
HOOKABLE_CHANNEL = re.compile(r"[A-Za-z0-9/@._;:+#*-]+")
"""A channel name `U(context^name)` carries to the subroutine's ARG1, and SHARED() to the
channel, unchanged: none of Dial's option syntax (parentheses, quotes, backslashes, `^`),
Gosub's and SHARED()'s argument splitting (commas, brackets), Set()'s `=`, the `${` that
AGI's EXEC expands on a channel setting AGIEXECFULL, nor the space that splits an AGI
command."""

_UTC_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,6}")
_EPOCH_STAMP = re.compile(r"\d{1,12}(\.\d{1,6})?")
"""Epoch seconds: 12 digits reach past the year 30000, and more (up to a float's
infinity) are no clock's."""


def stamp_epoch(text: str | None) -> float | None:
    """The instant a stamp names, in epoch seconds: the UTC date and time the shipped
    subroutine writes, or the epoch seconds (`%s.%3q`) of a dialplan written before; None
    when there is no stamp (not answered, a dialplan without the hook) or it is no time."""
    value = (text or "").strip()
    if _UTC_STAMP.fullmatch(value):
        try:
            moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f")
        except ValueError:
            return None
        return moment.replace(tzinfo=UTC).timestamp()
    if _EPOCH_STAMP.fullmatch(value):
        return float(value)
    return None
