"""At start: the calls this router left in progress when it stopped (a crash, SIGKILL, a lost
host), adopted instead of closed blindly.

Asterisk keeps a bridged call up after its router dies (asterisk-transcripts README, fact
10). So the router lists its calls still `in_progress` in the store (each CDR names its
router; a SQLite file's calls name none and are this router's) and those of the routers
named in router.yaml `adopt_calls_of` (routers that will not come back), and asks Asterisk
over AMI which of their inbound channels still exist (CoreShowChannels; each call id is the
Uniqueid of its inbound channel):

- a call still up is followed to its end by the reconciler (DialEnd, BridgeLeave, Hangup,
  Cdr) and completed with its true answer time and billable seconds, then priced; for a call
  the router had answered for a prompt, the destination's answer that its Dial's `U()` hook
  stamped on the channel is read first (Getvar), as its BridgeEnter went before the restart;
- a call Asterisk no longer has is completed from its Cdr record if one arrives within
  `adopt_cdr_window` seconds (cdr.conf batch mode posts records late), else closed as
  interrupted, saying so in its note.

The reconciler keeps every channel's events from the moment the adoption is set up until the
calls are listed and handed to it (`Reconciler.hold`), and the calls are handed to it before
Asterisk is asked: a call that ends while the store cannot yet list it (down or locked at
start, a long journal replayed first) is completed from the Hangup and Cdr record Asterisk
sent meanwhile, and no event of a call still up is missed. Without an AMI link (no
`ami_host`), or when the link does not log in within `adopt_login_wait` seconds, or Asterisk
refuses CoreShowChannels, the calls are closed as interrupted as before, and the log says why.
Routing never waits for any of it.

It runs in the background once the CDR writer has replayed its journal (a call's end
journaled by the earlier run lands first) and once this router holds the lease on its name
(router.lease: no other running router of the name has these calls). A store that cannot be
read or written (down or locked at start) is tried again with a doubling delay until it can:
a crash's calls are never left in progress for good, and the cut-off stays the router's
start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from router.ami.link import AmiError, AmiLink
from router.ami.reconcile import Reconciler
from router.call.answer_stamp import ANSWER_STAMP, stamp_epoch
from router.storage.cdr import CDR
from router.storage.protocol import Store

log = logging.getLogger("hotline400.reconcile")
NO_LINK = "no AMI link (ami_host is not set in router.yaml)"


async def _at_once() -> None:
    """The store holds everything already: nothing to wait for."""


class Adoption:
    def __init__(
        self,
        store: Store,
        reconciler: Reconciler,
        link: AmiLink | None,
        *,
        routers: Sequence[str] = (),
        cdr_window: float = 30.0,
        login_wait: float = 30.0,
        caught_up: Callable[[], Awaitable[None]] = _at_once,
        owned: Callable[[], Awaitable[None]] = _at_once,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
    ) -> None:
        self._store = store
        self._reconciler = reconciler
        self._link = link
        self._routers = tuple(routers)
        self._cdr_window = cdr_window
        self._login_wait = login_wait
        self._caught_up = caught_up
        self._owned = owned
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        reconciler.hold()  # before the link starts: no call's end is missed till they are listed

    async def run(self, now: datetime) -> None:
        """Adopt or close every call left in progress, started by `now` (the router's start,
        before it took calls), retrying until the store answers; never raises for the store
        or AMI."""
        delay = self._retry_initial
        while not await self._try(now, delay):
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max)

    async def _try(self, now: datetime, retry_in: float) -> bool:
        """One go; False when the store could not be read or written (tried again later)."""
        await self._caught_up()
        try:
            await self._owned()  # this router holds its name's lease: the calls are its own
            if self._link is None:
                await self._close_all(now, NO_LINK)
                self._reconciler.released()
                return True
            stranded = await self._store.stranded_calls(now, self._routers)
        except Exception as error:
            log.error(
                "calls left in progress by a crash not handled yet, retry in %gs: %s",
                retry_in,
                error,
            )
            return False
        await self._follow(self._link, stranded)
        return True

    async def _follow(self, link: AmiLink, stranded: Sequence[CDR]) -> None:
        """Hand the calls to the reconciler, then ask Asterisk which of them are still up."""
        for cdr in stranded:
            self._reconciler.adopt(cdr.call_id)
        self._reconciler.released()
        if not stranded:
            return
        calls = [cdr.call_id for cdr in stranded]
        try:
            if not await link.logged_in(self._login_wait):
                raise AmiError(f"the AMI link did not log in within {self._login_wait:g}s")
            channels = await link.channels()
        except AmiError as error:
            log.warning(
                "%d call(s) left in progress by a crash closed as interrupted: %s",
                len(calls),
                error,
            )
            for call_id in calls:
                self._reconciler.give_up_after(call_id, 0, f"Asterisk not asked: {error}")
            return
        up = {channel.get("Uniqueid"): channel.get("Channel") or "" for channel in channels}
        for call_id in calls:
            if up.get(call_id):
                await self._answer_stamp(link, call_id, up[call_id])
        gone = [call_id for call_id in calls if call_id not in up]
        reason = (
            f"Asterisk no longer had the call and sent no Cdr record within {self._cdr_window:g}s"
        )
        for call_id in gone:
            self._reconciler.give_up_after(call_id, self._cdr_window, reason)
        log.warning(
            "%d call(s) left in progress by a crash: %d still up in Asterisk, followed to "
            "their end; %d gone, completed from their Cdr record within %gs or closed as "
            "interrupted",
            len(calls),
            len(calls) - len(gone),
            len(gone),
            self._cdr_window,
        )

    async def _answer_stamp(self, link: AmiLink, call_id: str, channel: str) -> None:
        """Hand the reconciler the destination's answer that the Dial's `U()` hook stamped on
        a call the router had answered for a prompt (SHARED(HOTLINE_ANSWERED)): its DialEnd
        and BridgeEnter went before the restart, and its Dial record counts from the prompt.
        Nothing for a call not answered yet, one dialled without a prompt, or a dialplan
        without the hook."""
        try:
            value = await link.variable(channel, ANSWER_STAMP)
        except AmiError as error:
            log.info("call %s: answer stamp not read: %s", call_id, error)
            return
        epoch = stamp_epoch(value)
        if epoch is None:
            return  # not stamped
        self._reconciler.answer_stamped(call_id, epoch)

    async def _close_all(self, now: datetime, why: str) -> None:
        closed = await self._store.close_interrupted(now, self._routers)
        if closed:
            log.warning(
                "closed %d call(s) left in progress by a crash as interrupted without asking "
                "Asterisk: %s",
                closed,
                why,
            )
