"""Completing a call whose AGI session ended abnormally, from what Asterisk says on AMI.

When the router restarts, or a FastAGI socket breaks, in the middle of a call, the call
goes on in Asterisk (a bridged call stays up until a party hangs up) but the router's CDR
stops short: `interrupted` with "router restarted", or closed when the session broke. AMI
still tells how the call ended. The CDR's call id is agi_uniqueid, the Uniqueid of the
inbound channel, so that channel's events are the call's (its Linkedid is not needed):

- end: the inbound channel's Hangup, at its Timestamp header (manager.conf
  `timestampevents = yes`); else the latest EndTime of its Cdr records; else the moment
  the router read, on its clock, the Hangup (unstamped, or stamped outside the call's
  life, see below: it still tells the call ended) or the last Cdr record (its EndTime
  outside the call's life: Asterisk writes the records once the channel is gone),
  whichever it read first, as the call had ended by then. An end that is the router's
  reading is never before the call's start or its legs' ends; when that reading is outside
  the call's life too (the router's clock over 10 minutes behind the one that started the
  call), nothing times the end: the call ends at the latest moment it is known alive, its
  start or its last leg's end, its talk unknown, rather than waiting for `max_age`. The
  note says where such an end comes from, and the log warns.
- talk time: Asterisk's CDR counts billable seconds from the moment the *inbound* channel
  was answered, not the destination (asterisk-transcripts README, fact 16). The router
  leaves the inbound channel unanswered while a destination rings, so Asterisk answers it
  as the destination answers, and the ANSWERED Dial record's AnswerTime and
  BillableSeconds are the talk, in whole seconds cut down like ANSWEREDTIME. When the
  router had answered first, to play a prompt (PIN), that record counts the prompt and the
  ringing too. DialBegin says which case it is (the dialling channel's ChannelState, 4
  Ring or 6 Up); without it (a call adopted after a restart, its DialBegin sent before), a
  Dial record answered before its Dial's leg started (the CDR's last leg, written ahead)
  says the second. In the second the talk runs from the inbound channel's BridgeEnter (or
  DialEnd ANSWER) to its BridgeLeave (or Hangup), at the events' Timestamps or, without
  them, the moments they were read; without those events either (sent before a restart),
  from the destination's answer that the Dial's `U()` hook stamped on the caller's channel
  (`answer_stamped`, read by the adoption) to the BridgeLeave Asterisk stamped, else the
  Hangup it stamped or the records' end (Asterisk's clock, as the hook's stamp);
  without the stamp, from the Dial's start to the record's end: the prompt is never talk,
  the ring may be in it, and the remark says so.
  Without a Dial record that times the answer (none came, or its AnswerTime is none or
  one Asterisk could not have written), the talk runs from the DialEnd ANSWER to the
  BridgeLeave, Hangup or the records' end.
  A talk timed by events is timed on one clock: one that ends at the router's reading (the
  event unstamped, or AMI's time of the end left out) starts at the moment the router read
  the answer, not at Asterisk's stamp of it, which may be up to 10 minutes off. Only an
  answer unstamped against an end Asterisk stamped stays on both clocks: nothing times
  that answer on Asterisk's clock.
- outcome: answered if a destination answered, else from the last DialEnd's DialStatus
  (or the last Dial record's Disposition), mapped as the call session maps them.
  Whether a destination answered is known only from Cdr records, or from a DialEnd for
  every DialBegin seen; otherwise (the AMI link was down meanwhile) only the end is set.
  A destination answered but nothing tells when within the call's life, or the answer
  comes after the end: the talk is unknown, and the call is not written `answered` with
  no answer time (which `hotline400 rate` cannot price and a bill passes over) but keeps
  the outcome its session wrote (an adopted call: interrupted), as a session does that
  does not know its talk; the note says so and the log warns.

Only the events of calls that may need completing are parsed. With `in_progress` (the call
ids of the router's sessions running now) the reconciler takes events from the link as
bytes and drops every event whose channel is neither in progress nor expected. A session
that breaks is still in progress when it says so, so its call has every event since it
started; the events that follow a call which ended normally (its Hangup, its Cdr records)
are never parsed. The events of a call in progress are kept as bytes (at most
`MAX_KEPT_EVENTS` a call), only their channel read, and noted when the call is expected:
most calls end normally and are never expected, and noting a call's events as they came
(their times, its Cdr records' dates) cost more than the rest of the link's work on them
(bench/ami_dispatch.py).

Until the router's start has listed the calls its previous run left in progress (`hold`,
then `released`), the events of every channel are kept as bytes, as those of a call in
progress: a call left in progress that ends before it is adopted (the store down or locked at
start, the journal being replayed) has its Hangup and Cdr records then, and only then. At
most `hold_limit` channels are kept so; past it a channel's events are dropped, as before.

A lost AMI link loses the events sent until it is back, an expected call's Hangup and Cdr
among them. So once the link has logged in again, Asterisk is asked which expected calls it
still has (CoreShowChannels): one it no longer has, its end not seen, is given up
`gone_window` seconds later (only a late Cdr record can come), instead of waiting for an end
that was sent while nobody listened: an adopted call is closed as interrupted, saying why.

Events of every channel parsed are kept for `retain` seconds after it ends, because a broken
session may be reported after Asterisk has hung up. A call is completed `settle` seconds
after its Hangup or Cdr event (Asterisk sends several Cdr records for one channel, before
or after its Hangup), and retried every `retry` seconds while its CDR cannot be read or
written. What is still waiting after `max_age` is given up.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Container
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from router.ami.link import AmiError
from router.ami.wire import AmiEvent, header
from router.storage.cdr import CDR, FinishCall, Outcome
from router.storage.protocol import INTERRUPTED_NOTE, Store
from router.storage.sqlite import SHANGHAI

if TYPE_CHECKING:
    from router.ami.link import AmiLink, Event
    from router.storage.writer import CdrWriter

log = logging.getLogger("hotline400.reconcile")

_CDR_TIME = "%Y-%m-%d %H:%M:%S"
Completed = Callable[[CDR, "Completion"], Awaitable[None]]
"""What follows a completion written: (the CDR as it was, the completion)."""
_UP = "6"
"""ChannelState of an answered channel."""
_OUTCOME_OF_STATUS = {"ANSWER": Outcome.ANSWERED, "NOANSWER": Outcome.NOANSWER}
_OUTCOME_OF_DISPOSITION = {"ANSWERED": Outcome.ANSWERED, "NO ANSWER": Outcome.NOANSWER}
"""Other statuses (BUSY, CONGESTION, CHANUNAVAIL, FAILED) end a call as busy, as in the
call session; CANCEL (the caller hung up while ringing) as no answer."""
_TALK_UNKNOWN = "a destination answered, talk time unknown: not priced"
"""The note of a call a destination answered when AMI tells no answer and end that agree."""
_END_READ = {
    "Hangup": "ended when the router read the Hangup: its stamp, outside the call's life, not "
    "trusted",
    "Cdr record": "ended when the router read the Cdr record: its EndTime, outside the call's "
    "life, not trusted",
    "nothing": "ended at the latest moment it is known alive: AMI's time of its end and the "
    "router's reading of it both outside the call's life, not trusted",
}
"""The note of a call whose end is the moment its misdated Hangup, or last Cdr record with
no Hangup, was read (the earlier of the two when both came); or, every time of its end
dated outside its life, the router's reading too ("nothing"), its start or its last leg's
end, whichever is later."""
MAX_KEPT_EVENTS = 500
"""Events kept of one call in progress: a call with forwards and holds sends some 30 that the
reconciler reads; a peer repeating them without end must not grow memory for the call's
whole life. Past it, the call's further events are dropped."""
_CLOCK_SLACK = timedelta(minutes=10)
"""How far Asterisk's clock may be from the router's: a Cdr record or an event's stamp dated
outside a call's life by more was not written for that call and is not billed from."""


@dataclass(frozen=True, slots=True)
class CdrRecord:
    """One Cdr event of the inbound channel."""

    application: str
    disposition: str
    dialled: bool
    """A channel was dialled (DestinationChannel set): False when Dial could not even
    create one (CHANUNAVAIL), which Asterisk records as NO ANSWER."""
    answered_at: datetime | None
    ended_at: datetime
    billable_seconds: int


@dataclass(slots=True)
class Evidence:
    """What AMI said about one channel so far."""

    first_seen: float
    answered_before_dial: bool | None = None
    open_dials: int = 0
    last_status: str | None = None
    dial_answered: datetime | None = None
    dial_answered_read: datetime | None = None
    """When the router read that DialEnd, on its clock; as `bridged_read`, `unbridged_read`
    and `hangup_read` of theirs. An unstamped event's moment is its read: a talk timed from
    one event's read is timed from the other's read too, on one clock."""
    answer_stamped: datetime | None = None
    """The destination's answer as the Dial's `U()` hook stamped it on the caller's channel
    (read at adoption: a call the router had answered for a prompt)."""
    bridged: datetime | None = None
    bridged_read: datetime | None = None
    unbridged: datetime | None = None
    unbridged_read: datetime | None = None
    hangup: datetime | None = None
    hangup_stamped: bool = False
    hangup_read: datetime | None = None
    """When the router read the Hangup, on its clock: the end when its stamp is left out."""
    cdr_read: datetime | None = None
    """When the router read the last Cdr record, on its clock: the end when no Hangup came, or
    one read later, and every record's EndTime is left out (or no time)."""
    ended_seen: float | None = None
    """time.monotonic() of its first Hangup or Cdr event."""
    cdrs: list[CdrRecord] = field(default_factory=list)
    unnoted: list[Heard] = field(default_factory=list)
    """Events of a call in progress, as read, noted once the call is expected."""
    overflowed: bool = False
    """More than MAX_KEPT_EVENTS came while in progress: the rest were dropped."""


@dataclass(frozen=True, slots=True)
class Heard:
    """One event as it was read: its name, when (time.monotonic()), and the clock then unless
    it is a DialBegin (which times nothing): an unstamped event happened when it was read; a
    Hangup or Cdr record whose times are left out ended the call by then; and a talk one of
    whose ends is timed by a read is timed from both reads, on the router's clock alone."""

    name: str
    event: Event
    seen: float
    read_at: datetime | None


@dataclass(frozen=True, slots=True)
class Completion:
    """The fields AMI gives for a call's CDR."""

    ended_at: datetime
    dials_known: bool = True
    """False: whether a destination answered is unknown; only `ended_at` is set."""
    answered_at: datetime | None = None
    billable_seconds: int = 0
    outcome: Outcome | None = None
    remark: str = ""
    dial_status: str | None = None
    """The last Dial's status as AMI tells it (ANSWER, BUSY, NOANSWER, ...), if it does."""
    end_read: str = ""
    """What the router read when `ended_at` is the moment it read it, AMI's own time left out:
    "Hangup" or "Cdr record"; "nothing" when that reading is left out too (a key of
    `_END_READ`); empty when AMI times the end."""

    @property
    def answer_untimed(self) -> bool:
        """A destination answered, but when, or for how long, is not known."""
        return self.dial_status == "ANSWER" and self.answered_at is None

    def finish_fields(self, note: str | None) -> dict[str, Any]:
        """A FinishCall's fields; `note` (the CDR's so far) is kept, the remark added once."""
        kept = note or ""
        fields: dict[str, Any] = {
            "ended_at": self.ended_at,
            "note": kept if self.remark in kept else "; ".join(filter(None, [kept, self.remark])),
        }
        if self.dials_known:
            fields["answered_at"] = self.answered_at
            fields["billable_seconds"] = self.billable_seconds
        if self.outcome is not None:
            fields["outcome"] = self.outcome
        return fields


def within(evidence: Evidence, earliest: datetime, latest: datetime) -> Evidence:
    """The evidence without what is dated outside `earliest`..`latest` (a call's life, widened
    by `_CLOCK_SLACK`): a Cdr record ending outside it; a record's answer outside it or after
    its end (the record, which still tells the end, kept without it); a Hangup, DialEnd
    answer, bridge or answer stamp dated outside it (a Hangup or Cdr record left out still
    tells, by the moment it was read, that the call ended). The same evidence when nothing
    is."""

    def inside(moment: datetime | None) -> datetime | None:
        return moment if moment is None or earliest <= moment <= latest else None

    cdrs = [
        record
        if record.answered_at is None or earliest <= record.answered_at <= record.ended_at
        else dataclasses.replace(record, answered_at=None, billable_seconds=0)
        for record in evidence.cdrs
        if earliest <= record.ended_at <= latest
    ]
    moments = {
        name: inside(getattr(evidence, name))
        for name in (
            "hangup",
            "hangup_read",
            "cdr_read",
            "dial_answered",
            "dial_answered_read",
            "bridged",
            "bridged_read",
            "unbridged",
            "unbridged_read",
            "answer_stamped",
        )
    }
    if cdrs == evidence.cdrs and all(
        moment is getattr(evidence, name) for name, moment in moments.items()
    ):
        return evidence
    stamped = evidence.hangup_stamped and moments["hangup"] is not None
    return dataclasses.replace(evidence, cdrs=cdrs, hangup_stamped=stamped, **moments)


def complete(evidence: Evidence, dial_started: datetime | None = None) -> Completion | None:
    """The completion the evidence supports; None until something says the call ended.
    `dial_started`: when the call's last Dial started, as its CDR tells (None if unknown)."""
    end_read = ""
    if evidence.hangup is not None and evidence.hangup_stamped:
        ended = evidence.hangup
    elif evidence.cdrs:
        ended = max(record.ended_at for record in evidence.cdrs)
    else:
        # what the router read: a Hangup unstamped (its moment), or its stamp left out
        # (`within`); Cdr records, every EndTime left out. Each tells the call had ended by
        # then: the earlier read ends it
        unstamped = evidence.hangup is not None
        reads = [
            (read, source)
            for read, source in (
                (evidence.hangup_read, "" if unstamped else "Hangup"),
                (evidence.cdr_read, "Cdr record"),
            )
            if read is not None
        ]
        if not reads:
            return None
        ended, end_read = min(reads, key=lambda read: read[0])
    if not evidence.cdrs and (evidence.last_status is None or evidence.open_dials):
        return Completion(
            ended, dials_known=False, remark="end completed from AMI", end_read=end_read
        )
    answered_at, talk, source = _talk(evidence, dial_started, ended, bool(end_read))
    remark = f"completed from AMI ({source})"
    if answered_at is not None:
        outcome: Outcome | None = Outcome.ANSWERED
    elif evidence.last_status == "CANCEL":
        outcome, remark = Outcome.NOANSWER, f"{remark}; caller hung up while ringing"
    elif evidence.last_status is not None:
        outcome = _OUTCOME_OF_STATUS.get(evidence.last_status, Outcome.BUSY)
    else:
        dials = [record for record in evidence.cdrs if record.application == "Dial"]
        outcome = _dial_outcome(dials[-1]) if dials else None
    if outcome is Outcome.ANSWERED and answered_at is None:
        remark = f"{remark}; {_TALK_UNKNOWN}"
        return Completion(ended, True, None, 0, None, remark, "ANSWER", end_read)
    status = "ANSWER" if answered_at is not None else evidence.last_status
    if status is None and outcome is not None:
        status = _STATUS_OF_OUTCOME[outcome]
    return Completion(ended, True, answered_at, talk, outcome, remark, status, end_read)


_STATUS_OF_OUTCOME = {
    Outcome.ANSWERED: "ANSWER",
    Outcome.NOANSWER: "NOANSWER",
    Outcome.BUSY: "BUSY",
}


def _billable(claimed: str, answered: datetime | None, ended: datetime) -> int:
    """A Cdr record's BillableSeconds, never more than its own AnswerTime and EndTime allow
    (Asterisk counts them between the two, which it prints cut to the second: at most one
    more); a claim beyond that, or unreadable, gives way to those times."""
    if answered is None:
        return 0
    span = max(0, int((ended - answered).total_seconds()))
    if claimed.isascii() and claimed.isdigit() and int(claimed) <= span + 1:
        return int(claimed)
    return span


def _dial_outcome(record: CdrRecord) -> Outcome:
    if not record.dialled:
        return Outcome.BUSY
    return _OUTCOME_OF_DISPOSITION.get(record.disposition, Outcome.BUSY)


def _talk(
    evidence: Evidence, dial_started: datetime | None, ended: datetime, ended_read: bool
) -> tuple[datetime | None, int, str]:
    """When a destination answered, the talk seconds, and where they come from; `ended`: the
    call's end as the evidence tells it, `ended_read`: the moment the router read it (AMI's
    time left out)."""
    answered = [
        record
        for record in evidence.cdrs
        if record.application == "Dial"
        and record.disposition == "ANSWERED"
        and record.answered_at is not None
    ]
    from_cdr = (
        (
            min(record.answered_at for record in answered if record.answered_at),
            sum(record.billable_seconds for record in answered),
        )
        if answered
        else None
    )
    prompted = evidence.answered_before_dial
    if prompted is None and from_cdr is not None and dial_started is not None:
        # AnswerTime is cut to the second: a destination's answer is never before the
        # second its Dial started in
        prompted = from_cdr[0] < dial_started.replace(microsecond=0)
    if from_cdr is not None and not prompted:
        return *from_cdr, "CDR"
    if evidence.bridged is not None:
        start, start_read = evidence.bridged, evidence.bridged_read
    else:
        start, start_read = evidence.dial_answered, evidence.dial_answered_read
    if evidence.unbridged is not None:
        end, end_is_read = evidence.unbridged, evidence.unbridged == evidence.unbridged_read
    elif evidence.hangup is not None:
        end, end_is_read = evidence.hangup, not evidence.hangup_stamped
    else:
        end, end_is_read = ended, ended_read
    if end_is_read and start_read is not None:
        # the talk ends at the router's reading (unstamped, or AMI's time left out): it
        # starts at the answer's reading too, one clock, not Asterisk's stamp against the
        # router's clock. An answer unstamped against an end Asterisk stamped stays on two
        # clocks: nothing times that answer on Asterisk's, and the end's reading is not the
        # call's end on the CDR (Asterisk's stamp), which the answer could then fall after
        start = start_read
    if start is not None and end >= start:
        return start, int((end - start).total_seconds()), "events"
    stamped = evidence.answer_stamped
    if stamped is not None and answered:
        # the hook's stamp is Asterisk's clock, and so is `ended` here (a stamped Hangup, else
        # the records' end): a BridgeLeave timed by the router's reading is another clock
        leave = evidence.unbridged
        end = leave if leave is not None and leave != evidence.unbridged_read else ended
        if end >= stamped:
            talk = int((end - stamped).total_seconds())
            return stamped, talk, "the destination's answer as the Dial's hook stamped it"
    if from_cdr is not None and dial_started is not None and from_cdr[0] < dial_started:
        ended = max(record.ended_at for record in answered)
        talk = max(0, int((ended - dial_started).total_seconds()))
        return dial_started, talk, "CDR, counted from the Dial's start, its ring included"
    if from_cdr is not None:  # answered for a prompt, no bridge events: an upper bound
        return *from_cdr, "CDR, counted from the prompt"
    return None, 0, "CDR" if evidence.cdrs else "events"


class Reconciler:
    """Watches AMI and completes the CDRs of calls expected to be reconciled."""

    EVENTS = ("DialBegin", "DialEnd", "BridgeEnter", "BridgeLeave", "Hangup", "Cdr")

    def __init__(
        self,
        store: Store,
        *,
        writer: CdrWriter | None = None,
        zone: ZoneInfo = SHANGHAI,
        asterisk_zone: ZoneInfo | None = None,
        clock: Callable[[], datetime] | None = None,
        settle: float = 2.0,
        retry: float = 5.0,
        retain: float = 120.0,
        max_age: float = 6 * 3600,
        in_progress: Container[str] | None = None,
        on_completed: Completed | None = None,
        hold_limit: int = 5_000,
        gone_window: float = 30.0,
        stamp_wait: float = 1.0,
    ) -> None:
        """`writer`: completions go through it, behind the session's own CDR writes (and
        into its journal while the database is down); without it, straight to the store.
        `asterisk_zone`: the time zone of Asterisk's Cdr times (its host's), default `zone`.
        `in_progress`: the call ids of the sessions running now (None: every channel's
        events are parsed). `on_completed`: told each CDR (as it was) and its completion,
        once the completion is written: the last leg and the price follow from it.
        `hold_limit`: channels whose events are kept while held for adoption (`hold`).
        `gone_window`: seconds a late Cdr record may take, after the link is back, for an
        expected call Asterisk no longer has.
        `stamp_wait`: seconds `ring_of` waits for a Dial's DialEnd that AMI has not told yet.
        """
        self._in_progress = in_progress
        self._holding = self._hold_full = False
        self._hold_limit = hold_limit
        self._gone_window = gone_window
        self._link: AmiLink | None = None
        self._link_lost = False
        self._stamp_wait = stamp_wait
        self._stamps_seen = False
        """A stamped event of a call in progress has come: the account reads call events
        and Asterisk stamps them, so a DialEnd missing is late, not never coming."""
        self._dial_ended: dict[str, asyncio.Event] = {}
        """Calls whose session waits in `ring_of` for a DialEnd."""
        self._on_completed = on_completed
        self._adopted: set[str] = set()
        self._store = store
        self._writer = writer
        self._zone = zone
        self._asterisk_zone = asterisk_zone or zone
        self._clock = clock or (lambda: datetime.now(zone))
        self._settle, self._retry, self._retain, self._max_age = settle, retry, retain, max_age
        self.completed = 0
        self._evidence: dict[str, Evidence] = {}
        self._expected: dict[str, float] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._completing: set[str] = set()
        """Calls whose completion is under way."""
        self._pruned = time.monotonic()

    def attach(self, link: AmiLink) -> None:
        self._link = link
        link.on_disconnect(self._lost)
        link.on_login(self._back)
        for name in self.EVENTS:
            if self._in_progress is None:
                link.on_event(name, self.handle)
            else:
                channel = b"UniqueID" if name == "Cdr" else b"Uniqueid"
                link.on_raw_event(name, functools.partial(self._read, name.lower(), channel))

    def _lost(self) -> None:
        self._link_lost = True

    def _back(self) -> None:
        """The link logged in again: ask Asterisk about the expected calls whose end, sent
        meanwhile, may have been lost."""
        if not self._link_lost:
            return
        self._link_lost = False
        unended = [
            call_id
            for call_id in self._expected
            if (evidence := self._evidence.get(call_id)) is None or evidence.ended_seen is None
        ]
        if unended:
            task = asyncio.create_task(self._recheck(unended), name="reconcile-recheck")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _recheck(self, calls: list[str]) -> None:
        assert self._link is not None
        try:
            channels = await self._link.channels()
        except AmiError as error:
            log.warning(
                "%d call(s) awaiting their end on AMI not checked after the link was lost: %s",
                len(calls),
                error,
            )
            return
        up = {channel.get("Uniqueid") for channel in channels}
        gone = [call_id for call_id in calls if call_id not in up]
        reason = (
            "the AMI link was lost; Asterisk no longer had the call when it was back and sent "
            f"no Cdr record within {self._gone_window:g}s"
        )
        for call_id in gone:
            if call_id in self._expected:
                self.give_up_after(call_id, self._gone_window, reason)
        if gone:
            log.warning(
                "%d call(s) awaiting their end on AMI were gone from Asterisk when the link "
                "was back: completed from a late Cdr record within %gs or closed",
                len(gone),
                self._gone_window,
            )

    def _read(self, name: str, channel_header: bytes, block: bytes) -> None:
        """An event as the link read it: noted at once if its call is expected, kept as
        bytes if the call is in progress, dropped otherwise (see the module's docstring)."""
        raw = header(block, channel_header)
        if raw is None:
            return
        channel = raw.decode("utf-8", "replace")
        assert self._in_progress is not None
        if channel in self._expected or channel in self._in_progress or self._holds(channel):
            stamped = header(block, b"Timestamp") is not None
            self._take(channel, name, AmiEvent(block), stamped)
            self._prune()

    def dial_ring(self, call_id: str) -> float | None:
        """Seconds the destination of the call's last answered Dial rang, from the Timestamps
        of that Dial's DialBegin and DialEnd ANSWER (Asterisk's clock, both on the call's
        channel); None unless AMI told both, stamped, while the call was in progress. A
        session whose channel was up before its Dial has no other way to tell ring from
        talk: Dial's variables count from the channel's answer, not the destination's."""
        evidence = self._evidence.get(call_id)
        if evidence is None:
            return None
        answered: Event | None = None
        for heard in reversed(evidence.unnoted):
            if answered is None:
                if heard.name == "dialend" and heard.event.get("DialStatus") == "ANSWER":
                    answered = heard.event
            elif heard.name == "dialbegin" and (
                heard.event.get("DestUniqueid") == answered.get("DestUniqueid")
            ):
                try:
                    ring = float(answered["Timestamp"]) - float(heard.event["Timestamp"])
                except (KeyError, ValueError):
                    return None
                return ring if 0 <= ring < math.inf else None  # nan compares false
        return None

    def hold(self) -> None:
        """Keep every channel's events until `released`: the calls a previous run left in
        progress are not known yet, and their ends must not be lost meanwhile."""
        self._holding = True

    def released(self) -> None:
        """The calls left in progress are adopted: the events of other channels that are not
        in progress are dropped from now on."""
        self._holding = False

    def _holds(self, channel: str) -> bool:
        """Whether a channel's events are kept while held for adoption."""
        if not self._holding:
            return False
        if channel in self._evidence or len(self._evidence) < self._hold_limit:
            return True
        if not self._hold_full:
            self._hold_full = True
            log.warning(
                "AMI events of %d channels held for the calls left in progress, not yet "
                "adopted: the events of further channels are dropped",
                self._hold_limit,
            )
        return False

    async def ring_of(self, call_id: str) -> float | None:
        """`dial_ring`, waiting up to `stamp_wait` seconds for the Dial's DialEnd when AMI has
        not told it yet, the link is up and it has told stamped events before: a busy
        Asterisk writes its manager events behind its calls (its manager queue backs up), and
        the Dial's result can reach the session before them. Without the stamps the ring of
        a call answered for a prompt would be billed as talk."""
        rang = self.dial_ring(call_id)
        link = self._link
        if rang is not None or not self._stamps_seen or link is None or not link.connected:
            return rang
        arrived = self._dial_ended[call_id] = asyncio.Event()
        try:
            async with asyncio.timeout(self._stamp_wait):
                while (rang := self.dial_ring(call_id)) is None:
                    arrived.clear()
                    await arrived.wait()
        except TimeoutError:
            log.info("call %s: no stamped DialEnd on AMI within %gs", call_id, self._stamp_wait)
        finally:
            del self._dial_ended[call_id]
        return rang

    @property
    def pending(self) -> int:
        """Calls expected and not completed yet."""
        return len(self._expected)

    def expect(self, call_id: str) -> None:
        """Complete `call_id` from AMI: its AGI session ended abnormally."""
        self._expected.setdefault(call_id, time.monotonic())
        evidence = self._evidence.get(call_id)
        if evidence is None:
            return
        unnoted, evidence.unnoted = evidence.unnoted, []
        for heard in unnoted:
            self._note(evidence, heard)
        if evidence.ended_seen is not None:
            self._schedule(call_id, self._settle)

    def adopt(self, call_id: str) -> None:
        """Complete `call_id`, a call a router left in progress, from AMI: its events from
        now on, its Cdr records. An end without the answer (no Cdr records) closes it as
        interrupted, since its talk time cannot be known."""
        self._adopted.add(call_id)
        self.expect(call_id)

    def answer_stamped(self, call_id: str, epoch: float) -> None:
        """The destination's answer of `call_id`, a call adopted after a restart, as the
        Dial's `U()` hook stamped it on the caller's channel (epoch seconds): a call the
        router had answered for a prompt, whose Dial record counts from that prompt and
        whose DialEnd and BridgeEnter came before the restart, is billed from it."""
        try:
            moment = datetime.fromtimestamp(epoch, self._zone)
        except (ValueError, OverflowError, OSError):
            log.info("call %s: answer stamp %r is no time", call_id, epoch)
            return
        evidence = self._evidence.get(call_id)
        if evidence is None:
            evidence = self._evidence[call_id] = Evidence(time.monotonic())
        evidence.answer_stamped = moment

    def give_up_after(self, call_id: str, seconds: float, reason: str) -> None:
        """Close `call_id` as interrupted, saying `reason`, unless AMI completes it within
        `seconds` (Asterisk no longer has its channel: only a late Cdr record can come)."""
        loop = asyncio.get_running_loop()
        earlier = self._timers.pop(f"give-up:{call_id}", None)
        if earlier is not None:
            earlier.cancel()
        self._timers[f"give-up:{call_id}"] = loop.call_later(
            seconds, self._launch_give_up, call_id, reason
        )

    def _launch_give_up(self, call_id: str, reason: str) -> None:
        self._timers.pop(f"give-up:{call_id}", None)
        evidence = self._evidence.get(call_id)
        if call_id not in self._expected or (evidence is not None and evidence.ended_seen):
            return  # completed, or its end is being completed now
        task = asyncio.create_task(self._give_up(call_id, reason), name=f"give-up-{call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _give_up(self, call_id: str, reason: str) -> None:
        stored_id = self._stored_id(call_id)
        try:
            cdr = await self._store.get_cdr(stored_id)
        except Exception as error:
            log.warning("call %s: not closed yet (%s); retry in %gs", call_id, error, self._retry)
            self.give_up_after(call_id, self._retry, reason)
            return
        self._forget(call_id)
        if cdr is None or cdr.outcome is not Outcome.IN_PROGRESS:
            return
        ended = max([cdr.started_at, *(leg.ended_at for leg in cdr.legs)])
        note = f"{INTERRUPTED_NOTE}; {reason}"
        fields = {"outcome": Outcome.INTERRUPTED, "ended_at": ended, "note": note}
        self._submit(FinishCall(stored_id, fields, stored_id=True))
        log.warning("call %s closed as interrupted: %s", call_id, reason)

    def disown(self) -> int:
        """Stop completing the calls adopted at start: the router lost its name's lease,
        and the router holding it now has adopted them. How many were dropped."""
        adopted = list(self._adopted)
        for call_id in adopted:
            for key in (call_id, f"give-up:{call_id}"):
                timer = self._timers.pop(key, None)
                if timer is not None:
                    timer.cancel()
            self._forget(call_id)
        return len(adopted)

    def _stored_id(self, call_id: str) -> str:
        """The id the call's CDR is stored by: an adopted call's was read from the store; a
        session of this run may have been keyed apart as a repeat (router.storage.repeats).
        Its writes carry that id, marked `stored_id`, so they never follow a session of
        this run that repeats an adopted call's uniqueid."""
        return call_id if call_id in self._adopted else self._store.stored_id(call_id)

    def _forget(self, call_id: str) -> None:
        self._expected.pop(call_id, None)
        self._evidence.pop(call_id, None)
        self._adopted.discard(call_id)

    def _submit(self, op: FinishCall) -> None:
        assert self._writer is not None, "adopted calls are completed through the writer"
        self._writer.submit(op)

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- gathering -------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        name = str(event.get("Event", "")).lower()
        channel = str(event.get("UniqueID" if name == "cdr" else "Uniqueid", ""))
        if channel and name in _NOTERS:
            self._take(channel, name, event, "Timestamp" in event)
        self._prune()

    def _take(self, channel: str, name: str, event: Event, stamped: bool) -> None:
        """Note the event of an expected call (or of any call without `in_progress`); keep
        one of a call in progress, with the clock if unstamped, to note if it is expected."""
        now = time.monotonic()
        evidence = self._evidence.get(channel)
        if evidence is None:
            evidence = self._evidence[channel] = Evidence(now)
        if channel in self._expected or self._in_progress is None:
            self._note(evidence, Heard(name, event, now, None))
            if name in ("hangup", "cdr") and channel in self._expected:
                self._schedule(channel, self._settle)
        else:
            if len(evidence.unnoted) >= MAX_KEPT_EVENTS:
                if not evidence.overflowed:
                    evidence.overflowed = True
                    log.warning(
                        "call %s: more than %d AMI events; its further events dropped",
                        channel,
                        MAX_KEPT_EVENTS,
                    )
                return
            read_at = None if name == "dialbegin" else self._clock()
            evidence.unnoted.append(Heard(name, event, now, read_at))
            self._stamps_seen = self._stamps_seen or stamped
            if name == "dialend":
                waiting = self._dial_ended.get(channel)
                if waiting is not None:
                    waiting.set()

    def _note(self, evidence: Evidence, heard: Heard) -> None:
        _NOTERS[heard.name](self, evidence, heard.event, heard.read_at)
        if heard.name in ("hangup", "cdr"):
            evidence.ended_seen = evidence.ended_seen or heard.seen

    def _dial_begin(self, evidence: Evidence, event: Event, read_at: datetime | None) -> None:
        if evidence.answered_before_dial is None:
            evidence.answered_before_dial = event.get("ChannelState") == _UP
        evidence.open_dials += 1

    def _dial_end(self, evidence: Evidence, event: Event, read_at: datetime | None) -> None:
        evidence.open_dials = max(0, evidence.open_dials - 1)
        evidence.last_status = str(event.get("DialStatus", ""))
        if evidence.last_status == "ANSWER" and evidence.dial_answered is None:
            evidence.dial_answered_read = read = read_at or self._clock()
            evidence.dial_answered = self._moment(event, read)[0]

    def _bridge_enter(self, evidence: Evidence, event: Event, read_at: datetime | None) -> None:
        if evidence.bridged is None:
            evidence.bridged_read = read = read_at or self._clock()
            evidence.bridged = self._moment(event, read)[0]

    def _bridge_leave(self, evidence: Evidence, event: Event, read_at: datetime | None) -> None:
        evidence.unbridged_read = read = read_at or self._clock()
        evidence.unbridged = self._moment(event, read)[0]

    def _hangup(self, evidence: Evidence, event: Event, read_at: datetime | None) -> None:
        evidence.hangup_read = read_at or self._clock()
        evidence.hangup, evidence.hangup_stamped = self._moment(event, evidence.hangup_read)

    def _cdr(self, evidence: Evidence, event: Event, read_at: datetime | None) -> None:
        evidence.cdr_read = read_at or self._clock()
        ended = self._cdr_time(event.get("EndTime"))
        if ended is None:
            return
        answered = self._cdr_time(event.get("AnswerTime"))
        evidence.cdrs.append(
            CdrRecord(
                application=str(event.get("LastApplication", "")),
                disposition=str(event.get("Disposition", "")),
                dialled=bool(event.get("DestinationChannel")),
                answered_at=answered,
                ended_at=ended,
                billable_seconds=_billable(str(event.get("BillableSeconds", "")), answered, ended),
            )
        )

    def _moment(self, event: Event, read_at: datetime | None) -> tuple[datetime, bool]:
        """When the event happened, and whether Asterisk stamped it; unstamped, when it was
        read (`read_at`, or now for an event read just now)."""
        try:
            return datetime.fromtimestamp(float(event["Timestamp"]), self._zone), True
        except (KeyError, ValueError, OverflowError):
            return read_at or self._clock(), False

    def _cdr_time(self, value: object) -> datetime | None:
        """A Cdr time, written in Asterisk's local time without a zone."""
        try:
            naive = datetime.strptime(str(value or ""), _CDR_TIME)
            return naive.replace(tzinfo=self._asterisk_zone).astimezone(self._zone)
        except (ValueError, OverflowError):  # not a time, or one the zones cannot hold
            return None

    def _prune(self) -> None:
        """Now and then (every second, or `retain` if shorter): forget ended channels after
        `retain`, anything after `max_age`, and with `in_progress` at once the calls that
        ended without being expected (nothing will ask for them: this keeps the evidence
        to the calls in flight, however many a second end); while held for adoption, only
        what is older than `max_age`."""
        now = time.monotonic()
        if now - self._pruned < min(1.0, self._retain):
            return
        self._pruned = now
        in_progress = self._in_progress
        for channel, evidence in list(self._evidence.items()):
            if channel in self._expected:
                if now - evidence.first_seen > self._max_age:
                    del self._evidence[channel]
                continue
            ended_long_ago = evidence.ended_seen is not None and now - evidence.ended_seen > (
                self._retain
            )
            held = self._holding and now - evidence.first_seen <= self._max_age
            if held:  # a call left in progress, not adopted yet, may be any of them
                continue
            finished = in_progress is not None and channel not in in_progress
            if finished or ended_long_ago or now - evidence.first_seen > self._max_age:
                del self._evidence[channel]
        for call_id, since in list(self._expected.items()):
            if now - since > self._max_age:
                del self._expected[call_id]
                log.warning(
                    "call %s: no end seen on AMI within %.0fs; left as is", call_id, now - since
                )

    # --- completing ------------------------------------------------------------------------

    def _schedule(self, call_id: str, delay: float) -> None:
        timer = self._timers.pop(call_id, None)
        if timer is not None:
            timer.cancel()
        loop = asyncio.get_running_loop()
        self._timers[call_id] = loop.call_later(delay, self._launch, call_id)

    def _launch(self, call_id: str) -> None:
        self._timers.pop(call_id, None)
        task = asyncio.create_task(self._complete(call_id), name=f"reconcile-{call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _complete(self, call_id: str) -> None:
        """Complete the call from what AMI told of it; one completion at a time a call: an
        event arriving while one reads the store would otherwise start a second, and the
        call would be finished, and priced, twice. The one under way reads the evidence
        once the store has answered, so what came meanwhile is not lost."""
        if call_id in self._completing or self._completion(call_id) is None:
            return
        self._completing.add(call_id)
        try:
            await self._finish(call_id)
        finally:
            self._completing.discard(call_id)

    def _completion(self, call_id: str, cdr: CDR | None = None) -> Completion | None:
        """How the expected call ended, as its evidence (and `cdr`, its record in the store,
        when read) tells now; None when it does not yet."""
        evidence = self._evidence.get(call_id)
        if call_id not in self._expected or evidence is None:
            return None
        dial_started = None
        if cdr is not None:
            dial_started = cdr.legs[-1].started_at if cdr.legs else None
            earliest, latest = cdr.started_at - _CLOCK_SLACK, self._clock() + _CLOCK_SLACK
            sound = within(evidence, earliest, latest)
            if sound is not evidence:
                log.warning(
                    "call %s: AMI dated Cdr records or events of it outside %s..%s; those not used",
                    call_id,
                    earliest,
                    latest,
                )
                evidence = sound
        completion = complete(evidence, dial_started)
        if completion is None and cdr is not None and evidence.ended_seen is not None:
            # AMI told the call ended, but every time of its end, the router's reading too
            # (its clock over `_CLOCK_SLACK` behind the one that started the call), is left
            # out: it ends at the latest moment it is known alive, not after `max_age`
            completion = Completion(
                cdr.started_at,
                dials_known=False,
                remark="end completed from AMI",
                end_read="nothing",
            )
        if completion is not None and call_id in self._adopted and completion.outcome is None:
            remark = completion.remark
            if not completion.answer_untimed:  # its remark says so already
                remark = f"{remark}, talk time unknown"
            completion = dataclasses.replace(
                completion, outcome=Outcome.INTERRUPTED, remark=f"{INTERRUPTED_NOTE}; {remark}"
            )
        if completion is not None and completion.end_read and cdr is not None:
            # never before the call began or its legs ended, as a session's end
            ended = max([completion.ended_at, cdr.started_at, *(leg.ended_at for leg in cdr.legs)])
            remark = f"{completion.remark}; {_END_READ[completion.end_read]}"
            completion = dataclasses.replace(completion, ended_at=ended, remark=remark)
        return completion

    async def _finish(self, call_id: str) -> None:
        stored_id = self._stored_id(call_id)
        try:
            cdr = await self._store.get_cdr(stored_id)
            if cdr is None:
                raise LookupError("its CDR is not in the store yet")
            completion = self._completion(call_id, cdr)
            if completion is None:  # no longer expected (max_age, disowned, given up)
                return
            op = FinishCall(stored_id, completion.finish_fields(cdr.note), stored_id=True)
            if self._writer is not None:
                self._writer.submit(op)
            else:
                await self._store.apply([op])
        except Exception as error:
            log.warning(
                "call %s: not completed yet (%s); retry in %gs", call_id, error, self._retry
            )
            self._schedule(call_id, self._retry)
            return
        self._forget(call_id)
        self.completed += 1
        if completion.answer_untimed:
            log.warning(
                "call %s: AMI says a destination answered but not when within the call's "
                "life, or only after its end: talk time unknown, the call not priced",
                call_id,
            )
        if completion.end_read == "nothing":
            log.warning(
                "call %s: AMI dated its end outside its life, and the router's clock read it "
                "outside it too: ended at %s, the latest moment it is known alive",
                call_id,
                completion.ended_at,
            )
        elif completion.end_read:
            log.warning(
                "call %s: AMI dated its %s outside its life and told no end within it: "
                "ended at %s, when the router read it",
                call_id,
                "Hangup" if completion.end_read == "Hangup" else "Cdr records",
                completion.ended_at,
            )
        log.info("call %s %s: ended %s", call_id, completion.remark, completion.ended_at)
        if self._on_completed is not None:
            try:
                await self._on_completed(cdr, completion)
            except Exception:  # the CDR is complete; its price can be set later by `rate`
                log.exception("call %s completed from AMI could not be priced", call_id)


_NOTERS: dict[str, Callable[[Reconciler, Evidence, Event, datetime | None], None]] = {
    "dialbegin": Reconciler._dial_begin,
    "dialend": Reconciler._dial_end,
    "bridgeenter": Reconciler._bridge_enter,
    "bridgeleave": Reconciler._bridge_leave,
    "hangup": Reconciler._hangup,
    "cdr": Reconciler._cdr,
}
