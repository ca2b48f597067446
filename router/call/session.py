"""One inbound 400 call, carried out over AGI in the order the call happens.

read the environment -> find the plan -> write the CDR ahead -> decide -> (IVR menu) ->
reject, or (PIN) -> (recording notice) -> Dial -> forward on busy / no answer -> (survey) ->
leave HOTLINE_* on the channel -> complete the CDR. The inbound channel is never answered
before a destination answers unless a prompt must be played (a menu, a PIN), so an
unanswered call costs the caller nothing.

A caller hang-up can happen at any moment: Asterisk says so with a `HANGUP` line (noted by
AGISession), with 511 replies, or by closing the socket. Each step checks and the call ends
cleanly; the CDR is completed in every case.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dialplan.caps import Usage, reached_cap
from dialplan.decision import (
    Decision,
    DialClass,
    DialResult,
    DialTarget,
    RejectReason,
    forward_step,
)
from dialplan.evaluator import (
    CompiledRoute,
    RoutingState,
    decide,
    follow_menu,
    routing_table,
    skip_menus,
)
from dialplan.matchers import Call, CallerMatcher
from dialplan.menus import MenuWalk
from dialplan.plan import HoldQueue, Plan
from router.ami.live_calls import LiveCalls
from router.call.answer_stamp import (
    ANSWER_HOOK,
    ANSWER_STAMP,
    ASTERISK_CLOCK,
    HOOKABLE_CHANNEL,
    stamp_epoch,
)
from router.call.call_ids import CallIds
from router.call.channel_contract import (
    ENDINGS,
    ChannelVariable,
    EndingKey,
    Outcome,
    RouterRefusal,
)
from router.call.context import CallContext
from router.call.features import IVR, NO_IVR, feature_on
from router.call.holding import HoldQueues, RouteKey
from router.call.pin_checks import PinChecks
from router.call.pin_guard import WITHHELD, PinGuard
from router.call.recording import RECORDING, recording_path
from router.call.refusal_notices import RefusalNotices
from router.call.survey import SATISFACTION_SURVEY, ask_score
from router.configuration.plan_book import PlanBook
from router.fastagi.protocol import AGIProtocolError, AGISession
from router.fastagi.quoting import UnsafeArgument, dial_argument
from router.money.accounting import Accounting, CallAccount
from router.monitoring.logs import CallLines, call_context
from router.monitoring.metrics import Metrics
from router.notifications.call_events import CallEvents, CallReport
from router.notifications.sms import Reach
from router.numbers.service import NOT_IN_SERVICE, past_holders_plan
from router.numbers.statuses import NumberStatuses
from router.storage.call_wait import one_store_wait
from router.storage.cdr import (
    CDR,
    DIALLING,
    AddLeg,
    CallerRegion,
    FinishCall,
    ForwardReason,
    Leg,
    PostLedger,
    StartCall,
)
from router.storage.writer import CdrWriter

log = logging.getLogger("hotline400.call")


async def _untold(call_id: str) -> float | None:
    """No AMI link: no Dial's ring is told."""
    return None


@dataclass
class CallServices:
    """What every call session shares with the daemon."""

    plans: PlanBook
    cdrs: CdrWriter
    accounting: Accounting
    dial_template: str
    clock: Callable[[], datetime]
    routing: RoutingState | None = None
    metrics: Metrics = field(default_factory=lambda: Metrics(serves=lambda _: False))
    reconcile: Callable[[str], None] = lambda call_id: None
    """Hands a call whose AGI session broke to the AMI reconciler, which completes its CDR."""
    dial_ring: Callable[[str], Awaitable[float | None]] = _untold
    """Seconds the last answered Dial of a call rang, as AMI told it (None: not told)."""
    refusals: RefusalNotices = field(default_factory=RefusalNotices)
    in_progress: set[str] = field(default_factory=set)
    """Call ids of the sessions running now: the AMI events the reconciler reads."""
    events: CallEvents = field(default_factory=CallEvents)
    holding: HoldQueues = field(default_factory=lambda: HoldQueues(LiveCalls()))
    """Calls up per limited destination (from AMI: a destination at its limit counts as
    busy) and the hold queues of every route waiting for one to have room."""
    """The subscriber's CRM events (screen pop); queued, never waited for."""
    pin_guard: PinGuard | None = None
    """Failed PIN calls counted per caller and number; a guessing caller is refused."""
    recordings_dir: str = "/var/spool/asterisk/monitor/hotline400"
    """Where Asterisk writes the recordings (router.yaml's recordings_dir)."""
    statuses: NumberStatuses = field(default_factory=NumberStatuses)
    """The inventory's word on the planned numbers, refreshed by the daemon."""
    pin_checks: PinChecks = field(default_factory=PinChecks)
    """Entered PINs checked against their hash, on threads of their own, bounded."""
    log_calls: CallLines = "unanswered"
    """The calls given an INFO line as they end (router.yaml's log_calls)."""
    call_ids: CallIds = field(default_factory=CallIds)
    """The uniqueids of the sessions begun lately: a repeat gets a CDR id of its own."""


@dataclass
class CallRecord:
    """What the session has learnt so far; becomes the CDR's final fields."""

    started_at: datetime
    outcome: Outcome = Outcome.ERROR
    rule: str | None = None
    destination: str = ""
    answered_at: datetime | None = None
    billable_seconds: int = 0
    note: str | None = None
    legs: list[Leg] = field(default_factory=list)
    held_seconds: int = 0
    """Seconds the caller was held in the route's queue before a Dial or the end."""
    menu_path: str | None = None
    menu_digits: str | None = None
    language: str | None = None
    recording_path: str | None = None
    """Where MixMonitor records the call; on the CDR once a destination answered."""
    survey_score: int | None = None
    """The caller's score after the answered call, when surveyed and given."""


class CallSession:
    def __init__(self, agi: AGISession, context: CallContext, services: CallServices) -> None:
        self.agi = agi
        self.uniqueid = context.call_id
        """The channel's uniqueid, which AMI and the live calls know it by; the context's
        call id is the CDR's, the same but for a repeat session (router.call.call_ids)."""
        cdr_id, self.rank = services.call_ids.begin(context.call_id)
        if self.rank > 1:
            context = dataclasses.replace(context, call_id=cdr_id)
            log.warning(
                "call %s: AGI session %d on uniqueid %s (AGI run again on the channel, or "
                "two Asterisks giving the same uniqueid): a CDR of its own",
                cdr_id,
                self.rank,
                self.uniqueid,
            )
        self.context = context
        self.services = services
        self.record = CallRecord(started_at=services.clock())
        self.account: CallAccount | None = None
        self.report = CallReport()  # silent until the plan names a CRM
        self.caller_left = False  # the caller hung up while held
        self.held = False
        """The caller was held in the route's queue, hearing ringing, for a destination: an
        unanswered call is then a missed call, as one put through is."""
        self.lines_down = False
        """Every destination the call could take was marked down (refused as no_route): the
        caller wanted the subscriber, whose lines are out, so it is a missed call too."""
        self.cdr: CDR | None = None  # as written ahead
        self.up_since: datetime | None = None
        """When the router answered the channel, for a prompt (None: it did not)."""
        self.caller_back = False  # the last Dial had `g` and gave the caller back (result 0)
        self.put_through = False
        """A destination was tried (dialled, or busy at its call limit): the call counts
        against a monthly call cap."""
        self.talk_limit: int | None = None
        """The seconds of talk the last Dial's `L()` allowed, None without one: no more is
        ever counted, even when a ring no variable tells would be counted as talk."""
        self.language = context.language
        """The channel's prompt language as the router last set it (agi_language first)."""
        self.dialling = False
        """A Dial is running: its leg is written ahead and Asterisk carries it on alone."""
        self.left_in_progress = False
        """Cut by the router's stop during a Dial: the CDR stays in progress for the next
        start to adopt, as after a crash."""

    async def run(self) -> CallRecord:
        """Carry the call out; never raises for anything the call or Asterisk does."""
        with call_context(self.context.call_id), one_store_wait():
            self._write_ahead()
            if self.rank == 1:  # the reconciler completes a CDR keyed by the uniqueid
                self.services.in_progress.add(self.uniqueid)
            try:  # from here on the CDR is completed, whatever raises
                self.services.metrics.call_arrived(self.context.caller.kind, self.record.started_at)
                plan = self.services.plans.get(self.context.dialled)
                if plan is None:
                    await self._unknown_number()
                else:
                    await self._route(plan)
            except AGIProtocolError as error:
                self._connection_lost(error)
            except asyncio.CancelledError as cut:
                self._cut(str(cut) or "router stopped: the call was cut")
                raise
            except Exception:
                log.exception("call %s failed", self.context.call_id)
                self.record.note = "router error"
                await self._try_refuse(RouterRefusal.ERROR)
            finally:
                if self.rank == 1:
                    self.services.in_progress.discard(self.uniqueid)  # broken: expected
                self.services.holding.dialled(self.uniqueid)
                self.services.call_ids.ended(self.uniqueid, self.rank)
                if not self.left_in_progress:
                    await self._end()
        return self.record

    async def _end(self) -> None:
        """The CDR completed and priced, the CRM told, the call counted, logged and its cap
        unit given back if it was not put through.

        Each step is guarded on its own (a `try` costs nothing until it catches): a fault of
        the router's in one is logged once with its traceback and noted on the CDR, and the
        steps after it still run, so no CDR is left in progress and no cap unit kept that
        the call's end would have given back."""
        try:
            fields = self._complete()
        except Exception:
            fields = self._complete_after_fault()
        if self.report.reads_cdr:  # building the complete CDR costs: only for its reader
            try:
                assert self.cdr is not None, "written ahead first"
                legs = tuple(self.record.legs)
                cdr = dataclasses.replace(self.cdr, **fields, legs=legs)
                self.report.ended(cdr, self._reach())
            except Exception:
                self._fault_after_completion("telling its subscriber of its end")
        try:
            self.services.metrics.call_ended(self.context.dialled, self.record.outcome)
            self._log_call()
        except Exception:
            self._fault_after_completion("counting and logging it")
        if self.account is not None:
            try:
                await self.services.accounting.close_call(
                    self.account, self.record.answered_at is not None, self.put_through
                )
            except Exception:
                self._fault_after_completion("giving its cap unit back")

    def _reach(self) -> Reach:
        """How far the call got towards the subscriber's lines, for the missed-call text."""
        if self.put_through or self.held:
            return Reach.LINES
        return Reach.ALL_DOWN if self.lines_down else Reach.SHORT

    # --- the steps of a call, in order ---------------------------------------------------

    def _write_ahead(self) -> None:
        caller = self.context.caller
        self.cdr = CDR(
            call_id=self.context.call_id,
            number=self.context.dialled or "unknown",
            caller_raw=self.context.caller_raw,
            caller=caller.number or None,
            caller_kind=caller.kind,
            started_at=self.record.started_at,
            region=CallerRegion(caller.province_zh, caller.city_zh, caller.area_code),
        )
        self.services.cdrs.submit(StartCall(self.cdr))

    async def _unknown_number(self, why: str = "") -> None:
        """No plan, or (`why`) a number of the pool the inventory says is not in service, or
        one whose plan is a past holder's (router.numbers.service.past_holders_plan)."""
        dialled = self.context.dialled or "the dialled number"
        self.record.note = f"{dialled} is {why}" if why else f"no plan for {dialled}"
        refusal = RouterRefusal.UNKNOWN_NUMBER
        self.services.refusals.refused(self.context.dialled, refusal, why or "it has no plan")
        await self._refuse(refusal)

    async def _route(self, plan: Plan) -> None:
        now = self.services.clock()
        accounting = self.services.accounting
        inventory = self.services.statuses.of(plan.number, now)
        if inventory is not None and inventory.on_calls == NOT_IN_SERVICE:
            await self._unknown_number(f"{inventory.status} in the inventory, not in service")
            return
        if inventory is not None and (why := past_holders_plan(plan, inventory.subscriber)):
            await self._unknown_number(why)
            return
        on_calls = inventory.on_calls if inventory is not None else None
        self.account = await accounting.open_call(plan, self.services.plans.tariffs, now, on_calls)
        call = Call(plan.number, self.context.caller, self.context.call_id)
        usage = self.account.usage()
        with self.services.metrics.decision_timer():
            decision = decide(plan, call, now, usage, self._routing_state())
        self.record.rule = decision.rule
        if decision.action == "menu" and not await self._menu(plan, decision):
            self._report_arrival(plan, decision, now)  # gone in a menu: the CRM hears of it
            return
        if decision.pin is not None and await self._refused_for_guessing(decision, now):
            self._report_arrival(plan, decision, now)
            return
        if decision.action == "dial":
            self.account, granted = await accounting.reserve(self.account)
            if not granted:  # another call took the last unit of the monthly cap meanwhile
                usage = dataclasses.replace(usage, month_calls=plan.caps.monthly_calls or 0)
                with self.services.metrics.decision_timer():
                    decision = decide(plan, call, now, usage, self._routing_state())
        self.record.rule = decision.rule
        self._report_arrival(plan, decision, now)
        for day in decision.calendar_fallback:
            log.warning("call %s: calendar not announced for %s", self.context.call_id, day)
        if decision.action == "reject":
            await self._reject(decision, usage)
            return
        self.services.refusals.routed(plan.number)
        if decision.pin is not None and not await self._pin_accepted(decision):
            return
        recorded = decision.recording is not None and not self.agi.hung_up
        if recorded and not await self._notice_and_record(plan, decision):
            return
        if self.agi.caller_gone():  # told with or after a step before, MixMonitor's included
            await self._caller_gone("caller hung up before dialling")
            return
        await self._dial_chain(plan, decision)

    async def _caller_gone(self, note: str) -> None:
        """End a call whose caller hung up before any Dial answered (in a menu, at the PIN,
        during the notice, while held): noanswer, no busy call, and only the status
        variables, which work on a dead channel, are set."""
        self.record.outcome = ENDINGS[DialClass.CALLER_GONE].outcome
        self.record.note = note
        await self._leave_status()

    def _report_arrival(self, plan: Plan, decision: Decision, now: datetime) -> None:
        assert self.cdr is not None, "written ahead first"
        self.report = self.services.events.for_call(
            plan,
            self.services.plans.tariffs,
            now,
            self.context.call_id,
            self.cdr.caller or self.cdr.caller_raw,
            self.cdr.region,
        )
        self.report.arrived(decision.rule, now)

    def _routing_state(self) -> RoutingState:
        shared = self.services.routing
        assert shared is not None, "the daemon sets the shared routing state"
        return RoutingState(self.services.plans.calendar, shared.split)

    async def _menu(self, plan: Plan, decision: Decision) -> bool:
        """Answer (the menu must be heard), play the menus and read one key a time until
        the caller's keys choose a route; the decision becomes that route. False when the
        caller hung up in a menu: the call ends unconnected, its path on the CDR."""
        assert decision.menu is not None
        if not feature_on(plan, self.services.plans.tariffs, IVR, self.record.started_at):
            skip_menus(plan, decision, self._routing_state(), NO_IVR)  # nothing answered
            return True
        walk = MenuWalk.start(routing_table(plan).menus, decision.menu)
        await self._answer()
        route = None
        while route is None:
            await self._use_language(walk.language or decision.language)
            menu = walk.menu
            if walk.after_invalid and menu.invalid_prompt and not self.agi.hung_up:
                await self.agi.stream_file(menu.invalid_prompt)
            key = None if self.agi.hung_up else await self.agi.get_key(menu.prompt, menu.timeout_ms)
            if key is None and not self.agi.hung_up:
                await self.agi.channel_up()  # a missing prompt, or the caller gone?
            if self.agi.hung_up:
                walk.hung_up()
                self._note_menu(walk, "hung_up")
                await self._caller_gone(f"caller hung up in menu {menu.name!r}")
                return False
            if key is None:
                log.warning(
                    "call %s: the prompt of menu %r cannot be played",
                    self.context.call_id,
                    menu.name,
                )
                route = walk.unplayable()
            else:
                route = walk.press(key)
        self._note_menu(walk, "default" if walk.path[-1].endswith(":default") else "chosen")
        follow_menu(plan, decision, walk, route, self._routing_state())
        await self._use_language(decision.language)
        return True

    def _note_menu(self, walk: MenuWalk[CompiledRoute], how: str) -> None:
        self.record.menu_path, self.record.menu_digits = walk.menu_path, walk.digits
        self.services.metrics.menu_exited(self.context.dialled, how)

    async def _answer(self) -> None:
        """Answer the inbound channel once, for a prompt the caller must hear."""
        if self.up_since is None:
            self.up_since = self.services.clock()
            await self.agi.answer()

    async def _use_language(self, language: str | None) -> None:
        """Switch the channel's prompts to `language` (fact 19) unless they are in it."""
        if language is None or language == self.language or self.agi.hung_up:
            return
        await self.agi.exec("Set", f"CHANNEL(language)={language}")
        self.language = self.record.language = language

    async def _reject(self, decision: Decision, usage: Usage) -> None:
        assert decision.reject is not None
        self.record.outcome = ENDINGS[decision.reject].outcome
        self.record.note = f"{decision.reject.value}: {decision.detail}"
        self.lines_down = decision.reject is RejectReason.NO_ROUTE
        self.services.refusals.refused(self.context.dialled, decision.reject, decision.detail)
        if decision.reject is RejectReason.CAPPED and self.account is not None:
            reached = reached_cap(self.account.plan.caps, usage)
            kind = reached or "monthly_calls"  # else another call took the last unit
            self.services.metrics.cap_reached(self.context.dialled, kind)
        if decision.announcement and not self.agi.hung_up:
            await self._use_language(decision.language)
            await self.agi.exec("Progress")  # early media: the caller hears it unanswered
            await self.agi.exec("Playback", f"{decision.announcement},noanswer")
        await self._refuse(decision.reject)

    async def _refused_for_guessing(self, decision: Decision, now: datetime) -> bool:
        """Refuse, before the prompt, a caller blocked for guessing this number's PIN."""
        guard = self.services.pin_guard
        if guard is None:
            return False
        until = await guard.refused_until(self.context.dialled, self._pin_caller(), now)
        if until is None:
            return False
        self.record.rule = decision.rule
        self.record.note = (
            "pin_guessing: too many failed PIN calls from this caller; refused until "
            f"{until.isoformat(timespec='seconds')}"
        )
        await self._refuse(RouterRefusal.PIN_GUESSING)
        return True

    def _pin_caller(self) -> str:
        """Who the PIN guard counts: the caller's number; every withheld one is one caller."""
        return self.context.caller.number or WITHHELD

    async def _pin_accepted(self, decision: Decision) -> bool:
        """Answer (a prompt must be heard), then up to `attempts` entries. A caller who
        hangs up ends the call as one gone in a menu does (noanswer); wrong PINs entered
        before still count for the PIN guard, the hang-up itself is no wrong PIN."""
        pin = decision.pin
        assert pin is not None
        await self._answer()
        await self._use_language(decision.language)
        prompt = pin.prompt
        wrong = unplayable = unchecked = 0
        for _ in range(pin.attempts):
            if self.agi.hung_up:
                break
            digits, _ = await self.agi.get_data(prompt, pin.digit_timeout * 1000, pin.max_digits)
            verified = await self.services.pin_checks.verify(digits, pin.hash) if digits else False
            if verified:
                return True
            unchecked += verified is None
            # -1: the caller gone, or the prompt missing (fact 20)
            if digits is None and not self.agi.hung_up and await self.agi.channel_up():
                unplayable += 1
                log.warning(
                    "call %s: the PIN prompt %r cannot be played", self.context.call_id, prompt
                )
            if self.agi.hung_up:
                break
            self.services.metrics.pin_failed(self.context.dialled)
            wrong += 1 if digits and verified is not None else 0
            prompt = pin.retry_prompt
        guard = self.services.pin_guard
        if wrong and guard is not None:
            now = self.services.clock()
            await guard.failed(self.context.dialled, self._pin_caller(), self.context.call_id, now)
        if self.agi.hung_up:
            await self._caller_gone("caller hung up at the PIN prompt")
            return False
        self.record.note = f"wrong PIN {pin.attempts} times"
        if unplayable == pin.attempts:
            self.record.note = "no PIN entered: the PIN prompt cannot be played"
        elif unchecked:
            self.record.note = (
                f"PIN not checked {unchecked} of {pin.attempts} times: the router's PIN checks "
                "were full (pin_guard.max_waiting_checks)"
            )
        await self.agi.stream_file(pin.failed_prompt)
        await self._refuse(RouterRefusal.PIN_FAILED)
        return False

    async def _notice_and_record(self, plan: Plan, decision: Decision) -> bool:
        """Tell the caller the call is recorded, as early media (fact 22: `EXEC Progress`,
        `EXEC Playback "<notice>,noanswer"`), then start MixMonitor on a path built here
        (fact 21), recording once a destination answers (`b`). Only while the account has
        the feature on; a notice that was not played records nothing: Playback answers 0
        for a file it cannot play, so PLAYBACKSTATUS is asked (a hang-up's HANGUP line
        comes before its reply). False when the caller hung up during the notice: the
        call ends unconnected."""
        recording = decision.recording
        assert recording is not None
        started = self.record.started_at
        if not feature_on(plan, self.services.plans.tariffs, RECORDING, started):
            return True
        path = recording_path(self.services.recordings_dir, plan, self.context.call_id, started)
        if path is None:
            log.error("call %s: its id cannot name a recording; not recorded", self.context.call_id)
            return True
        await self._use_language(decision.language)
        if self.up_since is None:
            await self.agi.exec("Progress")  # early media: the notice costs the caller nothing
        await self.agi.exec("Playback", f"{recording.notice},noanswer")
        played = await self.agi.get_variable("PLAYBACKSTATUS")
        if self.agi.hung_up:
            await self._caller_gone("caller hung up during the recording notice")
            return False
        if played != "SUCCESS":
            log.warning(
                "call %s: the recording notice %r was not played (PLAYBACKSTATUS %s); not recorded",
                self.context.call_id,
                recording.notice,
                played,
            )
            self.record.note = "recording notice not played: not recorded"
            return True
        started_recording = await self.agi.exec("MixMonitor", f"{path},b")
        if started_recording.result_int == 0:
            self.record.recording_path = str(path)
        elif not self.agi.hung_up:  # -1 on a live channel: nothing is recording
            log.warning(
                "call %s: MixMonitor did not start recording to %s (result %s); not recorded",
                self.context.call_id,
                path,
                started_recording.result,
            )
            self.record.note = "recording did not start: not recorded"
        return True

    async def _dial_chain(self, plan: Plan, decision: Decision) -> None:
        assert decision.forwarding is not None
        surveys = decision.survey is not None and feature_on(
            plan, self.services.plans.tariffs, SATISFACTION_SURVEY, self.record.started_at
        )
        results: list[DialResult] = []
        target: DialTarget | None = decision.first
        served: DialTarget | None = None  # its place is granted: dialled whatever the count
        if plan.queue is not None and self._must_wait(plan, decision):
            served = await self._hold(plan, plan.queue, decision)
            if served is None and await self._hold_ended(plan.queue, decision):
                return
            target = served or target  # out of time: the route's busy forwarding
            if self.agi.caller_gone():  # told after the last Wait's reply: dial nobody
                held = self.record.held_seconds
                await self._caller_gone(f"caller hung up after {held} s held in the queue")
                return
        while target is not None and not self.agi.hung_up:
            options = await self._talk_limit_option(target)
            if options is None:  # not even one billing increment is affordable
                break
            self.put_through = True
            if target is not served and self._at_call_limit(target.number):
                status = self._busy_without_ringing(target)
            else:
                status = await self._dial(target, options + ("g" if surveys else ""))
            results.append(DialResult(target.number, status))
            self.record.destination = target.number
            forward = forward_step(decision, results)
            for number in forward.skipped:
                log.info("call %s: forward %s skipped: down", self.context.call_id, number)
            target = forward.target
        if self.record.recording_path is not None and not self.agi.hung_up:
            await self.agi.exec("StopMixMonitor")  # the caller stays: nothing more is recorded
        if not results:  # the caller was up as the chain began: no increment affordable
            await self._cannot_afford()
            return
        final = decision.forwarding.classify(results[-1].status)
        self.record.outcome = ENDINGS[final].outcome
        if final is DialClass.CALLER_GONE or (self.agi.hung_up and final is not DialClass.ANSWERED):
            self.record.note = "caller hung up while ringing"
        if surveys and final is DialClass.ANSWERED and self.caller_back and not self.agi.hung_up:
            await self._survey(plan, decision)
        await self._leave_status()

    async def _survey(self, plan: Plan, decision: Decision) -> None:
        """The destination hung up and Dial's `g` gave the caller back (fact 23): ask for a
        score. A caller hanging up meanwhile leaves the call answered, without a score."""
        assert decision.survey is not None
        await self._use_language(decision.language)  # nothing may have set it yet
        answer = await ask_score(self.agi, decision.survey)
        self.record.survey_score = answer.score
        self.services.metrics.surveyed(plan.number, answer.result, answer.score)
        if answer.result == "hung_up":
            self.record.note = "caller hung up during the survey"
        elif answer.result == "unplayable":
            log.warning(
                "call %s: the survey prompt %r cannot be played",
                self.context.call_id,
                decision.survey.prompt,
            )

    def _at_call_limit(self, number: str) -> bool:
        assert self.account is not None
        limit = self.account.plan.call_limits.get(number)
        return limit is not None and self.services.holding.in_use(number) >= limit

    def _must_wait(self, plan: Plan, decision: Decision) -> bool:
        route = _route_key(plan, decision)
        return self.services.holding.must_wait(route, decision.route_targets, plan.call_limits)

    async def _hold(self, plan: Plan, queue: HoldQueue, decision: Decision) -> DialTarget | None:
        """Hold the caller unanswered with ringing (`EXEC Ringing`, then `EXEC Wait` slices,
        fact 24) until a destination of the route has room and it is the caller's turn;
        None when the caller hangs up (`Wait` answers -1, or the HANGUP comes right after a
        Wait's reply, even one that found a place: counted as given up, not served) or
        `max_wait` runs out."""
        holding = self.services.holding
        call = Call(plan.number, self.context.caller, self.context.call_id)
        vip = not queue.vip.is_empty() and CallerMatcher.of(queue.vip).matches(call)
        ticket = holding.join(_route_key(plan, decision), self.uniqueid, vip)
        self.held = True
        log.info(
            "call %s: held%s, every destination is at its limit",
            self.context.call_id,
            " (VIP)" if vip else "",
        )
        waited, result = 0, "timeout"
        try:
            await self.agi.exec("Ringing")
            while waited < queue.max_wait:
                step = min(HOLD_SLICE_S, queue.max_wait - waited)
                reply = await self.agi.exec("Wait", str(step))
                waited += step
                if reply.result_int == -1 or self.agi.hung_up:
                    self.caller_left = True
                    result = "gave_up"
                    return None
                served = holding.turn(
                    ticket, decision.route_targets, plan.call_limits, decision.first
                )
                if served is not None:
                    if self.agi.caller_gone():  # told after the Wait's reply: not served
                        self.caller_left = True
                        result = "gave_up"
                        return None
                    result = "served"
                    return served
            return None
        finally:
            holding.leave(ticket)
            self.record.held_seconds = waited
            self.services.metrics.held(plan.number, waited, result)

    async def _hold_ended(self, queue: HoldQueue, decision: Decision) -> bool:
        """After a hold that served nobody: the caller gone, or out of time with the
        queue's announcement, ends the call (True); else it takes the busy forwarding."""
        held = self.record.held_seconds
        if self.caller_left:
            await self._caller_gone(f"caller hung up after {held} s held in the queue")
            return True
        if queue.announcement is None:
            self.record.note = f"held {held} s in the queue, then busy forwarding"
            return False
        self.record.note = f"held {held} s in the queue, no destination came free"
        await self._use_language(decision.language)
        await self.agi.exec("Progress")
        await self.agi.exec("Playback", f"{queue.announcement},noanswer")
        await self._refuse(RouterRefusal.QUEUE_TIMEOUT)
        return True

    def _busy_without_ringing(self, target: DialTarget) -> str:
        """A destination at its concurrent-call limit: a BUSY leg, nothing dialled, so the
        call moves on to the next target or forward at once."""
        log.info("call %s: %s is at its call limit", self.context.call_id, target.number)
        self._add_leg(target, "BUSY", self.services.clock(), 0, 0)
        return "BUSY"

    async def _cannot_afford(self) -> None:
        """The balance or a cost cap leaves less than one billing increment: capped."""
        self.record.note = "capped: the balance or a cost cap affords no billing increment"
        self.services.metrics.cap_reached(self.context.dialled, "talk_budget")
        await self._refuse(RouterRefusal.NO_TALK_BUDGET)

    async def _dial(self, target: DialTarget, options: str) -> str:
        """One Dial attempt, recorded as a leg; returns DIALSTATUS."""
        channel = self.context.channel
        hooked = self.up_since is not None and bool(HOOKABLE_CHANNEL.fullmatch(channel))
        if hooked:
            options += f"U({ANSWER_HOOK}^{channel})"
        try:
            argument = dial_argument(
                self.services.dial_template, target.number, target.ring_timeout, options
            )
        except UnsafeArgument:
            log.error("call %s: destination %r cannot be dialled", self.context.call_id, target)
            return "CHANUNAVAIL"
        started = self.services.clock()
        self._write_leg_ahead(target, started)
        self.dialling = True
        if self.account is not None and target.number in self.account.plan.call_limits:
            self.services.holding.claim(self.uniqueid, target.number)
        returned = await self.agi.exec("Dial", argument)
        dial_ended = self.services.clock() if hooked else None  # the stamped ring's end
        self.caller_back = returned.result_int == 0  # with `g`: the caller is still up
        self.services.holding.dialled(self.uniqueid)  # AMI's count has it now
        status, up_ms, age_ms, stamped_talk_ms = await self._dial_outcome(hooked)
        if status == "ANSWER" and up_ms is not None:
            if dial_ended is not None and stamped_talk_ms is not None:
                # the talk on Asterisk's clock; the ring is the rest of the Dial on ours
                talk_ms = min(stamped_talk_ms, up_ms)
                ring_ms = max(0, _elapsed_ms(started, dial_ended) - talk_ms)
                ring, talk = round(ring_ms / 1000), talk_ms // 1000
            else:
                rang = None
                if self.up_since is not None:  # no answer stamp: AMI's ring, if it tells one
                    rang = await self.services.dial_ring(self.uniqueid)
                    if rang is None:
                        self._warn_ring_as_talk(hooked)
                ring, talk = self._ring_and_talk(started, up_ms, age_ms, rang)
            if self.talk_limit is not None:  # Asterisk cut the talk there, a ring told or not
                talk = min(talk, self.talk_limit)
        else:  # Asterisk tells no times of an unanswered Dial
            ring, talk = round((self.services.clock() - started).total_seconds()), 0
        self._add_leg(target, status, started, ring, talk)
        self.dialling = False
        if status == "ANSWER":
            self.record.answered_at = started + timedelta(seconds=ring)
            self.record.billable_seconds = talk
            self.report.answered(target.number, self.record.answered_at)
        return status

    def _warn_ring_as_talk(self, hooked: bool) -> None:
        """A prompted call's answered Dial with neither an answer stamp nor AMI's ring."""
        if hooked:
            why = f"no answer stamp (Dial's U({ANSWER_HOOK}) is missing from the dialplan)"
        else:
            why = (
                f"the caller's channel {self.context.channel!r} cannot be named in Dial's "
                f"U({ANSWER_HOOK})"
            )
        log.warning(
            "call %s: %s and AMI told no ring: the ring is counted as talk",
            self.context.call_id,
            why,
        )

    async def _dial_outcome(self, hooked: bool) -> tuple[str, int | None, int | None, int | None]:
        """DIALSTATUS, ANSWEREDTIME_MS and DIALEDTIME_MS in one `GET FULL VARIABLE` round
        trip; after a Dial carrying the `U()` hook (a channel the router answered for a
        prompt), in the same round trip the destination's answer as the hook stamped it and
        Asterisk's clock now, whose difference (the last value, None without a stamp) is the
        talk in ms."""
        names = (*_DIAL_VARIABLES, *_ANSWER_STAMPS) if hooked else _DIAL_VARIABLES
        values = await self.agi.get_variables(*names)
        if values is None:  # Asterisk answers it on a hung-up channel too (fact 14)
            log.warning(
                "call %s: the Dial's outcome did not come back as %d variables: taken as "
                "CHANUNAVAIL",
                self.context.call_id,
                len(names),
            )
            values = [""] * len(names)
        status, up_ms, age_ms, *stamps = values
        talk_ms = _stamped_talk_ms(*stamps) if hooked else None
        up, age = _milliseconds(up_ms), _milliseconds(age_ms)
        if (up is None and up_ms.strip()) or (age is None and age_ms.strip()):
            log.warning(
                "call %s: Dial times %r and %r are not times of a call: taken as untold",
                self.context.call_id,
                up_ms[:40],
                age_ms[:40],
            )
        return status or "CHANUNAVAIL", up, age, talk_ms

    def _ring_and_talk(
        self, started: datetime, up_ms: int, age_ms: int | None, rang: float | None
    ) -> tuple[int, int]:
        """An answered Dial's ring and talk in whole seconds (talk cut down, as Asterisk cuts
        ANSWEREDTIME). Asterisk tells the channel's up time and age as the Dial ends, not the
        Dial's own (agi-more/a_answered): a channel the Dial answered has been up for the
        talk, and its age less the talk is everything before the answer, this Dial's ring
        after what came before it (earlier Dials, a hold, a notice). A channel the router
        answered for a prompt has been up since then: the prompt is taken off, and as no
        Dial variable tells when the destination answered, the ring (`rang`) is AMI's (its
        DialBegin and DialEnd stamps) or, without it, counted as talk. (A Dial whose `U()`
        hook stamped the answer is split by that stamp in `_dial` instead.)"""
        if self.up_since is None:
            talk_ms = up_ms
            before_ms = _elapsed_ms(self.record.started_at, started)
            ring_ms = 0 if age_ms is None else age_ms - up_ms - before_ms
        else:
            dial_ms = up_ms - _elapsed_ms(self.up_since, started)
            ring_ms = 0 if rang is None else min(max(dial_ms, 0), round(rang * 1000))
            talk_ms = dial_ms - ring_ms
        return max(0, round(ring_ms / 1000)), max(0, talk_ms) // 1000

    async def _talk_limit_option(self, target: DialTarget) -> str | None:
        """Dial's options: L(ms) when the balance or a cost cap limits the talk time, ""
        when nothing limits it, None when not even one billing increment is affordable.
        The limit holds whenever in the Dial's ring the call is answered; a Dial that may
        be answered in a month whose counters the call has not read has them read first
        (the price takes that month's included minutes)."""
        if self.account is None:
            return ""
        accounting = self.services.accounting
        now = self.services.clock()
        if accounting.answer_month_unread(self.account, now, target.ring_timeout):
            self.account = await accounting.read_answer_month(
                self.account, now, target.ring_timeout
            )
            now = self.services.clock()
        seconds = accounting.talk_limit(
            self.account, self.context.caller.kind, target.number, now, target.ring_timeout
        )
        self.talk_limit = seconds
        if seconds is None:
            return ""
        return f"L({seconds * 1000})" if seconds > 0 else None

    def _write_leg_ahead(self, target: DialTarget, started: datetime) -> None:
        """The leg as its Dial starts (DIALLING): if the router dies during the Dial, the
        CDR still says which destination was connected and since when."""
        leg = Leg(
            seq=len(self.record.legs) + 1,
            destination=target.number,
            dial_status=DIALLING,
            started_at=started,
            ring_seconds=0,
            talk_seconds=0,
            forward_reason=ForwardReason(target.reason),
        )
        self.services.cdrs.submit(AddLeg(self.context.call_id, leg))

    def _add_leg(
        self, target: DialTarget, status: str, started: datetime, ring: int, talk: int
    ) -> None:
        leg = Leg(
            seq=len(self.record.legs) + 1,
            destination=target.number,
            dial_status=status,
            started_at=started,
            ring_seconds=ring,
            talk_seconds=talk,
            forward_reason=ForwardReason(target.reason),
        )
        self.record.legs.append(leg)
        self.services.cdrs.submit(AddLeg(self.context.call_id, leg))
        self.services.metrics.leg_dialled(leg.forward_reason)

    # --- the end of a call -----------------------------------------------------------------

    async def _leave_status(self) -> None:
        """HOTLINE_STATUS, HOTLINE_DEST and HOTLINE_RULE for the dialplan after AGI().

        One `EXEC MSet` as a rule (a value MSet cannot carry gets its own SET VARIABLE);
        both still work on a hung-up channel, so this runs in every case.
        """
        await self.agi.set_variables(
            {
                ChannelVariable.STATUS: self.record.outcome.value,
                ChannelVariable.DESTINATION: self.record.destination,
                ChannelVariable.RULE: self.record.rule or "",
            }
        )

    async def _refuse(self, why: EndingKey) -> None:
        """End the call unconnected: its outcome on the channel, then its hang-up cause.
        Counted as a rejection by its reason, but for the router's own failure (error)."""
        ending = ENDINGS[why]
        assert ending.cause is not None, f"{why!r} is not a refusal"
        if why is not RouterRefusal.ERROR:
            self.services.metrics.rejected(why)
        self.record.outcome = ending.outcome
        await self._leave_status()
        if not self.agi.hung_up:
            await self.agi.exec("Hangup", str(int(ending.cause)))

    async def _try_refuse(self, why: EndingKey) -> None:
        with contextlib.suppress(AGIProtocolError):
            await self._refuse(why)

    def _cut(self, why: str) -> None:
        """The router stopped with the call still running (its drain timeout ran out).
        Asterisk carries a running Dial on without the router (fact 10), so how the call
        ends is unknown here: its CDR stays in progress, the Dial's leg written ahead, for
        the router's next start to adopt as after a crash (its cap unit kept). Anywhere
        else the call ends with its session, and its CDR says why."""
        if self.dialling:
            self.left_in_progress = True
            log.warning(
                "call %s: %s during its Dial; left in progress for the next start to adopt",
                self.context.call_id,
                why,
            )
            return
        if self.record.answered_at is not None:  # the talk is known: the call is priced
            self.record.outcome = Outcome.ANSWERED
        note = self.record.note
        self.record.note = f"{note}; {why}" if note else why

    def _connection_lost(self, error: AGIProtocolError) -> None:
        if self.rank == 1:  # AMI tells of the channel: a repeat's end would land on the first
            self.services.reconcile(self.uniqueid)
        self.record.outcome = Outcome.ANSWERED if self.record.answered_at else Outcome.ERROR
        self.record.note = f"AGI session lost: {error}"
        log.warning("call %s: %s", self.context.call_id, self.record.note)

    def _log_call(self) -> None:
        """The line an operator tails, the caller masked by the formatter: for the calls
        `log_calls` names. Formatting and writing it is about a tenth of the CPU a plain
        answered call costs the router, and the CDR already holds every call."""
        record = self.record
        lines = self.services.log_calls
        if lines == "none" or (lines == "unanswered" and record.outcome is Outcome.ANSWERED):
            return
        log.info(
            "call %s to %s: %s",
            self.context.call_id,
            self.context.dialled or "-",
            record.outcome.value,
            extra={
                "number": self.context.dialled,
                "caller": self.context.caller_raw,
                "outcome": record.outcome.value,
                "rule": record.rule,
                "destination": record.destination or None,
            },
        )

    def _charge(self) -> tuple[FinishCall, PostLedger] | None:
        """Price an answered call: the CDR's shares and the ledger entry (None for a call
        not priced)."""
        record = self.record
        if self.account is None or record.answered_at is None:
            return None
        return self.services.accounting.charge(
            self.account,
            self.context.call_id,
            self.context.caller.kind,
            record.answered_at,
            record.billable_seconds,
            record.destination,
        )

    def _complete(self) -> dict[str, Any]:
        """Complete the CDR in the store, priced; returns the fields that completed it."""
        fields = self._record_fields()
        fields["ended_at"] = self._end_now()
        ledger = None
        try:
            charged = self._charge()
        except Exception:  # the CDR is completed all the same; `rate` can price it later
            log.exception("call %s could not be priced", self.context.call_id)
        else:
            if charged is not None:
                money, ledger = charged
                fields.update(money.fields)
        # The price in the call's one finish: finishes setting the same columns share one
        # UPDATE in a batch, where a finish of its own made two a priced call.
        self.services.cdrs.submit(FinishCall(self.context.call_id, fields))
        if ledger is not None:
            self.services.cdrs.submit(ledger)
        return fields

    def _record_fields(self) -> dict[str, Any]:
        """The CDR's fields the call's record holds, a feature's only when the call used it."""
        record = self.record
        fields: dict[str, Any] = {
            "answered_at": record.answered_at,
            "billable_seconds": record.billable_seconds,
            "outcome": record.outcome,
            "rule": record.rule,
            "note": record.note,
        }
        features = {
            "menu_path": record.menu_path,
            "menu_digits": record.menu_digits,
            "language": record.language,
            "recording_path": record.recording_path if record.answered_at else None,
            "survey_score": record.survey_score,
        }
        fields.update((name, value) for name, value in features.items() if value is not None)
        return fields

    def _end_now(self) -> datetime:
        """The call ends now, and never before its start or a leg's end."""
        record = self.record
        return max(
            [self.services.clock(), record.started_at] + [leg.ended_at for leg in record.legs]
        )

    def _complete_after_fault(self) -> dict[str, Any]:
        """Complete the CDR after `_complete` raised (the exception being handled), unpriced
        (`hotline400 rate` prices an answered call later): the outcome the channel was
        told, the fields known, the end as best known, and a note of the fault."""
        self._note_fault("completing its CDR")
        record = self.record
        fields: dict[str, Any] = {
            "ended_at": self._known_end(),
            "outcome": record.outcome,
            "note": record.note,
        }
        try:
            finish = FinishCall(self.context.call_id, {**self._record_fields(), **fields})
        except ValueError:  # one of them is what failed: the end, outcome and note alone
            finish = FinishCall(self.context.call_id, fields)
        self.services.cdrs.submit(finish)
        return dict(finish.fields)

    def _known_end(self) -> datetime:
        """The call's end once working it out raised: as `_complete` has it, else its last
        leg's end, else its start."""
        record = self.record
        with contextlib.suppress(Exception):
            return self._end_now()
        with contextlib.suppress(Exception):
            return max([record.started_at] + [leg.ended_at for leg in record.legs])
        return record.started_at

    def _fault_after_completion(self, step: str) -> None:
        """A step after the CDR's finish raised (the exception being handled): logged, and
        noted on the completed CDR, whose other fields stay."""
        self._note_fault(step)
        self.services.cdrs.submit(FinishCall(self.context.call_id, {"note": self.record.note}))

    def _note_fault(self, step: str) -> None:
        """Log the exception being handled, once, with the call's id, and add it to the note."""
        log.exception("call %s: router error while ending it (%s)", self.context.call_id, step)
        error = sys.exception()
        why = f"router error while {step}: {type(error).__name__}: {error}"
        note = self.record.note
        self.record.note = f"{note}; {why}" if note else why


_DIAL_VARIABLES = ("DIALSTATUS", "ANSWEREDTIME_MS", "DIALEDTIME_MS")
MAX_DIAL_MS = 31 * 24 * 3600 * 1000
"""A Dial time longer than any call lasts (a month): a larger one is not Asterisk's."""
_MAX_DIAL_DIGITS = len(str(MAX_DIAL_MS))
_ANSWER_STAMPS = (ANSWER_STAMP, ASTERISK_CLOCK)
"""The destination's answer as the Dial's `U()` hook stamped it, and Asterisk's clock as the
Dial's result is read (the bridge ended a round trip before: the talk is the difference).
Only a call the router answered for a prompt needs them: its ANSWEREDTIME counts from that
ANSWER, prompt and ring included (agi-more/a_answered), and no Dial variable tells when the
destination answered."""
HOLD_SLICE_S = 1
"""Seconds of one `EXEC Wait` while held: how soon a held caller takes a place come free."""


def _route_key(plan: Plan, decision: Decision) -> RouteKey:
    """The queue a held call joins: its route's destinations with the rule that chose them
    (a menu's options share the rule that led to the menu, not their destinations)."""
    numbers = tuple(target.number for target in decision.route_targets)
    return (plan.number, decision.rule or "default", numbers)


def _milliseconds(value: str | None) -> int | None:
    """ANSWEREDTIME_MS / DIALEDTIME_MS, or None when empty (the Dial was not answered) or
    not a time a call can last: such a value is no Asterisk's, and taken as told it made
    the call's end overflow the calendar."""
    text = "" if value is None else value.strip()
    if not text.isdecimal() or len(text) > _MAX_DIAL_DIGITS:
        return None
    ms = int(text)
    return ms if ms <= MAX_DIAL_MS else None


def _stamped_talk_ms(answered: str | None, now: str | None) -> int | None:
    """Asterisk's clock now less the answer stamp, in ms; None when the Dial left no stamp
    (not answered, or a dialplan without the hook)."""
    answered_s, now_s = stamp_epoch(answered), stamp_epoch(now)
    if answered_s is None or now_s is None:
        return None
    return max(0, round((now_s - answered_s) * 1000))


def _elapsed_ms(since: datetime, until: datetime) -> int:
    return round((until - since).total_seconds() * 1000)
