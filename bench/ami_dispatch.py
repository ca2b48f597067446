"""What the AMI link's handlers cost a call, for calls in progress and calls already ended.

The events of one answered call as Asterisk sends them with the shipped manager.conf (the
recording answer.ami, filtered by the account's read classes and event filter and
timestamped: 16 events, 8.8 KB), each call with its own ids, are dispatched by an AmiLink
to the handlers the daemon attaches (live call counts and the reconciler, which is told the
calls in progress), in this process, with no socket: only the handlers' Python is
measured.

- in progress: every event read while its call's session runs, as on a real Asterisk,
  where a call rings and talks for seconds while its events arrive;
- ended: every event read after the session ended, as in `agi_load --ami`, whose calls
  end within milliseconds, before the link's paced read takes their events.

The ratio in progress / ended is what to compare between trees; the CPU figures move with
the machine.

    python bench/ami_dispatch.py [--calls N] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from router.ami.link import AmiLink
from router.ami.live_calls import LiveCalls
from router.ami.reconcile import Reconciler
from router.simulation.asterisk_ami import (
    RECORDINGS,
    accounts_from_manager_conf,
    events_as_sent,
    recorded_events,
)

REPO = Path(__file__).resolve().parent.parent
RECORDING = "answer.ami"
RECORDED_IDS = b"1795371264."
"""The recording's ids share this prefix; its inbound (AGI) channel is `.1`."""


def events_received() -> list[bytes]:
    """The recording's events as the daemon's link receives them with the shipped
    manager.conf: the account's classes and event filter, its Login's `call,cdr`,
    timestamped (`timestampevents = yes`)."""
    conf = (REPO / "asterisk" / "manager.conf").read_text(encoding="utf-8")
    account = accounts_from_manager_conf(conf)["hotline400"]
    recorded = recorded_events(RECORDINGS / RECORDING)
    sent = events_as_sent(account, recorded, "call,cdr", timestamp_events=True)
    return [block.rstrip(b"\r\n") for block in sent]


def calls_of(events: Sequence[bytes], count: int, first: int) -> list[tuple[str, list[bytes]]]:
    """`count` calls of the recorded events, each with its own ids: (call id, events)."""
    played = []
    for number in range(first, first + count):
        ids = f"{1795500000 + number}.".encode()
        played.append((f"{ids.decode()}1", [e.replace(RECORDED_IDS, ids) for e in events]))
    return played


def dispatch_us(
    link: AmiLink, in_progress: set[str], calls: list[tuple[str, list[bytes]]], during: bool
) -> float:
    """CPU µs per call to dispatch every event of `calls`, read during their sessions or
    after them."""
    started = time.process_time()
    for call_id, events in calls:
        if during:
            in_progress.add(call_id)
        for block in events:
            link._dispatch(block)
        in_progress.discard(call_id)
    return (time.process_time() - started) / len(calls) * 1e6


async def main(args: argparse.Namespace) -> None:
    events = events_received()
    link = AmiLink("127.0.0.1", 5038, "hotline400", "unused")
    in_progress: set[str] = set()
    LiveCalls(counted=lambda: set()).attach(link)  # the daemon counts limited numbers only
    reconciler = Reconciler(None, in_progress=in_progress)  # type: ignore[arg-type]
    reconciler.attach(link)
    print(
        f"{RECORDING} through manager.conf's account: {len(events)} events a call, "
        f"{sum(map(len, events)):,} bytes; {args.calls} calls x {args.rounds} rounds"
    )
    figures: dict[str, list[float]] = {"in progress": [], "ended": []}
    first = 0
    for _ in range(args.rounds):
        for name, during in (("in progress", True), ("ended", False)):
            figures[name].append(
                dispatch_us(link, in_progress, calls_of(events, args.calls, first), during)
            )
            first += args.calls
    await reconciler.close()
    medians = {name: statistics.median(values) for name, values in figures.items()}
    for name, values in figures.items():
        rounds = ", ".join(f"{value:.0f}" for value in values)
        print(f"  {name:<12} {medians[name]:6.1f} µs a call  (rounds: {rounds})")
    print(f"in progress / ended: {medians['in progress'] / medians['ended']:.2f} x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls a round and a case")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, the cases alternating")
    asyncio.run(main(parser.parse_args()))
