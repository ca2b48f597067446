"""The CDR id of each AGI session: the channel's uniqueid, or `UNIQUEID~N` for the Nth
session this router began with that uniqueid.

A dialplan may run AGI twice on one channel (after an IVR of its own returns, to route a
second number), and two Asterisks without a `systemname` can hand out the same uniqueid
at once. The store keys a CDR by its call id: keyed alike, the second session's start was
ignored, its legs dropped or written over the first's, its end and answer written over the
first's, and its ledger entry taken for the first's, without a word. Each session is a
call the router routes, records and prices, so a repeat gets a CDR of its own: `~` is no
character of a uniqueid the router takes (router.call.context), so `UNIQUEID~2` never meets
a real uniqueid, and the uniqueid stays its prefix to search by. The channel keeps its
uniqueid for everything about the channel (AMI, live calls), and the variables the router
leaves on it are the same.

The router remembers the uniqueids of the last RECENT_SESSIONS sessions it began or ended,
in memory: a repeat comes as the first session ends, or while it runs. A repeat on another
router sharing the store, or after a restart, is told apart by the store as the session's
start is written (router.storage.repeats): it keys the CDR by the next `UNIQUEID~N` free
there, warns, and sends the session's later writes, which carry the id given here, after it.
"""

from __future__ import annotations

RECENT_SESSIONS = 65_536
"""Uniqueids remembered, the latest begun or ended: at most twice as many, about 10 MB,
minutes of a busy router's calls after a session's end."""
REPEAT_MARK = "~"


class CallIds:
    """Two generations of plain dicts, the older dropped whole as the newer fills: a call
    pays a few dict reads and writes (where an LRU's per-entry bookkeeping cost several
    times more), and a uniqueid is remembered for between RECENT_SESSIONS and twice as
    many sessions begun or ended after it."""

    def __init__(self, remembered: int = RECENT_SESSIONS) -> None:
        self._remembered = remembered
        self._recent: dict[str, int] = {}
        """uniqueid -> sessions begun with it, of the sessions begun or ended lately."""
        self._older: dict[str, int] = {}

    def begin(self, uniqueid: str) -> tuple[str, int]:
        """The CDR id of a session beginning with `uniqueid`, and its rank (1: the first)."""
        rank = (self._recent.get(uniqueid) or self._older.get(uniqueid, 0)) + 1
        self._remember(uniqueid, rank)
        return (uniqueid if rank == 1 else f"{uniqueid}{REPEAT_MARK}{rank}"), rank

    def ended(self, uniqueid: str, rank: int) -> None:
        """The session of `rank` ended: its uniqueid is remembered from now, when a dialplan
        may run AGI again on the channel."""
        begun = self._recent.get(uniqueid) or self._older.get(uniqueid, 0)
        self._remember(uniqueid, rank if rank > begun else begun)

    def _remember(self, uniqueid: str, sessions: int) -> None:
        recent = self._recent
        recent[uniqueid] = sessions
        if len(recent) >= self._remembered:
            self._older, self._recent = recent, {}
