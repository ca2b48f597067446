"""The store's tables, written once, and the migrations that make them, one list per engine.

A version means the same on both engines: 1 the CDRs and their legs, 2 the ledger, balances
and usage counters, 3 the engines agree (each CDR names its router, call-cap units live in
`call_units`, call ids sort byte by byte), 4 the management console's users, sessions,
audit log and plan versions, and the hourly call counts its reports read, 5 the daily
call counts beside them (a report reads whole days, and hours only at its edges), 6 the
numbers' inventory with the history of every transition, service providers and their
subscribers, 7 each number's history of minimum monthly consumption and charged rate, 8
the failed PIN calls of each caller to each number and the callers refused for guessing, 9
the IVR menu path, keys and prompt language of each CDR, 10 the index of the CDRs that
went through a menu, by number and start (a report counts menu paths from it alone), 11
a CDR's recording and when it was purged, 12 the indexes of the numbers' last 6, 5, 4 and 3
digits that find a rare pattern (router.storage.number_patterns), 13 a CDR's satisfaction
score and the index of the scored calls by number and start (a report sums the scores from
it alone), 14 the console's failed sign-ins, 15 the period each number's last reservation
was granted (numbering.lifecycle.NumberRecord.reservation_since/until), 16 a balance per
holding of a number (since it last came back to the pool) in place of one per number, 17 the
lease each running router holds on its name (router.lease), 18 a re-rating adjustment moves
the cost counters of its call's month and day (`RERATED_CALL_COST`), 19 the prepaid balance
each number's low-balance watch last saw (router.money.balance_alerts), 20 the spool
directory a router's lease names (router.startup.spool_identity), 21 the cost counters and
call-cap units of each holding of a number (`usage` and `call_units` keyed by the holding's
start, as `holding_balances` is) in place of one set per number; so
the store's SQL is written once (router.storage.queries). A table is written here with a few
words each engine spells its own way (`{money}`, `{id}`, ...); what an engine does
differently for a reason stays in the engine's module: its triggers, and the steps by which
it reached version 3.

Differences kept on purpose: CDR money is exact decimal text in SQLite and numeric in
PostgreSQL (summable in SQL); times are ISO-8601 text on both, as a CDR keeps the UTC offset
it was recorded in, beside microsecond integers for ordering; money in the ledger and the
counters is integer fen on both, so sums are exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rating.rerating import RERATE_PREFIX
from router.storage.number_patterns import TAIL_INDEXES

Migration = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Dialect:
    """How an engine spells the words the tables leave open."""

    money: str
    """Exact yuan to the fen."""
    id: str
    """An increasing row id that is the primary key."""
    call_id: str
    """A call id that sorts byte by byte."""
    keyed: str
    """Ending of a table stored in its primary key's order."""

    def render(self, template: str) -> str:
        return template.format(money=self.money, id=self.id, call_id=self.call_id, keyed=self.keyed)


CDRS = """CREATE TABLE cdrs (
    call_id {call_id} PRIMARY KEY,
    number text NOT NULL,
    caller_raw text NOT NULL,
    caller text,
    caller_kind text NOT NULL,
    province text,
    city text,
    area_code text,
    started_at text NOT NULL,      -- ISO-8601 with the offset the call was recorded in
    started_us bigint NOT NULL,    -- UTC microseconds: orders and filters across offsets
    answered_at text,
    ended_at text,
    billable_seconds integer NOT NULL DEFAULT 0,
    outcome text NOT NULL,
    rule text,
    caller_share {money},          -- yuan, exact to the fen
    callee_share {money},
    total {money},
    tariff_id text,
    note text
)"""
LEGS = """CREATE TABLE legs (
    call_id {call_id} NOT NULL,
    seq integer NOT NULL,
    destination text NOT NULL,
    dial_status text NOT NULL,
    started_at text NOT NULL,
    ring_seconds integer NOT NULL,
    talk_seconds integer NOT NULL,
    forward_reason text NOT NULL,
    PRIMARY KEY (call_id, seq)
){keyed}"""
CDR_INDEXES = (
    "CREATE INDEX cdrs_by_number_start ON cdrs (number, started_us)",
    "CREATE INDEX cdrs_by_caller ON cdrs (caller, started_us)",
    "CREATE INDEX cdrs_by_caller_raw ON cdrs (caller_raw, started_us)",
    "CREATE INDEX cdrs_by_start ON cdrs (started_us)",
)
ROUTER_COLUMN = "ALTER TABLE cdrs ADD COLUMN router text NOT NULL DEFAULT ''"
"""The router that started the call: a router restarting closes only its own calls."""
IN_PROGRESS_INDEX = (
    "CREATE INDEX cdrs_in_progress ON cdrs (router, started_us) WHERE outcome = 'in_progress'"
)

LEDGER = """CREATE TABLE ledger (
    id {id},
    number text NOT NULL,
    at text NOT NULL,
    at_us bigint NOT NULL,            -- UTC microseconds, for ordering and ranges
    month text NOT NULL,              -- local YYYY-MM the entry belongs to
    day text NOT NULL,                -- local YYYY-MM-DD
    amount_fen bigint NOT NULL,       -- signed: debits negative
    kind text NOT NULL,
    ref text NOT NULL,
    note text NOT NULL,
    included_seconds integer NOT NULL DEFAULT 0,
    UNIQUE (number, kind, ref)
)"""
LEDGER_INDEX = "CREATE INDEX ledger_by_number_time ON ledger (number, at_us)"
BALANCES = """CREATE TABLE balances (
    number text PRIMARY KEY,
    balance_fen bigint NOT NULL
){keyed}"""
USAGE = """CREATE TABLE usage (
    number text NOT NULL,
    period text NOT NULL,             -- YYYY-MM or YYYY-MM-DD
    cost_fen bigint NOT NULL DEFAULT 0,
    included_used integer NOT NULL DEFAULT 0,
    PRIMARY KEY (number, period)
){keyed}"""
# Units of the monthly call cap, apart from `usage`: a ledger batch holds its number's cost
# rows until it commits, and a call reserving its unit must not wait for that.
CALL_UNITS = """CREATE TABLE call_units (
    number text NOT NULL,
    month text NOT NULL,              -- YYYY-MM
    calls integer NOT NULL,
    PRIMARY KEY (number, month)
){keyed}"""

CONSOLE_USERS = """CREATE TABLE console_users (
    name text PRIMARY KEY,
    role text NOT NULL,
    account text,
    password_hash text NOT NULL,
    disabled integer NOT NULL DEFAULT 0,
    created_us bigint NOT NULL
)"""
CONSOLE_SESSIONS = """CREATE TABLE console_sessions (
    token_digest text PRIMARY KEY,    -- SHA-256 of the cookie's token, never the token
    user_name text NOT NULL,
    expires_us bigint NOT NULL
)"""
CONSOLE_SESSIONS_INDEX = "CREATE INDEX console_sessions_by_user ON console_sessions (user_name)"
AUDIT_LOG = """CREATE TABLE audit_log (
    id text PRIMARY KEY,
    at_us bigint NOT NULL,
    actor text NOT NULL,
    account text,
    action text NOT NULL,
    target text NOT NULL,
    detail text NOT NULL
)"""
AUDIT_LOG_INDEX = "CREATE INDEX audit_log_by_time ON audit_log (at_us)"
PLAN_VERSIONS = """CREATE TABLE plan_versions (
    number text NOT NULL,
    version integer NOT NULL,
    saved_us bigint NOT NULL,
    saved_by text NOT NULL,
    source text NOT NULL,
    note text NOT NULL,
    PRIMARY KEY (number, version)
)"""
# Calls counted by UTC hour, kept in step with the CDRs by each engine's triggers
# (router.storage.call_counts): reports read a few thousand of these rows, not the calls.
CALL_HOURS = """CREATE TABLE call_hours (
    number text NOT NULL,
    hour bigint NOT NULL,             -- started_us / 3600000000
    outcome text NOT NULL,
    duration_class integer NOT NULL,  -- router.storage.call_counts.DURATION_EDGES
    calls bigint NOT NULL,
    seconds bigint NOT NULL,
    international bigint NOT NULL,
    PRIMARY KEY (number, hour, outcome, duration_class)
){keyed}"""
CALL_HOUR_REGIONS = """CREATE TABLE call_hour_regions (
    number text NOT NULL,
    hour bigint NOT NULL,
    province text NOT NULL,           -- '' when unknown
    city text NOT NULL,
    calls bigint NOT NULL,
    PRIMARY KEY (number, hour, province, city)
){keyed}"""

# The same counts by UTC day (router.storage.call_counts.DAYS): a month's report of many
# numbers reads whole days here and only the hours at its edges from the hourly tables.
CALL_DAYS = """CREATE TABLE call_days (
    number text NOT NULL,
    day bigint NOT NULL,              -- started_us / 86400000000
    outcome text NOT NULL,
    duration_class integer NOT NULL,
    calls bigint NOT NULL,
    seconds bigint NOT NULL,
    international bigint NOT NULL,
    PRIMARY KEY (number, day, outcome, duration_class)
){keyed}"""
CALL_DAY_REGIONS = """CREATE TABLE call_day_regions (
    number text NOT NULL,
    day bigint NOT NULL,
    province text NOT NULL,
    city text NOT NULL,
    calls bigint NOT NULL,
    PRIMARY KEY (number, day, province, city)
){keyed}"""

# The operator's inventory of 400 numbers (router.storage.number_tables): one row a number,
# its lifecycle state as numbering.lifecycle.NumberRecord holds it, moved only by a
# conditional UPDATE on `version`, so two operators acting at once never both win.
NUMBERS = """CREATE TABLE numbers (
    number text PRIMARY KEY,
    grade text NOT NULL,
    selection_fee_fen bigint NOT NULL,
    status text NOT NULL,
    since_us bigint,
    until_us bigint,
    provider text,
    subscriber text,
    last_reserver text,
    last_reservation_end_us bigint,
    suspended_since_us bigint,
    suspended_before_us bigint NOT NULL DEFAULT 0,
    keeping_months_booked integer NOT NULL DEFAULT 0,
    version bigint NOT NULL DEFAULT 0,
    due_us bigint,                    -- the next time-driven transition, for `numbers tick`
    added_us bigint NOT NULL
){keyed}"""
NUMBERS_INDEXES = (
    "CREATE INDEX numbers_by_status ON numbers (status, number)",
    "CREATE INDEX numbers_by_grade ON numbers (grade, number)",
    "CREATE INDEX numbers_due ON numbers (due_us) WHERE due_us IS NOT NULL",
    "CREATE INDEX numbers_by_subscriber ON numbers (subscriber) WHERE subscriber IS NOT NULL",
    "CREATE INDEX numbers_by_provider ON numbers (provider) WHERE provider IS NOT NULL",
)
NUMBER_HISTORY = """CREATE TABLE number_history (
    id {id},
    number text NOT NULL,
    at_us bigint NOT NULL,
    actor text NOT NULL,
    from_status text NOT NULL,
    to_status text NOT NULL,
    reason text NOT NULL,
    fees text NOT NULL,               -- what it booked: 'opening_fee 600.00 to 4006001234'
    fee_fen bigint NOT NULL
)"""
NUMBER_HISTORY_INDEX = "CREATE INDEX number_history_by_number ON number_history (number, at_us)"
PROVIDERS = """CREATE TABLE providers (
    name text PRIMARY KEY,
    full_name text NOT NULL,
    licence text NOT NULL,
    legal_representative text NOT NULL,
    id_masked text NOT NULL,          -- never the full ID number
    created_us bigint NOT NULL
)"""
SUBSCRIBERS = """CREATE TABLE subscribers (
    name text PRIMARY KEY,
    provider text NOT NULL REFERENCES providers (name),
    full_name text NOT NULL,
    licence text NOT NULL,
    legal_representative text NOT NULL,
    id_masked text NOT NULL,
    created_us bigint NOT NULL
)"""
HISTORY_REFUSALS = ("number history is never changed", "number history is never deleted")
"""What the history's triggers say to an UPDATE or a DELETE: it is append-only."""

# Each number's minimum monthly consumption and charged rate as they were agreed over time
# (rating.minimum): the next change is checked against the last row.
NUMBER_TERMS = """CREATE TABLE number_terms (
    number text NOT NULL,
    recorded_us bigint NOT NULL,      -- UTC microseconds: orders a number's history
    since text NOT NULL,              -- local YYYY-MM-DD the terms hold from
    package text NOT NULL,
    minimum_fen bigint NOT NULL,
    rate text NOT NULL,               -- yuan per minute charged, exact decimal text
    note text NOT NULL,
    PRIMARY KEY (number, recorded_us)
){keyed}"""

# PIN guessing (router.storage.pin_guard_tables): each failed PIN call of a caller to a number,
# kept for the sliding window only, and one row per (number, caller) that routers lock while
# they count, so two routers counting the same caller at once never both miss the threshold.
PIN_FAILURES = """CREATE TABLE pin_failures (
    number text NOT NULL,
    caller text NOT NULL,             -- the caller's number; '' for a withheld caller ID
    at_us bigint NOT NULL,            -- UTC microseconds of the failed call's end
    call_id {call_id} NOT NULL,
    PRIMARY KEY (number, caller, at_us, call_id)
){keyed}"""
PIN_GUARD = """CREATE TABLE pin_guard (
    number text NOT NULL,
    caller text NOT NULL,
    failures integer NOT NULL,        -- failed calls in the window at the last count
    blocked_until_us bigint NOT NULL, -- refused before the prompt until then; 0: never
    PRIMARY KEY (number, caller)
){keyed}"""

LOGIN_FAILURES = """CREATE TABLE login_failures (
    key text NOT NULL,                -- 'user:<name>' or 'client:<address>'
    at_us bigint NOT NULL,            -- UTC microseconds of the failed sign-in
    id text NOT NULL,                 -- tells apart two failures in one microsecond
    PRIMARY KEY (key, at_us, id)
){keyed}"""
"""Failed console sign-ins, kept in the store so every console process counts them together
(console.security.LoginThrottle)."""

HOLDING_BALANCES = """CREATE TABLE holding_balances (
    number text NOT NULL,
    since_us bigint NOT NULL,         -- when the number came back to the pool; 0: its first
    holder text,                      -- the subscriber that held it, written as it ended
    balance_fen bigint NOT NULL,
    PRIMARY KEY (number, since_us)
){keyed}"""
"""The balance of each holding of a number: a ledger entry moves the row of the holding its
instant falls in (the latest `since_us` not after it), so a new holder starts from nothing
and what a past holder owes stays on its holding. Provider accounts have one holding, 0."""
HOLDING_BACKFILL = (
    "INSERT INTO holding_balances (number, since_us, balance_fen) "
    "SELECT number, at_us, 0 FROM number_history WHERE to_status = 'available' "
    "GROUP BY number, at_us",
    "INSERT INTO holding_balances (number, since_us, balance_fen) "
    "SELECT number, since_us, SUM(amount_fen) FROM ("
    " SELECT l.number, l.amount_fen, COALESCE((SELECT MAX(h.at_us) FROM number_history AS h"
    "  WHERE h.number = l.number AND h.to_status = 'available' AND h.at_us <= l.at_us), 0)"
    "  AS since_us FROM ledger AS l) AS entries WHERE true GROUP BY number, since_us "
    "ON CONFLICT (number, since_us) DO UPDATE SET balance_fen = excluded.balance_fen",
)
"""Version 16 splits each number's balance by the holdings its history shows; the holders of
holdings that ended before it are not known (the history names them in words only)."""

MENU_COLUMNS = tuple(
    f"ALTER TABLE cdrs ADD COLUMN {name} text" for name in ("menu_path", "menu_digits", "language")
)
"""What the IVR menus leave on a CDR (router.storage.cdr.CDR says what each holds)."""
MENU_PATH_INDEX = (
    "CREATE INDEX cdrs_menu_paths ON cdrs (number, started_us, menu_path)"
    " WHERE menu_path IS NOT NULL"
)
"""A report's menu paths read this index only: the calls without a menu are not in it, and
the path is in it, so no CDR row is read (a number's 30 days were 100,000 rows read)."""
RECORDING_COLUMNS = (
    "ALTER TABLE cdrs ADD COLUMN recording_path text",
    "ALTER TABLE cdrs ADD COLUMN recording_purged_at text",
    "CREATE INDEX cdrs_recordings ON cdrs (number, started_us) WHERE recording_path IS NOT NULL"
    " AND recording_purged_at IS NULL",
)
"""A call's recording and when its retention ran out; the index finds the recordings
`recordings purge` may remove without reading the calls that have none."""

SURVEY_COLUMNS = (
    "ALTER TABLE cdrs ADD COLUMN survey_score integer",
    "CREATE INDEX cdrs_survey_scores ON cdrs (number, started_us, survey_score)"
    " WHERE survey_score IS NOT NULL",
)
"""The caller's score after an answered call; a report's scores read the index only (the
calls nobody scored are not in it)."""

RESERVATION_COLUMNS = tuple(
    f"ALTER TABLE numbers ADD COLUMN {name} bigint"
    for name in ("reservation_since_us", "reservation_until_us")
)
"""The period the current or last reservation of a number was granted, kept after it ends:
the same provider waits as long before reserving it again, and a withdrawn application
returns to it while it runs. Empty on rows of numbers reserved before version 15."""

# One row per router name while a router runs under it (router.lease): the instance holding
# it renews `expires_us` every heartbeat, and a start finding another instance's lease not yet
# expired is refused, so two routers never adopt each other's calls.
ROUTER_LEASES = """CREATE TABLE router_leases (
    router text PRIMARY KEY,          -- router_name ('' for a SQLite file's one router)
    instance text NOT NULL,           -- random id of the running router that holds it
    holder text NOT NULL,             -- host, pid and FastAGI address, for messages
    expires_us bigint NOT NULL        -- UTC microseconds, on the database's clock
){keyed}"""
LEASE_SPOOL_COLUMN = ("ALTER TABLE router_leases ADD COLUMN spool text",)
"""The spool_dir the holder journals to (router.startup.spool_identity: the host's name and
a token kept in the directory): a router holding that directory's lock is the holder's
restart, the holder dead, and takes its lease over at once. Empty on leases of routers
before version 20."""


PROVIDER_WARNING_COLUMN = (
    "ALTER TABLE providers ADD COLUMN low_balance_warning_fen bigint NOT NULL DEFAULT 5000",
)
"""A service provider's low-balance warning threshold (router.money.booking_alerts): the
provider is warned when a booking takes its balance below it. Providers added before version
22 warn under 50.00, the default a number's account has (rating.tariff)."""


def rerated_call_sql(ref: str) -> str:
    """SQL of the call id in the ref `ref` of a re-rating adjustment, 'rerate:<call id>:<n>'
    (rating.rerating.rerate_ref): what is left without the prefix and the trailing ':<n>'."""
    kept = f"rtrim({ref}, '0123456789')"
    start = len(RERATE_PREFIX) + 1
    return f"substr({kept}, {start}, length({kept}) - {start})"


def is_rerating(alias: str) -> str:
    """SQL: the ledger row `alias` is a re-rating adjustment."""
    prefix = f"substr({alias}.ref, 1, {len(RERATE_PREFIX)}) = '{RERATE_PREFIX}'"
    return f"{alias}.kind = 'adjustment' AND {prefix}"


RERATED_CALL_COST = f"""UPDATE usage SET cost_fen = cost_fen - NEW.amount_fen
         WHERE number = NEW.number AND EXISTS (SELECT 1 FROM ledger AS c
           WHERE c.number = NEW.number AND c.kind = 'call' AND c.ref = {rerated_call_sql("NEW.ref")}
             AND usage.period IN (c.month, c.day))"""
"""A re-rating adjustment (`NEW`, for each engine's trigger) re-prices a call: the counters of
the month and day of the call's entry move by what its cost changed, so the caps count the new
price where they counted the old one, whenever the re-rating runs."""
RERATED_COST_BACKFILL = f"""UPDATE usage SET cost_fen = cost_fen - COALESCE((
    SELECT SUM(a.amount_fen) FROM ledger AS a JOIN ledger AS c ON c.number = a.number
      AND c.kind = 'call' AND c.ref = {rerated_call_sql("a.ref")}
    WHERE a.number = usage.number AND {is_rerating("a")} AND usage.period IN (c.month, c.day)
  ), 0)
WHERE number IN (SELECT a.number FROM ledger AS a WHERE {is_rerating("a")})"""
"""Version 18 moves the counters by the re-rating adjustments booked before it; each engine's
trigger moves them by those booked after (RERATED_CALL_COST)."""

BALANCE_WATCH = """CREATE TABLE balance_watch (
    number text PRIMARY KEY,
    since_us bigint NOT NULL,         -- the holding whose balance was seen (holding_balances)
    seen_fen bigint NOT NULL          -- that balance as the last booking's watch read it
){keyed}"""
"""The prepaid balance each number's bookings last saw: a booking reads the balance after its
entries under this row's lock and compares it with the one seen before, so that bookings at
once (routers sharing a database, commands, the console) warn of a threshold crossed once.
The lock is the upsert of the row; a row of a past holding counts as none."""


def holding_at(alias: str) -> str:
    """SQL: the start of the holding the ledger row `alias` falls in (schema.HOLDING_BALANCES:
    the latest `since_us` not after its instant; 0 for the number's first)."""
    return (
        "COALESCE((SELECT MAX(h.since_us) FROM holding_balances AS h"
        f" WHERE h.number = {alias}.number AND h.since_us <= {alias}.at_us), 0)"
    )


CURRENT_HOLDING = (
    "COALESCE((SELECT MAX(h.since_us) FROM holding_balances AS h WHERE h.number = ?), 0)"
)
"""SQL: the start of the number's current holding (parameter: the number)."""

HOLDING_USAGE = """CREATE TABLE usage_by_holding (
    number text NOT NULL,
    since_us bigint NOT NULL,         -- the holding (holding_balances.since_us); 0: the first
    period text NOT NULL,             -- YYYY-MM or YYYY-MM-DD
    cost_fen bigint NOT NULL DEFAULT 0,
    included_used integer NOT NULL DEFAULT 0,
    PRIMARY KEY (number, since_us, period)
){keyed}"""
HOLDING_CALL_UNITS = """CREATE TABLE call_units_by_holding (
    number text NOT NULL,
    since_us bigint NOT NULL,
    month text NOT NULL,              -- YYYY-MM
    calls integer NOT NULL,
    PRIMARY KEY (number, since_us, month)
){keyed}"""
"""Version 21: the counters a call's caps, included minutes and `account show` read, kept per
holding of the number (renamed `usage` and `call_units` once filled), so the next holder of a
number back from the pool mid-month counts its own calls only."""
_CALL_MOVES = (
    f"SELECT c.number, {holding_at('c')} AS since_us, c.{{period}} AS period,"
    " -c.amount_fen AS cost_fen, {included} AS included_used"
    " FROM ledger AS c WHERE c.kind = 'call'"
)
_RERATING_MOVES = (
    f"SELECT c.number, {holding_at('c')} AS since_us, c.{{period}} AS period,"
    " -a.amount_fen AS cost_fen, 0 AS included_used"
    " FROM ledger AS a JOIN ledger AS c ON c.number = a.number AND c.kind = 'call'"
    f" AND c.ref = {rerated_call_sql('a.ref')} WHERE {is_rerating('a')}"
)
HOLDING_USAGE_BACKFILL = (
    "INSERT INTO usage_by_holding (number, since_us, period, cost_fen, included_used)"
    " SELECT number, since_us, period, SUM(cost_fen), SUM(included_used) FROM ("
    + " UNION ALL ".join(
        (
            _CALL_MOVES.format(period="month", included="c.included_seconds"),
            _CALL_MOVES.format(period="day", included="0"),
            _RERATING_MOVES.format(period="month"),
            _RERATING_MOVES.format(period="day"),
        )
    )
    + ") AS moves GROUP BY number, since_us, period",
    "INSERT INTO call_units_by_holding (number, since_us, month, calls)"
    " SELECT u.number, COALESCE((SELECT MAX(h.since_us) FROM holding_balances AS h"
    " WHERE h.number = u.number AND h.since_us <= (SELECT MIN(c.started_us) FROM cdrs AS c"
    " WHERE c.number = u.number AND substr(c.started_at, 1, 7) = u.month)), 0), u.month, u.calls"
    " FROM call_units AS u",
)
"""Version 21 rebuilds the cost counters from the ledger (the calls' entries and their
re-ratings, each in the holding of the call's entry), which is what the triggers summed; the
call-cap units of a month, which no ledger row records, go to the holding in force at the
month's first call (its CDR's own local time): a month in which the number came back to the
pool before the upgrade leaves its next holder's units of that month uncounted, erring toward
connecting its calls."""
HOLDING_TABLES_RENAMED = (
    "DROP TABLE usage",
    "ALTER TABLE usage_by_holding RENAME TO usage",
    "DROP TABLE call_units",
    "ALTER TABLE call_units_by_holding RENAME TO call_units",
)
"""Version 21, once each engine's triggers no longer write the tables replaced."""
HOLDING_CALL_COST = (
    "INSERT INTO usage{as_u} (number, since_us, period, cost_fen, included_used)"
    f" VALUES (NEW.number, {holding_at('NEW')}, NEW.month, -NEW.amount_fen, NEW.included_seconds)"
    " ON CONFLICT (number, since_us, period) DO UPDATE SET cost_fen = {u}cost_fen"
    " - NEW.amount_fen, included_used = {u}included_used + NEW.included_seconds",
    "INSERT INTO usage{as_u} (number, since_us, period, cost_fen)"
    f" VALUES (NEW.number, {holding_at('NEW')}, NEW.day, -NEW.amount_fen)"
    " ON CONFLICT (number, since_us, period) DO UPDATE SET cost_fen = {u}cost_fen"
    " - NEW.amount_fen",
)
"""From version 21 a call's entry (`NEW`, for each engine's trigger) moves the month's and
day's cost and the included seconds of the holding its instant falls in; `{as_u}` and `{u}`
alias the table where the engine allows it (a SQLite trigger does not)."""
HOLDING_RERATED_CALL_COST = f"""UPDATE usage SET cost_fen = cost_fen - NEW.amount_fen
         WHERE number = NEW.number AND EXISTS (SELECT 1 FROM ledger AS c
           WHERE c.number = NEW.number AND c.kind = 'call' AND c.ref = {rerated_call_sql("NEW.ref")}
             AND usage.period IN (c.month, c.day) AND usage.since_us = {holding_at("c")})"""
"""From version 21 a re-rating adjustment moves the counters of its call's month and day in
its call's holding (RERATED_CALL_COST, by holding)."""

LEDGER_REFUSALS = ("ledger rows are never changed", "ledger rows are never deleted")
"""What the ledger's triggers say to an UPDATE or a DELETE: it is append-only."""


VERSIONS: dict[int, Sequence[str]] = {
    1: (CDRS, LEGS, *CDR_INDEXES),
    2: (LEDGER, LEDGER_INDEX, BALANCES, USAGE),
    3: (),  # each engine's own steps to the schema both now share
    4: (
        CONSOLE_USERS,
        CONSOLE_SESSIONS,
        CONSOLE_SESSIONS_INDEX,
        AUDIT_LOG,
        AUDIT_LOG_INDEX,
        PLAN_VERSIONS,
        CALL_HOURS,
        CALL_HOUR_REGIONS,
    ),
    5: (CALL_DAYS, CALL_DAY_REGIONS),
    6: (
        NUMBERS,
        *NUMBERS_INDEXES,
        NUMBER_HISTORY,
        NUMBER_HISTORY_INDEX,
        PROVIDERS,
        SUBSCRIBERS,
    ),
    7: (NUMBER_TERMS,),
    8: (PIN_FAILURES, PIN_GUARD),
    9: MENU_COLUMNS,
    10: (MENU_PATH_INDEX,),
    11: RECORDING_COLUMNS,
    12: (*TAIL_INDEXES, "ANALYZE numbers"),
    13: SURVEY_COLUMNS,
    14: (LOGIN_FAILURES,),
    15: RESERVATION_COLUMNS,
    16: (HOLDING_BALANCES, *HOLDING_BACKFILL),
    17: (ROUTER_LEASES,),
    18: (RERATED_COST_BACKFILL,),
    19: (BALANCE_WATCH,),
    20: LEASE_SPOOL_COLUMN,
    21: (HOLDING_USAGE, HOLDING_CALL_UNITS, *HOLDING_USAGE_BACKFILL),
    22: PROVIDER_WARNING_COLUMN,
}
"""The tables each version adds, on every engine; a new table is a new version here."""


def migrations(
    dialect: Dialect, engine_steps: Mapping[int, Sequence[str]]
) -> tuple[Migration, ...]:
    """Every version's statements for one engine: the shared tables, then the engine's own
    steps of that version (its triggers, and how it came to agree with the other)."""
    return tuple(
        (*(dialect.render(sql) for sql in VERSIONS[version]), *engine_steps.get(version, ()))
        for version in sorted(VERSIONS)
    )
