"""At start: the calls this router left in progress when it stopped (a crash, SIGKILL, a lost
host), adopted instead of closed blindly.

Asterisk keeps a bridged call up after its router dies (asterisk-transcripts README, fact
10). So the router lists its calls still `in_progress` in the store (each CDR names its
router; a SQLite file's calls name none and are this router's) and those of the routers
named in router.yaml `adopt_calls_of` (routers that will not come back), and asks Asterisk
over AMI which of their inbound channels still exist (CoreShowChannels; each call id is the
Uniqueid of its inbound channel):

- a call still up is followed to its end by the reconciler (DialEnd, BridgeLeave, Hangup,
  Cdr) and completed with its true answer time and billable seconds, then priced;
- a call Asterisk no longer has is completed from its Cdr record if one arrives within
  `adopt_cdr_window` seconds (cdr.conf batch mode posts records late), else closed as
  interrupted, saying so in its note.

The calls are handed to the reconciler before Asterisk is asked, so no event of theirs that
follows the answer is missed. Without an AMI link (no `ami_host`), or when the link does not
log in within `adopt_login_wait` seconds, or Asterisk refuses CoreShowChannels, the calls are
closed as interrupted as before, and the log says why. Routing never waits for any of it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from router.ami.link import AmiError, AmiLink
from router.ami.reconcile import Reconciler
from router.storage.protocol import Store

log = logging.getLogger("hotline400.reconcile")


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
    ) -> None:
        self._store = store
        self._reconciler = reconciler
        self._link = link
        self._routers = tuple(routers)
        self._cdr_window = cdr_window
        self._login_wait = login_wait

    async def run(self, now: datetime) -> None:
        """Adopt or close every call left in progress, started by `now` (the router's start,
        before it took calls); never raises for the store or AMI."""
        if self._link is None:
            await self._close_all(now, "no AMI link (ami_host is not set in router.yaml)")
            return
        try:
            stranded = await self._store.stranded_calls(now, self._routers)
        except Exception as error:
            log.error("calls left in progress by a crash not read yet: %s", error)
            return
        if not stranded:
            return
        for cdr in stranded:
            self._reconciler.adopt(cdr.call_id)
        calls = [cdr.call_id for cdr in stranded]
        try:
            if not await self._link.logged_in(self._login_wait):
                raise AmiError(f"the AMI link did not log in within {self._login_wait:g}s")
            channels = await self._link.channels()
        except AmiError as error:
            log.warning(
                "%d call(s) left in progress by a crash closed as interrupted: %s",
                len(calls),
                error,
            )
            for call_id in calls:
                self._reconciler.give_up_after(call_id, 0, f"Asterisk not asked: {error}")
            return
        up = {channel.get("Uniqueid") for channel in channels}
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

    async def _close_all(self, now: datetime, why: str) -> None:
        try:
            closed = await self._store.close_interrupted(now, self._routers)
        except Exception as error:
            log.error("could not close calls interrupted by a crash yet: %s", error)
            return
        if closed:
            log.warning(
                "closed %d call(s) left in progress by a crash as interrupted without asking "
                "Asterisk: %s",
                closed,
                why,
            )
