"""The `Store` both engines are: the tables' behaviour written once, joined.

`SqlStore` does everything the protocol promises with the SQL of router.storage.queries and
the rows of router.storage.rows, one class per group of tables over an engine's sessions
(router.storage.sessions); an engine only connects and says how it holds a transaction.

A new group of tables for a new feature joins the same way: its tables as a new version in
router.storage.schema (once, with the dialect's words), its statements with `?` parameters
and its methods in a module of its own, in a class over `SessionSource` that `SqlStore`
adds to its bases, and its part of `Store` in router.storage.protocol; the contract tests
run it on both engines.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from router.storage.account_tables import AccountTables
from router.storage.backoffice_tables import BackOfficeTables
from router.storage.cdr_tables import CdrTables
from router.storage.lease_tables import LeaseTables
from router.storage.number_tables import NumberTables
from router.storage.pin_guard_tables import PinGuardTables
from router.storage.recording_tables import RecordingTables
from router.storage.repeats import RepeatKeys
from router.storage.terms_tables import TermsTables


class SqlStore(
    CdrTables,
    AccountTables,
    BackOfficeTables,
    NumberTables,
    TermsTables,
    PinGuardTables,
    RecordingTables,
    LeaseTables,
):
    """A `Store` over any engine that provides sessions."""

    def __init__(self, *, router: str, zone: ZoneInfo) -> None:
        self.router = router
        self.zone = zone
        self.repeats = RepeatKeys()
