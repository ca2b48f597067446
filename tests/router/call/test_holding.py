"""The hold queues' rules, without a call: who waits, whose turn it is, and a place granted
counting until AMI sees its Dial (tests/router/call/test_hold_queue.py holds them end to
end)."""

from __future__ import annotations

from dialplan.decision import DialTarget
from router.ami.live_calls import LiveCalls
from router.call.holding import HoldQueues

DESK = DialTarget("13800000011", 20)
ROUTE = ("4000000040", "default", (DESK.number,))
LIMITS = {DESK.number: 1}


def dial_begin(live: LiveCalls, caller: str, dialled: str) -> None:
    live.handle(
        {
            "Event": "DialBegin",
            "Uniqueid": caller,
            "DestUniqueid": dialled,
            "DialString": f"{DESK.number}@phones",
        }
    )


def hang_up(live: LiveCalls, channel: str) -> None:
    live.handle({"Event": "Hangup", "Uniqueid": channel})


def test_a_call_waits_only_while_every_destination_is_full_or_others_wait() -> None:
    live = LiveCalls()
    queues = HoldQueues(live)
    assert not queues.must_wait(ROUTE, [DESK], LIMITS)
    dial_begin(live, "a", "a-dest")
    assert queues.must_wait(ROUTE, [DESK], LIMITS)
    assert not queues.must_wait(ROUTE, [DESK, DialTarget("13800000012", 20)], LIMITS)
    held = queues.join(ROUTE, "b", vip=False)
    hang_up(live, "a")  # a place is free, but b waits: a newcomer queues behind b
    assert queues.must_wait(ROUTE, [DESK], LIMITS)
    assert queues.turn(held, [DESK], LIMITS, DESK) == DESK


def test_vips_go_first_then_arrival_order() -> None:
    live = LiveCalls()
    queues = HoldQueues(live)
    dial_begin(live, "busy", "busy-dest")
    first = queues.join(ROUTE, "first", vip=False)
    second = queues.join(ROUTE, "second", vip=False)
    vip = queues.join(ROUTE, "vip", vip=True)
    hang_up(live, "busy")
    assert queues.turn(first, [DESK], LIMITS, DESK) is None
    assert queues.turn(second, [DESK], LIMITS, DESK) is None
    assert queues.turn(vip, [DESK], LIMITS, DESK) == DESK
    assert queues.lengths() == {ROUTE[:2]: 2}


def test_a_granted_place_counts_until_ami_sees_the_dial_or_it_ends() -> None:
    live = LiveCalls()
    queues = HoldQueues(live)
    dial_begin(live, "busy", "busy-dest")
    waiting = [queues.join(ROUTE, call, vip=False) for call in ("one", "two")]
    hang_up(live, "busy")
    assert queues.turn(waiting[0], [DESK], LIMITS, DESK) == DESK
    assert queues.in_use(DESK.number) == 1  # granted, not yet dialled
    assert queues.turn(waiting[1], [DESK], LIMITS, DESK) is None
    dial_begin(live, "one", "one-dest")
    assert queues.in_use(DESK.number) == 1  # AMI counts it now, the grant no longer adds
    queues.dialled("one")
    hang_up(live, "one")
    assert queues.turn(waiting[1], [DESK], LIMITS, DESK) == DESK
