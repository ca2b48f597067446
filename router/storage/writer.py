"""Write-behind for CDRs: the call path hands operations over and never waits for storage.

`submit` only appends an operation to an in-memory list. One background task takes ops
off it in batches (up to `batch_size` ops, or whatever came within `batch_interval` of
the first) and applies each batch in one transaction. The task is woken twice a batch at
most, by the first op and by a full batch or the end of the interval, not once per op:
a call submits three to five ops, and a wake-up with its timeout cost as much as a line
of the call's log. The interval (router.yaml `cdr_batch_interval`) is what a commit is
shared by: a SQLite commit costs about as much as writing three calls, so at 100 calls a
second 0.25 s costs 0.07 ms less CPU a call than 0.05 s; what is gathered when the process
is killed is lost. When the store is unavailable the batch goes to the journal instead,
and so does every later batch until the journal has been replayed: ops keep their order,
so a call's finish can never land before its start. The store is retried with a doubling
delay; a replay commits the journal in order and only then empties it, and since every op
is idempotent a replay cut short is simply run again. A journal line that cannot be read back
as an op is moved aside to `<journal>.bad` and the rest replayed (router.storage.spool); a
store error keeps the whole journal for the next retry. If even the journal cannot be
written (disk full), ops are held in memory, behind the journal, until one of the two
takes them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import nullcontext, suppress
from dataclasses import dataclass

from router.storage.call_wait import StoreWait, one_store_wait
from router.storage.cdr import CdrOp, op_from_json, op_to_json
from router.storage.protocol import Store, StoreUnavailable
from router.storage.spool import Journal

log = logging.getLogger(__name__)


async def _nothing_more(ops: Sequence[CdrOp]) -> None:
    """The default of `written`: nothing to do once a batch is stored."""


@dataclass(frozen=True, slots=True)
class WriterStats:
    """Figures for metrics: how far behind the writer is and how much waits on disk."""

    queue_depth: int
    write_failures: int
    spooled_ops: int
    journal_bytes: int
    journal_lines_moved_aside: int


class CdrWriter:
    def __init__(
        self,
        store: Store,
        journal: Journal,
        *,
        batch_size: int = 500,
        batch_interval: float = 0.25,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        written: Callable[[Sequence[CdrOp]], Awaitable[None]] = _nothing_more,
    ) -> None:
        """`written(ops)` is told each batch the store has taken, once it has (the
        accounting's view of which charges a balance read already holds)."""
        self._store = store
        self._written = written
        self._journal = journal
        self._batch_size = batch_size
        self._batch_interval = batch_interval
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._ops: list[CdrOp] = []  # submitted, not yet taken into a batch
        self._waiter: asyncio.Future[None] | None = None
        self._wake_at = 1
        """Ops that wake the waiting writer: 1 while idle, a full batch while gathering."""
        self._held: list[CdrOp] = []  # ops in neither the store nor the journal
        self._caught_up = asyncio.Event()
        """Set while nothing journaled or held waits for the store (not spooling)."""
        self._caught_up.set()
        self._retry_delay = retry_initial
        self._retry_at = 0.0
        self._write_failures = 0
        self._failures_in_a_row = 0
        self._reported: str | None = None
        """The failure last logged as a warning; the same one again is logged at debug."""
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._grace: StoreWait | None = None
        self._in_flight: list[CdrOp] = []
        """The batch being written: journaled if a stop cuts its write."""
        """What the store is given in all once the writer closes."""

    def submit(self, op: CdrOp) -> None:
        """Queue an operation; returns at once, whatever state the database is in."""
        if self._closed:
            raise RuntimeError("the CDR writer is closed")
        self._ops.append(op)
        if len(self._ops) >= self._wake_at:
            self._wake()

    def stats(self) -> WriterStats:
        return WriterStats(
            queue_depth=len(self._ops),
            write_failures=self._write_failures,
            spooled_ops=self._journal.record_count + len(self._held),
            journal_bytes=self._journal.size_bytes,
            journal_lines_moved_aside=self._journal.lines_moved_aside,
        )

    @property
    def _spooling(self) -> bool:
        return not self._caught_up.is_set()

    async def caught_up(self) -> None:
        """Return once nothing waits in the journal (or in memory behind it) for the store:
        a call's end journaled by an earlier run must land before its call is read as
        still in progress."""
        await self._caught_up.wait()

    async def start(self) -> None:
        """Replay a journal left by an earlier run, then start writing in the background.

        Run `Store.close_interrupted` after this, so calls whose end was still in the journal
        are completed from it rather than closed as interrupted.
        """
        if self._journal.record_count:
            self._caught_up.clear()
            await self._replay()
        self._task = asyncio.create_task(self._drain(), name="cdr-writer")

    async def close(self, grace: StoreWait | None = None, limit: float = math.inf) -> None:
        """Write out everything submitted; what the store still refuses stays in the journal.

        With `grace`, the store gets `limit` seconds in all from now, shared with the stop's
        other uses of it (router.storage.call_wait): a batch still being written then is
        cut and journaled with the rest (every operation is idempotent: the next start
        writes it again harmlessly)."""
        if self._closed:
            return
        self._closed, self._grace = True, grace
        self._wake()
        if self._task is None:
            await self._drain()
            return
        if grace is not None:
            began = time.monotonic()
            await asyncio.wait({self._task}, timeout=max(grace.left(limit), 0))
            grace.spent += time.monotonic() - began
            self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task

    async def _drain(self) -> None:
        try:
            await self._write_until_closed()
        except asyncio.CancelledError:
            await self._spool([*self._in_flight, *self._ops])
            self._ops.clear()
            raise

    async def _write_until_closed(self) -> None:
        closing = False
        while not closing:
            batch, closing = await self._next_batch()
            self._in_flight = batch
            with one_store_wait(self._grace) if self._grace else nullcontext():
                if self._spooling and (closing or self._retry_due()):
                    await self._replay()
                if batch:
                    await self._write(batch)
            self._in_flight = []
        if self._held:
            log.error(
                "%d CDR operations could be saved neither to the store nor the journal",
                len(self._held),
            )

    async def _next_batch(self) -> tuple[list[CdrOp], bool]:
        """The next batch, and whether the writer is closing; empty when a retry is due."""
        loop = asyncio.get_running_loop()
        if not self._ops and not self._closed:
            wait = max(0.0, self._retry_at - loop.time()) if self._spooling else None
            if not await self._wait_for(1, wait):
                return [], False
        if len(self._ops) < self._batch_size and not self._closed:
            await self._wait_for(self._batch_size, self._batch_interval)
        batch = self._ops[: self._batch_size]
        del self._ops[: self._batch_size]
        return batch, self._closed and not self._ops

    async def _wait_for(self, ops: int, timeout: float | None) -> bool:
        """Sleep until `ops` ops are waiting or the writer closes (True), or `timeout`
        seconds pass (False)."""
        self._wake_at = ops
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await self._waiter
        except TimeoutError:
            return False
        finally:
            self._waiter = None
            self._wake_at = 1
        return True

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _write(self, batch: list[CdrOp]) -> None:
        if not self._spooling:
            try:
                await self._store.apply(batch)
                await self._written(batch)
                return
            except Exception as exc:
                self._note_failure(exc)
                self._caught_up.clear()
        await self._spool(batch)

    async def _spool(self, batch: list[CdrOp]) -> None:
        """Journal the batch behind anything held in memory, each session among them that
        the store keyed apart announced ahead (a later run's replay follows it); hold it
        too if that fails."""
        unjournaled = [*self._held, *batch]
        try:
            journaled = self._store.with_rekeys(unjournaled)
            await asyncio.to_thread(_journal_ops, self._journal, journaled)
        except OSError:
            self._held = unjournaled
            log.exception(
                "CDR journal %s cannot be written; %d operations held in memory",
                self._journal.path,
                len(unjournaled),
            )
            return
        self._held = []

    async def _replay(self) -> None:
        """Apply the journal, then ops held in memory, in order; empty both only after that."""
        try:
            offset = 0
            while True:
                ops, offset = await asyncio.to_thread(
                    self._journal.read, offset, self._batch_size, op_from_json
                )
                if not ops:
                    break
                await self._store.apply(ops)
                await self._written(ops)
            for start in range(0, len(self._held), self._batch_size):
                held = self._held[start : start + self._batch_size]
                await self._store.apply(held)
                await self._written(held)
            await asyncio.to_thread(self._journal.clear)
        except Exception as exc:
            self._note_failure(exc)
            return
        if self._failures_in_a_row:
            log.info(
                "CDR journal replayed into the store after %d failed attempts",
                self._failures_in_a_row,
            )
        else:
            log.info("CDR journal replayed into the store")
        self._failures_in_a_row, self._reported = 0, None
        self._held.clear()
        self._caught_up.set()
        self._retry_delay = self._retry_initial

    def _retry_due(self) -> bool:
        return asyncio.get_running_loop().time() >= self._retry_at

    def _note_failure(self, exc: Exception) -> None:
        """Count the failure and schedule the retry. Warn at a change of state (the first
        failure, or a new reason): the same failure again is logged at debug, so a store
        down for an hour is one warning, not one each retry."""
        self._write_failures += 1
        self._failures_in_a_row += 1
        reason = f"{type(exc).__name__}: {exc}"
        if reason == self._reported:
            log.debug(
                "CDR store still refuses (%s): %d failed attempts, retry in %.3gs",
                exc,
                self._failures_in_a_row,
                self._retry_delay,
            )
        elif isinstance(exc, StoreUnavailable):
            log.warning(
                "CDR store unavailable (%s); spooling, retry in %.3gs, then with a doubling "
                "delay up to %gs",
                exc,
                self._retry_delay,
                self._retry_max,
            )
        else:
            log.exception("CDR write failed; spooling, retry in %.3gs", self._retry_delay)
        self._reported = reason
        self._retry_at = asyncio.get_running_loop().time() + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, self._retry_max)


# Encoding and decoding run in a worker thread with the file I/O, off the call path.


def _journal_ops(journal: Journal, ops: list[CdrOp]) -> None:
    journal.append([op_to_json(op) for op in ops])
