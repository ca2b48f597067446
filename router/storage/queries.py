"""The store's SQL, written once for every engine.

Statements use `?` for their parameters, in order; an engine whose driver numbers them
(PostgreSQL's $1, $2, ...) renumbers them once per statement text (router.storage.postgres).
Only SQL both engines read the same way is written here: upserts with ON CONFLICT, a table
alias in INSERT, CASE, TRUE. The schema both engines agree on since version 3 makes that
possible: a router column in `cdrs`, call-cap units in `call_units`, call ids ordered byte by
byte.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from rating.ledger import LedgerKind
from router.storage.cdr import CDR, DIALLING, Outcome
from router.storage.rows import CDR_COLUMNS, LEDGER_COLUMNS, LEG_COLUMNS, epoch_us
from router.storage.schema import CURRENT_HOLDING


def insert(table: str, columns: Sequence[str], conflict: str) -> str:
    """INSERT of one row of `columns`, doing what `conflict` says with a row already there."""
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT {conflict}"


# --- CDRs --------------------------------------------------------------------------------

INSERT_CDR = insert("cdrs", CDR_COLUMNS, "(call_id) DO NOTHING")
# A leg written ahead (DIALLING) is completed by the leg of the same number at the Dial's end;
# a completed leg is never changed again, so a replay changes nothing.
INSERT_LEG = insert(
    "legs",
    LEG_COLUMNS,
    "(call_id, seq) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in LEG_COLUMNS[2:])
    + f" WHERE legs.dial_status = '{DIALLING}'",
)


@functools.cache
def finish_cdr(columns: tuple[str, ...]) -> str:
    """The UPDATE of a finish that sets `columns` (names of `FINISH_COLUMNS`, checked as the
    op was made); a router's calls end in a handful of shapes, so few texts are built."""
    return f"UPDATE cdrs SET {', '.join(f'{name} = ?' for name in columns)} WHERE call_id = ?"


NO_ROUTER = ""
"""The router named by the calls of a store one router has to itself (a SQLite file), and by
calls recorded before CDRs named theirs: any router restarting closes those left open."""


def stranded(routers: int) -> str:
    """Calls in progress started by a moment (the last parameter) of `routers` routers
    (the first parameters) and of no router."""
    names = ", ".join(["?"] * routers + [f"'{NO_ROUTER}'"])
    return f"router IN ({names}) AND outcome = '{Outcome.IN_PROGRESS}' AND started_us <= ?"


CLOSE_INTERRUPTED = (
    "UPDATE cdrs SET outcome = ?, ended_at = ?, note = ? WHERE call_id = ? AND outcome = ?"
)
_LEG_SELECT = ", ".join(f"l.{name} AS leg_{name}" for name in LEG_COLUMNS[1:])
LEG_PREFIX = "leg_"


def select_cdrs(where: str, *, limited: bool, oldest_first: bool = False) -> str:
    """CDRs matching `where`, newest first (ties by call id, byte by byte; `oldest_first`
    turns both round), each joined to its legs in dial order, in one statement; `limited`
    adds a last parameter: how many calls."""
    limit = " LIMIT ?" if limited else ""
    order = "ASC" if oldest_first else "DESC"
    return (
        f"SELECT c.*, {_LEG_SELECT} FROM ("
        f"  SELECT * FROM cdrs WHERE {where} ORDER BY started_us {order}, call_id {order}{limit}"
        ") AS c LEFT JOIN legs AS l ON l.call_id = c.call_id "
        f"ORDER BY c.started_us {order}, c.call_id {order}, l.seq"
    )


OLDER_THAN = "started_us <= ? AND (started_us < ? OR call_id < ?)"
"""The calls listed after a given one, newest first: the first term is the range an index
of started_us reads (a call id alone orders only calls started at the same moment)."""


def listing_key(cdr: CDR) -> tuple[int, int, str]:
    """Where `cdr` stands in a listing: the parameters of `OLDER_THAN` and `NEWER_THAN`
    for the calls listed after it."""
    started = epoch_us(cdr.started_at)
    return started, started, cdr.call_id


NEWER_THAN = "started_us >= ? AND (started_us > ? OR call_id > ?)"
"""The calls listed after a given one, oldest first (`listing_key` gives its parameters)."""


class Conditions:
    """A WHERE clause built condition by condition: `add("x = ?", value)`."""

    def __init__(self) -> None:
        self.params: list[Any] = []
        self._parts: list[str] = []

    def add(self, condition: str, *values: Any) -> None:
        self._parts.append(condition)
        self.params += values

    def sql(self) -> str:
        return " AND ".join(self._parts) or "TRUE"


# --- accounts: ledger, balances, usage counters, call caps ------------------------------

INSERT_LEDGER = insert("ledger", LEDGER_COLUMNS, "(number, kind, ref) DO NOTHING")
SELECT_LEDGER = "SELECT * FROM ledger WHERE {where} ORDER BY at_us, id"


def ledger_refs(count: int) -> str:
    """Which of `count` refs (the last parameters) an account (number, kind first) has
    entries with: keys of the ledger's UNIQUE (number, kind, ref), one read each."""
    marks = ", ".join("?" for _ in range(count))
    return f"SELECT ref FROM ledger WHERE number = ? AND kind = ? AND ref IN ({marks})"


INCLUDED_SECONDS_BOOKED = (
    "SELECT ref, included_seconds FROM ledger "
    f"WHERE number = ? AND kind = '{LedgerKind.CALL}' AND included_seconds > 0"
)
# A few keyed rows, never a scan: parameters number, number, month, number, day, number,
# month, number. Every counter and the balance are the current holding's: the number's last
# row of holding_balances (none: its first holding, 0).
USAGE_SNAPSHOT = f"""
SELECT m.cost_fen AS month_cost_fen, c.calls AS month_calls, m.included_used AS included_used,
       d.cost_fen AS day_cost_fen, b.balance_fen AS balance_fen
FROM (SELECT {CURRENT_HOLDING} AS since_us) AS cur
LEFT JOIN usage AS m ON m.number = ? AND m.since_us = cur.since_us AND m.period = ?
LEFT JOIN usage AS d ON d.number = ? AND d.since_us = cur.since_us AND d.period = ?
LEFT JOIN call_units AS c ON c.number = ? AND c.since_us = cur.since_us AND c.month = ?
LEFT JOIN holding_balances AS b ON b.number = ? AND b.since_us = cur.since_us
"""
# Each holding with its holder's service provider, read with it.
HOLDINGS = (
    "SELECT b.since_us, b.holder, b.balance_fen, s.provider FROM holding_balances AS b"
    " LEFT JOIN subscribers AS s ON s.name = b.holder WHERE b.number = ? ORDER BY b.since_us"
)
# The holdings a subscriber held and left, each with the instant it ended (the next one began).
HOLDINGS_OF = (
    "SELECT number, since_us, balance_fen, (SELECT MIN(n.since_us) FROM holding_balances AS n"
    " WHERE n.number = b.number AND n.since_us > b.since_us) AS until_us"
    " FROM holding_balances AS b WHERE holder = ? ORDER BY number, since_us"
)
# The current holding names its holder (its row made if it had no entry): as a subscriber lets
# the number go (a withdrawn application) and as the number comes back to the pool, when the
# next holding starts from nothing; a holder already named stays when none is given.
# Parameters number, number, holder; number, at.
HOLDING_ENDS = (
    "INSERT INTO holding_balances AS b (number, since_us, holder, balance_fen) "
    "VALUES (?, COALESCE((SELECT MAX(h.since_us) FROM holding_balances AS h WHERE h.number = ?),"
    " 0), ?, 0) ON CONFLICT (number, since_us) DO UPDATE SET holder = "
    "COALESCE(excluded.holder, b.holder)"
)
HOLDING_STARTS = (
    "INSERT INTO holding_balances (number, since_us, balance_fen) VALUES (?, ?, 0) "
    "ON CONFLICT (number, since_us) DO NOTHING"
)
# The watch of a number's balance: its row locked (made if new, since_us -1: nothing seen),
# then the current holding's balance read, then what was read kept. Parameters number.
LOCK_BALANCE_WATCH = (
    "INSERT INTO balance_watch AS w (number, since_us, seen_fen) VALUES (?, -1, 0) "
    "ON CONFLICT (number) DO UPDATE SET seen_fen = w.seen_fen RETURNING since_us, seen_fen"
)
CURRENT_BALANCE = (
    "SELECT since_us, balance_fen FROM holding_balances WHERE number = ? "
    "ORDER BY since_us DESC LIMIT 1"
)
SEE_BALANCE = "UPDATE balance_watch SET since_us = ?, seen_fen = ? WHERE number = ?"
# One statement: the count only moves while it is below the cap, whichever router asks; the
# units are the current holding's. Parameters number, number, month, cap.
RESERVE_CALL = (
    "INSERT INTO call_units AS u (number, since_us, month, calls)"
    f" VALUES (?, {CURRENT_HOLDING}, ?, 1) ON CONFLICT (number, since_us, month)"
    " DO UPDATE SET calls = u.calls + 1 WHERE u.calls < ?"
)
# Parameters number, number, month.
RELEASE_CALL = (
    "UPDATE call_units SET calls = calls - 1"
    f" WHERE number = ? AND since_us = {CURRENT_HOLDING} AND month = ? AND calls > 0"
)

# --- schema versions ---------------------------------------------------------------------

CREATE_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)"
CURRENT_VERSION = "SELECT COALESCE(MAX(version), 0) AS version FROM schema_version"
RECORD_VERSION = "INSERT INTO schema_version (version) VALUES (?)"
