"""A call completed after its session, from what Asterisk reported on AMI: its last leg and
its price, as the session would have written them.

A router that died (or whose FastAGI socket broke) during a Dial never read the Dial's
result: the leg it wrote ahead still says DIALLING and nothing was charged. When the AMI
reconciler completes such a call with its true answer time and billable seconds, the leg
gets Dial's status, ringing and talk time, and an answered call is priced like any other:
the CDR's shares and a ledger entry, which moves the usage counters and the balance. The
ledger's (number, kind, ref) key books a call once, however often it is completed.
"""

from __future__ import annotations

import dataclasses
import logging

from router.ami.reconcile import Completion
from router.configuration.plan_book import PlanBook
from router.money.accounting import Accounting
from router.storage.cdr import CDR, DIALLING, AddLeg, Leg
from router.storage.writer import CdrWriter

log = logging.getLogger("hotline400.accounting")


class LateCharges:
    def __init__(self, plans: PlanBook, accounting: Accounting, cdrs: CdrWriter) -> None:
        self._plans = plans
        self._accounting = accounting
        self._cdrs = cdrs

    async def completed(self, cdr: CDR, completion: Completion) -> None:
        """The leg and the price that follow from a completion just written."""
        leg = cdr.legs[-1] if cdr.legs else None
        if leg is not None and leg.dial_status == DIALLING and completion.dial_status:
            self._cdrs.submit(AddLeg(cdr.call_id, _finished(leg, completion), stored_id=True))
        answered = completion.answered_at
        if answered is None or cdr.total is not None:
            return
        plan = self._plans.get(cdr.number)
        if leg is None or plan is None:
            log.warning("call %s answered but not priced: no leg or no plan to price", cdr.call_id)
            return
        account = await self._accounting.open_call(plan, self._plans.tariffs, answered)
        charged = self._accounting.charge(
            account,
            cdr.call_id,
            cdr.caller_kind,
            answered,
            completion.billable_seconds,
            leg.destination,
        )
        for op in charged or ():  # by the id read from the store, never a repeat's
            self._cdrs.submit(dataclasses.replace(op, stored_id=True))


def _finished(leg: Leg, completion: Completion) -> Leg:
    """The leg written ahead with what AMI said of its Dial. A Dial answered at a moment AMI
    does not tell rang and talked for unknown times: 0 each, as the CDR's billable seconds,
    its note saying why (not a ring counted up to the call's end)."""
    answered = completion.answered_at
    if completion.answer_untimed:
        ring = 0
    else:
        rang_until = answered or completion.ended_at
        ring = max(0, int((rang_until - leg.started_at).total_seconds()))
    talk = completion.billable_seconds if answered is not None else 0
    assert completion.dial_status is not None
    return Leg(
        seq=leg.seq,
        destination=leg.destination,
        dial_status=completion.dial_status,
        started_at=leg.started_at,
        ring_seconds=ring,
        talk_seconds=talk,
        forward_reason=leg.forward_reason,
    )
