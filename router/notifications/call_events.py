"""What a call tells its subscriber: CRM events (arrival, answer, end) and, when the call
reached the subscriber's lines (or found every one of them down) and nobody answered, a
missed-call text message.

`CallEvents.for_call` is asked once per call, after its plan is known, and answers a
`CallReport` the session tells what happens; a call whose subscriber has neither a CRM
(with `screen_pop` switched on in its account) nor notifications gets the silent report.
Every body is built here, once, and handed to the delivery queue: nothing here waits.

- `call.arrived`: call id, 400 number, caller number and region, the rule that matched;
- `call.answered`: the destination that answered (the router learns it when Dial returns);
- `call.ended`: the CDR as `hotline400 cdr --format json` prints it.

Each says when (`at`: the call's end for `call.ended`), so a receiver can order the events
of a call that a retry delivered out of order (README "CRM events").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar

from dialplan.plan import CrmEvents, Plan
from rating.tariff import Tariffs
from router.notifications.sms import Reach, SmsNotices
from router.notifications.webhooks import CallEvent
from router.storage.cdr import CDR, CallerRegion, cdr_to_json

SCREEN_POP = "screen_pop"
"""The feature of tariffs.yaml an account switches on to have its calls' events sent."""


def screen_pop_on(plan: Plan, tariffs: Tariffs | None, today: date) -> bool:
    """A rated number sends events only from the day its account switched screen_pop on;
    a number without an account in tariffs.yaml is not rated and follows its plan."""
    return tariffs is None or tariffs.feature_on(plan.number, SCREEN_POP, today)


class CallReport:
    """What one call tells its CRM. This base sends nothing: calls without a CRM."""

    reads_cdr: ClassVar[bool] = False
    """Whether `ended` reads the complete CDR: the session builds it only then."""

    def arrived(self, rule: str | None, at: datetime) -> None:
        """The call's route is known: the rule that matched (None if refused before)."""

    def answered(self, destination: str, at: datetime) -> None:
        """A destination answered."""

    def ended(self, cdr: CDR, reach: Reach) -> None:
        """The call is over; `cdr` is its complete record. `reach`: how far it got towards
        the subscriber's lines (what makes an unanswered call a missed call)."""


@dataclass
class _SubscriberReport(CallReport):
    """A call of a subscriber with a CRM, or SMS notifications, or both."""

    plan: Plan
    crm: CrmEvents | None
    call_id: str
    caller: str
    region: CallerRegion
    submit: Callable[[CallEvent], None]
    sms: SmsNotices | None
    reads_cdr: ClassVar[bool] = True

    def arrived(self, rule: str | None, at: datetime) -> None:
        self._send(
            "arrival",
            {
                "number": self.plan.number,
                "caller": self.caller,
                "caller_region": {
                    "province": self.region.province,
                    "city": self.region.city,
                    "area_code": self.region.area_code,
                },
                "rule": rule,
                "at": at.isoformat(),
            },
        )

    def answered(self, destination: str, at: datetime) -> None:
        self._send(
            "answer",
            {"number": self.plan.number, "destination": destination, "at": at.isoformat()},
        )

    def ended(self, cdr: CDR, reach: Reach) -> None:
        at = cdr.ended_at or cdr.started_at  # a completed CDR has its end
        fields = {"number": self.plan.number, "at": at.isoformat(), "cdr": cdr_to_json(cdr)}
        self._send("end", fields)
        if self.sms is not None:
            self.sms.missed_call(self.plan, cdr, reach)

    def _send(self, what: str, fields: dict[str, Any]) -> None:
        crm = self.crm
        if crm is None or what not in crm.events:
            return
        kind = _KINDS[what]
        event_id = f"{self.call_id}/{what}"
        body = {"event": kind, "id": event_id, "call_id": self.call_id, **fields}
        self.submit(
            CallEvent(
                id=event_id,
                kind=kind,
                number=self.plan.number,
                url=crm.url,
                secret_env=crm.secret_env,
                body=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
            )
        )


_KINDS = {"arrival": "call.arrived", "answer": "call.answered", "end": "call.ended"}
_SILENT = CallReport()


class CallEvents:
    """The router's source of CallReports: `submit` is the delivery queue's, `sms` sends
    the subscribers' text messages."""

    def __init__(
        self,
        submit: Callable[[CallEvent], None] | None = None,
        sms: SmsNotices | None = None,
    ) -> None:
        self._submit = submit
        self._sms = sms

    def for_call(
        self,
        plan: Plan,
        tariffs: Tariffs | None,
        now: datetime,
        call_id: str,
        caller: str,
        region: CallerRegion,
    ) -> CallReport:
        crm = plan.crm
        if crm is not None and not screen_pop_on(plan, tariffs, now.date()):
            crm = None
        submit = self._submit
        sms = self._sms if plan.notifications is not None else None
        if submit is None or (crm is None and sms is None):
            return _SILENT
        return _SubscriberReport(plan, crm, call_id, caller, region, submit, sms)
