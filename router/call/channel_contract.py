"""What a call leaves behind: the HOTLINE_* channel variables, the outcomes, and how every
way a call can end maps onto an outcome and a Q.850 cause.

After AGI() returns, the Asterisk dialplan reads HOTLINE_STATUS, HOTLINE_DEST and
HOTLINE_RULE; the same outcome is the CDR's `outcome` column and the `outcome` label of
`hotline400_calls`. The evaluator's reject reasons (also the `reason` label of
`hotline400_rejections`), the refusals only the router makes, and the class of the last
Dial result are the keys of ONE table, `ENDINGS`, which gives each its outcome and the
cause the router hangs up with. A test holds every member of every one of these enums to
a row, to a metric label and to the documentation:
tests/router/call/test_channel_contract.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from dialplan.decision import DialClass, RejectReason


class ChannelVariable(StrEnum):
    """The channel variables the router sets for the dialplan after AGI()."""

    STATUS = "HOTLINE_STATUS"
    """How the call ended: an Outcome other than the CDR-only ones."""
    DESTINATION = "HOTLINE_DEST"
    """The destination dialled last, or empty when none was."""
    RULE = "HOTLINE_RULE"
    """The rule of the plan that decided the call, or empty."""


class Outcome(StrEnum):
    """How a call ended; `in_progress` while it runs, `interrupted` if the router died."""

    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"
    BUSY = "busy"
    NOANSWER = "noanswer"
    REJECTED = "rejected"
    BLOCKED = "blocked"
    PIN_FAILED = "pin_failed"
    CAPPED = "capped"
    SUSPENDED = "suspended"
    UNKNOWN_NUMBER = "unknown_number"
    ERROR = "error"
    INTERRUPTED = "interrupted"


class Cause(IntEnum):
    """The Q.850 cause a refused call is hung up with. It travels back to the carrier and
    decides what the caller hears and what the carrier's own records say."""

    UNALLOCATED_NUMBER = 1
    """The 400 number is not in service (unknown, cancelled, frozen)."""
    NORMAL_CLEARING = 16
    """The call ran its course (after an announcement or a PIN failure)."""
    USER_BUSY = 17
    """A cost control the subscriber set is reached: try again later."""
    CALL_REJECTED = 21
    """The caller is screened, blacklisted or withheld the caller ID."""
    NO_CIRCUIT = 34
    """Every destination of the plan is down."""
    TEMPORARY_FAILURE = 41
    """The router failed; a retry may work."""
    SERVICE_NOT_AVAILABLE = 63
    """The number is suspended or in arrears."""


class RouterRefusal(StrEnum):
    """Endings the router reaches itself, outside decide()."""

    UNKNOWN_NUMBER = "unknown_number"
    """No plan serves the dialled number."""
    PIN_FAILED = "pin_failed"
    """The caller did not enter the PIN within the plan's attempts."""
    PIN_GUESSING = "pin_guessing"
    """The caller failed this number's PIN on too many calls lately (router.yaml
    pin_guard) and is refused before the prompt for a while."""
    NO_TALK_BUDGET = "no_talk_budget"
    """The balance or a cost cap leaves less than one billing increment to dial with."""
    QUEUE_TIMEOUT = "queue_timeout"
    """Held for the queue's max_wait with no destination free; its announcement played."""
    ERROR = "error"
    """The router failed on this call."""


@dataclass(frozen=True, slots=True)
class Ending:
    outcome: Outcome
    """HOTLINE_STATUS, the CDR's outcome and the `outcome` label of hotline400_calls."""
    cause: Cause | None
    """The cause the router hangs up with; None when a Dial ended the call and Asterisk
    has the channel back."""


EndingKey = RejectReason | RouterRefusal | DialClass

ENDINGS: dict[EndingKey, Ending] = {
    RouterRefusal.UNKNOWN_NUMBER: Ending(Outcome.UNKNOWN_NUMBER, Cause.UNALLOCATED_NUMBER),
    RejectReason.SUSPENDED: Ending(Outcome.SUSPENDED, Cause.SERVICE_NOT_AVAILABLE),
    RejectReason.CANCELLED: Ending(Outcome.SUSPENDED, Cause.UNALLOCATED_NUMBER),
    RejectReason.FROZEN: Ending(Outcome.SUSPENDED, Cause.UNALLOCATED_NUMBER),
    RejectReason.ARREARS: Ending(Outcome.SUSPENDED, Cause.SERVICE_NOT_AVAILABLE),
    RejectReason.ANONYMOUS: Ending(Outcome.BLOCKED, Cause.CALL_REJECTED),
    RejectReason.BLACKLISTED: Ending(Outcome.BLOCKED, Cause.CALL_REJECTED),
    RejectReason.BLOCKED: Ending(Outcome.BLOCKED, Cause.CALL_REJECTED),
    RejectReason.CAPPED: Ending(Outcome.CAPPED, Cause.USER_BUSY),
    RouterRefusal.NO_TALK_BUDGET: Ending(Outcome.CAPPED, Cause.USER_BUSY),
    RouterRefusal.QUEUE_TIMEOUT: Ending(Outcome.BUSY, Cause.USER_BUSY),
    RejectReason.CLOSED: Ending(Outcome.REJECTED, Cause.NORMAL_CLEARING),
    RejectReason.NO_ROUTE: Ending(Outcome.REJECTED, Cause.NO_CIRCUIT),
    RouterRefusal.PIN_FAILED: Ending(Outcome.PIN_FAILED, Cause.NORMAL_CLEARING),
    RouterRefusal.PIN_GUESSING: Ending(Outcome.BLOCKED, Cause.CALL_REJECTED),
    RouterRefusal.ERROR: Ending(Outcome.ERROR, Cause.TEMPORARY_FAILURE),
    DialClass.ANSWERED: Ending(Outcome.ANSWERED, None),
    DialClass.BUSY: Ending(Outcome.BUSY, None),
    DialClass.NO_ANSWER: Ending(Outcome.NOANSWER, None),
    DialClass.CALLER_GONE: Ending(Outcome.NOANSWER, None),
    DialClass.FAILED: Ending(Outcome.BUSY, None),
}
"""Every way a call ends -> its outcome and hang-up cause; docs/architecture.md shows it."""
