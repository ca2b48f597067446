"""The lease of this router's name in the store: one running router per `router_name`.

At start a router adopts the calls its name left in progress (router.ami.adoption). Two
routers running under one name on a shared store would adopt, and complete again, each
other's live calls. So a router claims its name in the store before it adopts anything:
a row naming the holder (host, pid, FastAGI address, a random instance id) and an expiry on
the database's clock, renewed every `lease_heartbeat` seconds off the call path.

- A start finding another instance's lease not yet expired is refused, naming the holder and
  when its lease runs out (router.startup.StartupError).
- A router that died (SIGKILL, a lost host) renews no more: its lease expires after
  `lease_timeout` seconds and the next router of that name takes it over, then adopts.
- Restarted on its own spool_dir, a router that died takes its lease over at once: the
  lease names the spool_dir its holder journals to (host and a token kept in the directory,
  router.startup.spool_identity), and the restarted router holds that directory's lock,
  which a running holder would hold. A second router of the name on another spool_dir is
  refused while the lease is fresh, as is one on the same spool_dir by the lock itself.
- A store down at start does not stop routing: the lease is claimed once the store answers,
  by the heartbeat or by adoption, which needs it first (`ensure`).
- A renewal finding that another instance took the lease over (this router could not reach
  the store for longer than `lease_timeout`, and a router of the same name started
  meanwhile) means the calls this router adopted are now the other's: `on_lost` is told,
  and the daemon stops adopting and completing them and shuts down (router.daemon).
- A clean stop releases the lease, so a restart need not wait for it to expire.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from contextlib import suppress

from router.startup import LeaseLost, StartupError
from router.storage.protocol import Store, StoreUnavailable
from router.storage.rows import LeaseHolder

log = logging.getLogger("hotline400.lease")


def held_elsewhere(name: str, other: LeaseHolder) -> str:
    """The line for a name whose lease another running router holds."""
    return (
        f"router_name {name!r} is held by another running router ({other.holder}) whose lease "
        f"expires at {other.expires_at:%Y-%m-%d %H:%M:%S %Z} unless it renews it: two routers "
        "of one name would adopt and complete each other's calls; give this router its own "
        "router_name, or stop the other one (a router that died frees its name when its "
        "lease expires)"
    )


class Lease:
    """This router's hold on its name: claimed at start, kept by `keep`, released at stop."""

    def __init__(
        self,
        store: Store,
        name: str,
        *,
        heartbeat: float,
        timeout: float,
        on_lost: Callable[[str], None],
        take_over: bool = False,
    ) -> None:
        """`take_over`: the first claim takes the lease whoever holds it, for a store this
        router has to itself by a lock (a SQLite file): a lease left there is a dead
        router's, and a restart after a crash need not wait for it to expire. `spool`, set
        once this router holds its spool_dir's lock, does the same for a lease held for
        that spool_dir."""
        self._store = store
        self.name = name
        self._lease_of = f"router_name {name!r}" if name else "this store's only router"
        """What the log lines call this lease: a SQLite store's one router has no name."""
        self.instance = secrets.token_hex(8)
        self.holder = f"host {socket.gethostname()}, pid {os.getpid()}, instance {self.instance}"
        self._heartbeat = heartbeat
        self._timeout = timeout
        self._on_lost = on_lost
        self.held = asyncio.Event()
        """Set while this router holds its lease."""
        self._renewed = 0.0
        """time.monotonic() when the last renewal that succeeded was sent."""
        self._unreachable = False
        self._take_over = take_over
        self.spool: str | None = None
        """This router's spool_dir (router.startup.spool_identity), once its lock is held."""

    async def claim(self, address: str) -> bool:
        """At start, once listening on FastAGI `address`: True once held; False when the
        store cannot be reached now (the heartbeat claims it later). StartupError when
        another running router holds it."""
        self.holder = f"{self.holder}, FastAGI {address}"
        try:
            other = await self._renew()
        except StoreUnavailable as error:
            log.error("lease of %s not claimed yet: %s", self._lease_of, error)
            return False
        if other is not None:
            raise StartupError(held_elsewhere(self.name, other))
        log.info("lease of %s claimed (%s)", self._lease_of, self.holder)
        return True

    async def ensure(self) -> None:
        """Return once this router holds its lease, claiming it now if it does not yet (a
        store down at start): StoreUnavailable while the store cannot say, LeaseLost when
        another running router holds it."""
        if self.held.is_set():
            return
        other = await self._renew()
        if other is not None:
            raise LeaseLost(held_elsewhere(self.name, other))

    async def keep(self) -> None:
        """Renew the lease every heartbeat until cancelled or lost."""
        while True:
            await asyncio.sleep(self._heartbeat)
            try:
                other = await self._renew()
            except StoreUnavailable as error:
                self._unrenewed(error)
                continue
            if other is not None:
                self.held.clear()
                self._on_lost(held_elsewhere(self.name, other))
                return
            if self._unreachable:
                log.info("lease of %s renewed again", self._lease_of)
            self._unreachable = False

    async def _renew(self) -> LeaseHolder | None:
        sent = time.monotonic()
        other = await self._store.claim_lease(
            self.name,
            self.instance,
            self.holder,
            self._timeout,
            take_over=self._take_over,
            spool=self.spool,
        )
        if other is None:
            self._take_over = False
            self._renewed = sent
            self.held.set()
        return other

    def _unrenewed(self, error: StoreUnavailable) -> None:
        if not self._unreachable:
            log.error("lease of %s not renewed: %s", self._lease_of, error)
        self._unreachable = True
        if self.held.is_set() and time.monotonic() - self._renewed >= self._timeout:
            # Another router of this name may take it over from now on: routing goes on,
            # and what the store will say at the next renewal decides the rest.
            log.error(
                "lease of %s may have expired (not renewed for %gs): if another router of "
                "its name takes it over, this router stops",
                self._lease_of,
                self._timeout,
            )
            self.held.clear()

    async def release(self) -> None:
        """Give the lease up at a clean stop; a store down now lets it expire instead."""
        if not self.held.is_set():
            return
        with suppress(StoreUnavailable):
            await self._store.release_lease(self.name, self.instance)
        self.held.clear()
