"""What the AMI link's handlers cost a call, for calls in progress and calls already ended.

The events of one answered call as Asterisk sends them with the shipped manager.conf (the
recording answer.ami, filtered by the account's read classes and event filter and
timestamped: 16 events, 8.8 KB), each call with its own ids, are handed as bytes, the
events of `--per-read` calls at a time as the link's paced read takes them, to an
AmiConnection and the AmiLink behind it, with the handlers the daemon attaches (live call
counts, following the call's destination as a plan limiting it makes them, and the
reconciler, which is told the calls in progress), in this process, with no socket: the
framing and the handlers' Python are measured, not the reads.

- in progress: every event read while its call's session runs, as on a real Asterisk,
  where a call rings and talks for seconds while its events arrive;
- ended: every event read after the session ended, as in `agi_load --ami`, whose calls
  end within milliseconds, before the link's paced read takes their events.

The ratio in progress / ended is what to compare between trees; the CPU figures move with
the machine.

    python bench/ami_dispatch.py [--calls N] [--rounds N] [--per-read N]
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
from router.ami.wire import AmiConnection
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
LIMITED = "13800000011"
"""The recording's destination, which a plan limits in agi_load's config: its dials are
counted."""


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


def reads_of(calls: list[tuple[str, list[bytes]]], per_read: int) -> list[tuple[list[str], bytes]]:
    """The calls' events as the paced reads take them: (call ids, the bytes of one read)."""
    reads = []
    for first in range(0, len(calls), per_read):
        batch = calls[first : first + per_read]
        chunk = b"".join(block + b"\r\n\r\n" for _, events in batch for block in events)
        reads.append(([call_id for call_id, _ in batch], chunk))
    return reads


def dispatch_us(
    connection: AmiConnection,
    in_progress: set[str],
    reads: list[tuple[list[str], bytes]],
    calls: int,
    during: bool,
) -> float:
    """CPU µs per call to frame and dispatch every event of `reads`, read during their
    calls' sessions or after them."""
    started = time.process_time()
    for call_ids, chunk in reads:
        if during:
            in_progress.update(call_ids)
        connection.data_received(chunk)
        in_progress.difference_update(call_ids)
    return (time.process_time() - started) / calls * 1e6


async def main(args: argparse.Namespace) -> None:
    events = events_received()
    link = AmiLink("127.0.0.1", 5038, "hotline400", "unused")
    connection = AmiConnection(link._dispatch, asyncio.get_running_loop().create_future(), 0)
    connection.data_received(b"Asterisk Call Manager/9.0.0\r\n")
    in_progress: set[str] = set()
    counted = {LIMITED}
    LiveCalls(counted=lambda: counted).attach(link)  # the daemon counts limited numbers only
    reconciler = Reconciler(None, in_progress=in_progress)  # type: ignore[arg-type]
    reconciler.attach(link)
    print(
        f"{RECORDING} through manager.conf's account: {len(events)} events a call, "
        f"{sum(map(len, events)):,} bytes; {args.calls} calls x {args.rounds} rounds, "
        f"{args.per_read} calls a read"
    )
    figures: dict[str, list[float]] = {"in progress": [], "ended": []}
    first = 0
    for _ in range(args.rounds):
        for name, during in (("in progress", True), ("ended", False)):
            reads = reads_of(calls_of(events, args.calls, first), args.per_read)
            figures[name].append(dispatch_us(connection, in_progress, reads, args.calls, during))
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
    parser.add_argument(
        "--per-read", type=int, default=3, help="calls whose events one read takes (agi_load: 3)"
    )
    asyncio.run(main(parser.parse_args()))
