"""Repeat sessions that the router's memory (router.call.call_ids) cannot see: a uniqueid
whose CDR the store already holds from another router sharing it, or from before a restart.

Each write-behind batch asks the store once, in its own transaction, which of its starts'
call ids are there already: one read of the cdrs key, no round trip on a call's path. A row
there that is the same call (same start to the microsecond, router, number and caller: a
replay of a start whose write did commit) is no repeat, so a replay stays idempotent. Any
other row makes the start a repeat: its CDR is keyed by the next `UNIQUEID~N` free in the
store (a second read, of that uniqueid's repeats, made only then) and a warning is logged
as for a repeat seen in memory. The session's later ops, in that batch and later ones,
carry the session's own id (legs, the finish and price, the ledger entry keyed by it) and
follow it there; ops marked `stored_id` carry an id read from the store (a call adopted or
completed from AMI) and are written as they are. The router remembers the last
RECENT_SESSIONS ids it keyed apart, and the writer journals a `Rekeyed` ahead of such a
session's ops, so a replay by a later run, which remembers none, follows too.

Left standing: two routers whose batches start one uniqueid at the same moment (each reads
before the other commits) take the same free id, and the later start is ignored as before.
AGI run again on a channel starts its second session after the first's start is stored;
two Asterisks handing out one uniqueid within the same quarter second is the rest.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

from rating.ledger import LedgerKind
from router.call.call_ids import RECENT_SESSIONS, REPEAT_MARK
from router.storage.cdr import CDR, AddLeg, CdrOp, FinishCall, PostLedger, Rekeyed, StartCall
from router.storage.rows import Row, epoch_us

log = logging.getLogger(__name__)

Query = tuple[str, list[Any]]
Identity = tuple[int, str, str, str]
"""What tells one call's start from another's: started_us, router, number, caller_raw."""
_COLUMNS = "call_id, started_us, router, number, caller_raw"
_AFTER_MARK = chr(ord(REPEAT_MARK) + 1)
"""The character after `~`: `U~` <= the ids of U's repeats < `U` + this, byte by byte."""


def _padded(ids: list[str]) -> list[str]:
    """`ids` padded to a power of two (the last repeated): a few statement texts, each
    prepared once, rather than one per batch size."""
    size = 8
    while size < len(ids):
        size *= 2
    return ids + [ids[-1]] * (size - len(ids))


def starts_held(ids: list[str]) -> Query:
    params = _padded(ids)
    marks = ", ".join("?" * len(params))
    return f"SELECT {_COLUMNS} FROM cdrs WHERE call_id IN ({marks})", params


def repeats_held(bases: list[str]) -> Query:
    ranges = " OR ".join(["(call_id >= ? AND call_id < ?)"] * len(bases))
    params = [bound for base in bases for bound in (base + REPEAT_MARK, base + _AFTER_MARK)]
    return f"SELECT {_COLUMNS} FROM cdrs WHERE {ranges}", params


def _base(call_id: str) -> str:
    return call_id.partition(REPEAT_MARK)[0]


def _rank(call_id: str) -> int:
    _, mark, rank = call_id.partition(REPEAT_MARK)
    return int(rank) if mark and rank.isdigit() else 1


def _of_row(row: Row) -> Identity:
    return row["started_us"], row["router"], row["number"], row["caller_raw"]


def _of_cdr(cdr: CDR, router: str) -> Identity:
    return epoch_us(cdr.started_at), router, cdr.number, cdr.caller_raw


def session_id(op: CdrOp) -> str | None:
    """The session's own call id an op is written by, if it is one the store may follow."""
    if isinstance(op, AddLeg | FinishCall):
        return None if op.stored_id else op.call_id
    if isinstance(op, PostLedger) and op.entry.kind is LedgerKind.CALL and not op.stored_id:
        return op.entry.ref
    return None


def _to(op: CdrOp, stored: str) -> CdrOp:
    """A session's op (`session_id` names its id) written by the id its CDR is stored by."""
    if isinstance(op, PostLedger):
        return dataclasses.replace(op, entry=dataclasses.replace(op.entry, ref=stored))
    if isinstance(op, AddLeg | FinishCall):
        return dataclasses.replace(op, call_id=stored)
    return op


_FORGOTTEN = ""
"""A session keyed by its own id: whatever was remembered of that id is forgotten."""


@dataclass(frozen=True, slots=True)
class Resolution:
    """A batch as the store writes it, and what to remember once it is committed."""

    ops: Sequence[CdrOp]
    remember: dict[str, str]
    """session id -> stored id; `_FORGOTTEN`: keyed by its own id."""
    repeats: list[tuple[str, str]]
    """(session id, stored id) of the starts keyed apart in this batch."""


class RepeatKeys:
    """The session ids this router's store keyed apart, and the resolution of each batch."""

    def __init__(self, remembered: int = RECENT_SESSIONS) -> None:
        self._remembered = remembered
        self._stored: dict[str, str] = {}

    def stored_id(self, call_id: str) -> str:
        """The id the store keyed the CDR of this router's session `call_id` by."""
        return self._stored.get(call_id, call_id)

    def with_rekeys(self, ops: Sequence[CdrOp]) -> list[CdrOp]:
        """`ops` as journaled: a `Rekeyed` ahead for each session among them keyed apart."""
        stored = self._stored
        if not stored:
            return list(ops)
        ids = dict.fromkeys(i for op in ops if (i := session_id(op)) in stored and i is not None)
        return [*(Rekeyed(i, stored[i]) for i in ids), *ops]

    def resolving(
        self, ops: Sequence[CdrOp], router: str
    ) -> Generator[Query, list[Row], Resolution]:
        """The batch resolved: yields its reads of the store (within the batch's
        transaction), each sent back its rows; returns the ops to write."""
        decided: dict[int, str] = {}
        repeats: list[tuple[str, str]] = []
        starts = [(i, op.cdr) for i, op in enumerate(ops) if isinstance(op, StartCall)]
        if starts:
            ids = list(dict.fromkeys(cdr.call_id for _, cdr in starts))
            held = {row["call_id"]: _of_row(row) for row in (yield starts_held(ids))}
            repeated = _repeated(starts, held, router)
            if repeated:
                bases = list(dict.fromkeys(_base(cdr.call_id) for _, cdr, _ in repeated))
                held.update((row["call_id"], _of_row(row)) for row in (yield repeats_held(bases)))
                for i, cdr, identity in repeated:
                    decided[i] = stored = _keyed(held, _base(cdr.call_id), identity)
                    repeats.append((cdr.call_id, stored))
        if not decided and not self._stored and not any(isinstance(op, Rekeyed) for op in ops):
            return Resolution(ops, {}, [])  # nothing to forget, nothing keyed apart
        return self._rewritten(ops, decided, repeats)

    def _rewritten(
        self, ops: Sequence[CdrOp], decided: dict[int, str], repeats: list[tuple[str, str]]
    ) -> Resolution:
        """The ops with each session's id as the store keyed it, in op order."""
        remember: dict[str, str] = {}

        def stored_of(call_id: str) -> str | None:
            stored = remember[call_id] if call_id in remember else self._stored.get(call_id)
            return stored or None

        written: list[CdrOp] = []
        changed = False
        for i, op in enumerate(ops):
            if isinstance(op, StartCall):
                stored = decided.get(i, _FORGOTTEN)
                remember[op.cdr.call_id] = stored
                if stored:
                    op, changed = StartCall(dataclasses.replace(op.cdr, call_id=stored)), True
            elif isinstance(op, Rekeyed):
                remember[op.call_id] = op.stored_id
            elif (own := session_id(op)) is not None and (stored := stored_of(own)) is not None:
                op, changed = _to(op, stored), True
            written.append(op)
        # the batch as it came when nothing in it moved: its rows need not be encoded again
        return Resolution(written if changed else ops, remember, repeats)

    def settle(self, resolution: Resolution) -> None:
        """Remember what a committed batch keyed apart, and warn of its repeats."""
        stored = self._stored
        for call_id, keyed in resolution.remember.items():
            if keyed:
                stored.pop(call_id, None)
                stored[call_id] = keyed
            else:
                stored.pop(call_id, None)
        while len(stored) > self._remembered:
            del stored[next(iter(stored))]
        for call_id, keyed in resolution.repeats:
            log.warning(
                "call %s: AGI session on uniqueid %s, whose CDR the store holds already for "
                "another call (another router, or before a restart): a CDR of its own",
                keyed,
                _base(call_id),
            )


def _repeated(
    starts: list[tuple[int, CDR]], held: dict[str, Identity], router: str
) -> list[tuple[int, CDR, Identity]]:
    """The starts whose id the store, or an earlier start of the batch, holds for another
    call; `held` gains the batch's own starts."""
    repeated: list[tuple[int, CDR, Identity]] = []
    for i, cdr in starts:
        there = held.get(cdr.call_id)
        if there is None:
            held[cdr.call_id] = _of_cdr(cdr, router)
        elif there != (identity := _of_cdr(cdr, router)):
            repeated.append((i, cdr, identity))
    return repeated


def _keyed(held: dict[str, Identity], base: str, identity: Identity) -> str:
    """The id of the call `identity` among `base`'s ids held (a start replayed), else the
    next one free, which it then holds."""
    family = {call_id: known for call_id, known in held.items() if _base(call_id) == base}
    for call_id, known in family.items():
        if known == identity:
            return call_id
    stored = f"{base}{REPEAT_MARK}{max(map(_rank, family), default=1) + 1}"
    held[stored] = identity
    return stored


async def fetched(
    resolving: Generator[Query, list[Row], Resolution],
    fetch: Callable[[str, list[Any]], Awaitable[list[Row]]],
) -> Resolution:
    """Run `resolving` with a session's `fetch` (PostgreSQL, in the batch's transaction)."""
    try:
        query = next(resolving)
        while True:
            query = resolving.send(await fetch(*query))
    except StopIteration as done:
        return done.value


def resolved(
    resolving: Generator[Query, list[Row], Resolution], fetch: Callable[[Query], list[Row]]
) -> Resolution:
    """Run `resolving` with a blocking `fetch` (SQLite, on its connection's thread)."""
    try:
        query = next(resolving)
        while True:
            query = resolving.send(fetch(query))
    except StopIteration as done:
        return done.value
