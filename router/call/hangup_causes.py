"""Which Q.850 cause a refused call is hung up with, by HOTLINE_STATUS and reason.

The cause travels back to the carrier and decides what the caller hears and what the
carrier's own records say; the mapping is also documented in docs/architecture.md.
"""

from __future__ import annotations

UNALLOCATED_NUMBER = 1  # the 400 number is not in service (unknown, cancelled, frozen)
NORMAL_CLEARING = 16  # the call ran its course (after an announcement or a PIN failure)
USER_BUSY = 17  # a cap the subscriber set is reached: try again later
CALL_REJECTED = 21  # the caller is screened, blacklisted or withheld the caller ID
NO_CIRCUIT = 34  # every destination of the plan is down
TEMPORARY_FAILURE = 41  # the router failed; a retry may work
SERVICE_NOT_AVAILABLE = 63  # the number is suspended or in arrears

CAUSE_OF_REASON = {
    "unknown_number": UNALLOCATED_NUMBER,
    "cancelled": UNALLOCATED_NUMBER,
    "frozen": UNALLOCATED_NUMBER,
    "suspended": SERVICE_NOT_AVAILABLE,
    "arrears": SERVICE_NOT_AVAILABLE,
    "anonymous": CALL_REJECTED,
    "blacklisted": CALL_REJECTED,
    "blocked": CALL_REJECTED,
    "capped": USER_BUSY,
    "closed": NORMAL_CLEARING,
    "no_route": NO_CIRCUIT,
    "pin_failed": NORMAL_CLEARING,
    "error": TEMPORARY_FAILURE,
}
