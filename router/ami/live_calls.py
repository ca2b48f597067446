"""Live calls per destination number, counted from AMI events, so the router can treat a
destination at its concurrent-call limit as busy without ringing it.

A dial is live from its DialBegin until it is over: a DialEnd with any status but ANSWER
(BUSY, NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL, ...), or the Hangup of the dialled
channel, or the Hangup of the channel that dialled. An answered dial stays live until one
of those hangs up; BridgeEnter adds nothing (the dial is live since DialBegin). Each dial
is keyed by the dialled channel's Uniqueid, so a repeated or missed event can neither
count a dial twice nor drive a count below zero.

The destination number comes from DialBegin's DialString, the part of Dial's argument
after the technology: `13800000011@phones` for `Local/13800000011@phones` (recorded),
`13800000011@carrier` for `PJSIP/13800000011@carrier`. DestExten and DestCallerIDNum do
not carry it (the recordings show the 400 number there). A DialBegin without a dialling
Channel comes from an Originate, not from a call's Dial, and is not counted.

Only dials to numbers that matter are counted: with `counted` (the destinations some plan
limits, read at each DialBegin) the link skips, before parsing, the DialBegin of any other
number, and every DialEnd and Hangup that ends no dial being counted. A number that gets a
limit by a plan reload is counted from its next dial on, like calls up after a reconnect.

Missed events: while the AMI link is down, nothing is seen, so the state is cleared when a
session ends (`reset`, hooked to the link's disconnect) and rebuilt from the next session's
events. Calls already up then are not counted until they end: an under-count, which at
worst rings a destination at its limit (that answers busy itself). The other choice,
keeping the old state, over-counts forever once a Hangup is missed and turns a free
destination away; rebuilding from Asterisk's channel list (CoreShowChannels) would need
the `system,reporting` write classes. A dial older than `max_age` is dropped as stale,
for the same reason: as each new dial comes (the oldest first, each once, so a DialBegin
costs O(1) amortised), and when a count is asked for.

A peer sending DialBegins that never end (a broken manager, a hostile one) faster than
`max_age` drops them is held to `max_dials` dials followed at once: past it each new dial
drops the oldest, an under-count as above, and the log says so once a session.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import TYPE_CHECKING

from router.ami.wire import header

if TYPE_CHECKING:
    from router.ami.link import AmiLink, Event

log = logging.getLogger("hotline400.ami")

MAX_DIALS = 50_000
"""Dials followed at once: far above the calls one router holds (each dials one limited
destination at a time, or a few with `&`), and a few tens of MB at most."""


def destination_number(dial_string: str) -> str:
    """The number dialled: `13800000011` from `13800000011@phones`,
    `carrier/sip:13800000011@10.0.0.1` or `trunk/13800000011`."""
    target = dial_string.rsplit("/", 1)[-1].split("@", 1)[0]
    return target.rsplit(":", 1)[-1].split(";", 1)[0].strip()


@dataclass(frozen=True, slots=True)
class _Dial:
    number: str
    caller: str
    """Uniqueid of the channel that dialled."""
    began: float


class LiveCalls:
    EVENTS = ("DialBegin", "DialEnd", "Hangup")

    def __init__(
        self,
        *,
        max_age: float = 6 * 3600,
        max_dials: int = MAX_DIALS,
        clock: Callable[[], float] = time.monotonic,
        counted: Callable[[], Container[str]] | None = None,
    ) -> None:
        """`counted`: the numbers whose dials are counted (all when None)."""
        self._max_age = max_age
        self._max_dials = max_dials
        self._full_told = False
        self._clock = clock
        self._counted = counted
        self._dials: OrderedDict[str, _Dial] = OrderedDict()
        """By dialled Uniqueid, oldest first: an OrderedDict finds its oldest in O(1), where
        a dict walks past the slots of every dial ended since it last grew."""
        self._by_caller: dict[str, set[str]] = {}
        self._per_number: Counter[str] = Counter()

    def attach(self, link: AmiLink) -> None:
        """Follow the link's events; start afresh whenever its session ends."""
        link.on_event("DialBegin", self.handle, wants=self._counts_dial)
        link.on_event("DialEnd", self.handle, wants=self._ends_a_dial)
        link.on_event("Hangup", self.handle, wants=self._hangs_up_a_dial)
        link.on_disconnect(self.reset)

    # --- what the link parses (asked of an event's bytes) --------------------------------

    def _counts_dial(self, event: bytes) -> bool:
        if self._counted is None:
            return True
        dial_string = header(event, b"DialString")
        if dial_string is None:
            return False
        return destination_number(dial_string.decode("utf-8", "replace")) in self._counted()

    def _ends_a_dial(self, event: bytes) -> bool:
        if not self._dials:
            return False
        dialled = header(event, b"DestUniqueid")
        return dialled is not None and dialled.decode("utf-8", "replace") in self._dials

    def _hangs_up_a_dial(self, event: bytes) -> bool:
        if not self._dials:
            return False
        channel = header(event, b"Uniqueid")
        if channel is None:
            return False
        text = channel.decode("utf-8", "replace")
        return text in self._dials or text in self._by_caller

    def count(self, number: str) -> int:
        """Live calls to `number` now (ringing or answered)."""
        self._drop_stale(self._clock())
        return self._per_number[number]

    def dialling(self, caller: str) -> bool:
        """Whether the channel with Uniqueid `caller` (a call's agi_uniqueid) has a dial
        counted now."""
        return caller in self._by_caller

    def reset(self) -> None:
        self._dials.clear()
        self._by_caller.clear()
        self._per_number.clear()
        self._full_told = False

    def handle(self, event: Event) -> None:
        name = str(event.get("Event", "")).lower()
        if name == "dialbegin":
            self._begin(event)
        elif name == "dialend":
            if event.get("DialStatus") != "ANSWER":
                self._end(str(event.get("DestUniqueid", "")))
        elif name == "hangup":
            channel = str(event.get("Uniqueid", ""))
            self._end(channel)
            for dialled in self._by_caller.pop(channel, set()):
                self._end(dialled)

    def _begin(self, event: Event) -> None:
        caller, dialled = event.get("Uniqueid"), event.get("DestUniqueid")
        number = destination_number(str(event.get("DialString", "")))
        if not caller or not dialled or not number or dialled in self._dials:
            return
        now = self._clock()
        self._drop_stale(now)
        if len(self._dials) >= self._max_dials:
            self._end(next(iter(self._dials)))
            if not self._full_told:
                self._full_told = True
                log.warning(
                    "AMI told of %d dials to limited destinations without their end (max_dials):"
                    " each new one drops the oldest, whose destination may be counted short",
                    self._max_dials,
                )
        self._dials[dialled] = _Dial(number, caller, now)
        self._by_caller.setdefault(caller, set()).add(dialled)
        self._per_number[number] += 1

    def _end(self, dialled: str) -> None:
        dial = self._dials.pop(dialled, None)
        if dial is None:
            return
        self._per_number[dial.number] -= 1
        if not self._per_number[dial.number]:
            del self._per_number[dial.number]
        siblings = self._by_caller.get(dial.caller)
        if siblings is not None:
            siblings.discard(dialled)
            if not siblings:
                del self._by_caller[dial.caller]

    def _drop_stale(self, now: float) -> None:
        oldest = now - self._max_age
        dials = self._dials
        while dials:
            dialled, dial = next(iter(dials.items()))
            if dial.began > oldest:
                return
            self._end(dialled)
