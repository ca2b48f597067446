"""Hold queues: callers waiting, unanswered and hearing ringing, for a destination of their
route to have room under its `max_calls`.

One queue per route: the 400 number, the rule and the destinations it dials (a menu's
options are routes of their own behind one rule), so nobody waits behind callers held for
other destinations. VIP callers (the plan's `queue.vip`) are served before the others, each
group in arrival order. A waiting call asks `turn` after each slice of its wait: it is
served when fewer callers are ahead of it than there are free places on its route. A
newcomer joins the queue whenever someone already waits, even if a place just came free, so
nobody overtakes the callers held before it (except a VIP, by design).

Places are counted from AMI's live calls (router/ami/live_calls.py), plus the calls this
router has sent to a limited destination whose Dial AMI has not shown yet (`granted` to a
held call, `claim`ed by any other): without them two calls could both be sent to the one
place left before the first one's DialBegin arrives, and the AMI link reads its events in
batches (router/ami/wire.py). A grant ends when the call's Dial has begun in AMI's eyes or
the session says its Dial is over.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dialplan.decision import DialTarget
from router.ami.live_calls import LiveCalls

RouteKey = tuple[str, str, tuple[str, ...]]
"""(400 number, rule name, the route's destinations): one queue."""


@dataclass(frozen=True, slots=True)
class Ticket:
    route: RouteKey
    call_id: str
    vip: bool
    seq: int


@dataclass
class HoldQueues:
    live_calls: LiveCalls
    _waiting: dict[RouteKey, list[Ticket]] = field(default_factory=dict)
    _granted: dict[str, str] = field(default_factory=dict)  # call id -> destination
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def in_use(self, number: str) -> int:
        """Calls up to `number`: AMI's count and the grants AMI has not seen dial yet."""
        unseen = sum(
            1
            for call_id, granted in self._granted.items()
            if granted == number and not self.live_calls.dialling(call_id)
        )
        return self.live_calls.count(number) + unseen

    def must_wait(
        self, route: RouteKey, targets: Sequence[DialTarget], limits: Mapping[str, int]
    ) -> bool:
        """Whether a new call of this route joins its queue: every destination is limited
        and at its limit, or callers already wait."""
        if self._waiting.get(route):
            return True
        return bool(targets) and self._free(targets, limits) == 0

    def join(self, route: RouteKey, call_id: str, vip: bool) -> Ticket:
        ticket = Ticket(route, call_id, vip, next(self._seq))
        waiting = self._waiting.setdefault(route, [])
        waiting.append(ticket)
        waiting.sort(key=lambda t: (not t.vip, t.seq))
        return ticket

    def leave(self, ticket: Ticket) -> None:
        """Out of the queue at once: served, given up, or out of time."""
        waiting = self._waiting.get(ticket.route, [])
        if ticket in waiting:
            waiting.remove(ticket)

    def turn(
        self,
        ticket: Ticket,
        targets: Sequence[DialTarget],
        limits: Mapping[str, int],
        preferred: DialTarget | None,
    ) -> DialTarget | None:
        """The destination to dial when it is this call's turn (it leaves the queue and its
        place is granted), else None."""
        waiting = self._waiting.get(ticket.route, [])
        if ticket not in waiting or waiting.index(ticket) >= self._free(targets, limits):
            return None
        candidates = [preferred, *targets] if preferred is not None else list(targets)
        for target in candidates:
            if self._room(target.number, limits):
                self.leave(ticket)
                self._granted[ticket.call_id] = target.number
                return target
        return None

    def claim(self, call_id: str, number: str) -> None:
        """The call's Dial to limited destination `number` is being sent: it holds a place
        from now on, not from when AMI shows it."""
        self._granted[call_id] = number

    def dialled(self, call_id: str) -> None:
        """The call's Dial is over (or never came): its grant ends."""
        self._granted.pop(call_id, None)

    def lengths(self) -> dict[tuple[str, str], int]:
        """Callers held now per 400 number and rule (those that ever held anyone)."""
        held: dict[tuple[str, str], int] = {}
        for (number, rule, _), waiting in self._waiting.items():
            held[number, rule] = held.get((number, rule), 0) + len(waiting)
        return held

    def _room(self, number: str, limits: Mapping[str, int]) -> int:
        limit = limits.get(number)
        if limit is None:
            return 1  # no limit: never full (a route with one never makes anyone wait)
        return max(0, limit - self.in_use(number))

    def _free(self, targets: Sequence[DialTarget], limits: Mapping[str, int]) -> int:
        return sum(self._room(target.number, limits) for target in targets)
