"""The lease of a router name, written once over any engine's sessions (router.lease).

Claiming and renewing are one statement, atomic by itself on both engines: the upsert takes
the row only when it is this instance's already, its expiry has passed or its holder
journaled to the spool_dir the claimer journals to (the claimer holds that directory's lock,
so the holder is dead: a router restarted after a crash), and PostgreSQL
re-reads that condition on the row's newest version under the row lock, so of two routers
starting together under one name exactly one gets it. Times are the database's clock, the one
clock every router of a shared store sees, so hosts whose clocks differ still agree on
when a lease has run out.
"""

from __future__ import annotations

from router.storage.rows import LeaseHolder, from_epoch_us
from router.storage.sessions import SessionSource

_CLAIM = (
    "INSERT INTO router_leases AS l (router, instance, holder, expires_us, spool)"
    " VALUES (?, ?, ?, {now} + ?, ?)"
    " ON CONFLICT (router) DO UPDATE SET instance = excluded.instance,"
    " holder = excluded.holder, expires_us = excluded.expires_us, spool = excluded.spool"
    " WHERE l.instance = excluded.instance OR l.expires_us <= {now} OR ?"
    " OR l.spool = excluded.spool"
)
_HOLDER = "SELECT holder, expires_us FROM router_leases WHERE router = ?"
_RELEASE = "DELETE FROM router_leases WHERE router = ? AND instance = ?"


class LeaseTables(SessionSource):
    """The router-lease part of `Store`."""

    NOW_US: str
    """The engine's SQL for the database's clock, in UTC microseconds."""

    async def claim_lease(
        self,
        router: str,
        instance: str,
        holder: str,
        seconds: float,
        *,
        take_over: bool = False,
        spool: str | None = None,
    ) -> LeaseHolder | None:
        """Claim or renew `router`'s lease for `seconds` from now; None when this instance
        holds it, else the instance that does."""
        sql = _CLAIM.format(now=self.NOW_US)
        params = (router, instance, holder, round(seconds * 1_000_000), spool, take_over)
        while True:
            async with self._transaction() as session:
                if await session.execute(sql, params):
                    return None
                rows = await session.fetch(_HOLDER, (router,))
            if rows:  # else released between the two statements: claim it again
                expires = from_epoch_us(rows[0]["expires_us"]).astimezone(self.zone)
                return LeaseHolder(rows[0]["holder"], expires)

    async def release_lease(self, router: str, instance: str) -> None:
        """Give the lease up at a clean stop, so the next start under the name need not wait
        for it to expire; a lease another instance took over meanwhile is left alone."""
        async with self._transaction() as session:
            await session.execute(_RELEASE, (router, instance))
