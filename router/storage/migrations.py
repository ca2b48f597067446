"""The PostgreSQL schema, one migration per version, recorded in `schema_version`.

A version means the same on both engines (router/storage/sqlite.py keeps SQLite's): 1 the CDRs and
their legs, 2 the ledger, balances and usage counters. PostgreSQL runs DDL in transactions,
so a migration lands whole or not at all; an advisory lock held for that transaction lets
several routers start at once on an empty database: one migrates, the others wait for it
and find nothing left to do.

Differences from SQLite, each for a reason: money in CDRs is numeric (exact, and summable
in SQL); times stay ISO-8601 text, as the CDR keeps the UTC offset it was recorded in,
beside microsecond integers for ordering; each CDR names the router that started it, so a
router restarting closes only its own calls as interrupted, never another's live ones; the
month's call count sits in a table of its own (`call_units`), so that routers reserving
units of a cap never queue behind a ledger batch holding the cost counters.
"""

from __future__ import annotations

import asyncpg

from router.storage.protocol import StoreUnavailable

MIGRATION_LOCK = 0x400_5C4E3A
"""pg_advisory_xact_lock key taken while the schema is read and migrated."""

_CDRS = (
    """CREATE TABLE cdrs (
        call_id text PRIMARY KEY,
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
        caller_share numeric(20, 2),   -- yuan, exact to the fen
        callee_share numeric(20, 2),
        total numeric(20, 2),
        tariff_id text,
        note text,
        router text NOT NULL           -- the router that started the call
    )""",
    """CREATE TABLE legs (
        call_id text NOT NULL,
        seq integer NOT NULL,
        destination text NOT NULL,
        dial_status text NOT NULL,
        started_at text NOT NULL,
        ring_seconds integer NOT NULL,
        talk_seconds integer NOT NULL,
        forward_reason text NOT NULL,
        PRIMARY KEY (call_id, seq)
    )""",
    "CREATE INDEX cdrs_by_number_start ON cdrs (number, started_us)",
    "CREATE INDEX cdrs_by_caller ON cdrs (caller, started_us)",
    "CREATE INDEX cdrs_by_caller_raw ON cdrs (caller_raw, started_us)",
    "CREATE INDEX cdrs_by_start ON cdrs (started_us)",
    "CREATE INDEX cdrs_in_progress ON cdrs (router, started_us) WHERE outcome = 'in_progress'",
)

_ACCOUNTS = (
    """CREATE TABLE ledger (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
    )""",
    "CREATE INDEX ledger_by_number_time ON ledger (number, at_us)",
    """CREATE TABLE balances (
        number text PRIMARY KEY,
        balance_fen bigint NOT NULL
    )""",
    """CREATE TABLE usage (
        number text NOT NULL,
        period text NOT NULL,             -- YYYY-MM or YYYY-MM-DD
        cost_fen bigint NOT NULL DEFAULT 0,
        included_used integer NOT NULL DEFAULT 0,
        PRIMARY KEY (number, period)
    )""",
    # Units of the monthly call cap, apart from `usage`: a ledger batch holds its number's
    # cost rows until it commits, and a call reserving its unit must not wait for that.
    """CREATE TABLE call_units (
        number text NOT NULL,
        month text NOT NULL,              -- YYYY-MM
        calls integer NOT NULL,
        PRIMARY KEY (number, month)
    )""",
    """CREATE FUNCTION ledger_refuses_changes() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP = 'UPDATE' THEN
           RAISE EXCEPTION 'ledger rows are never changed';
         END IF;
         RAISE EXCEPTION 'ledger rows are never deleted';
       END $$""",
    """CREATE TRIGGER ledger_rows_are_never_changed BEFORE UPDATE ON ledger
       FOR EACH ROW EXECUTE FUNCTION ledger_refuses_changes()""",
    """CREATE TRIGGER ledger_rows_are_never_deleted BEFORE DELETE ON ledger
       FOR EACH ROW EXECUTE FUNCTION ledger_refuses_changes()""",
    """CREATE TRIGGER ledger_is_never_truncated BEFORE TRUNCATE ON ledger
       FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuses_changes()""",
    """CREATE FUNCTION ledger_moves_the_counters() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         INSERT INTO balances AS b (number, balance_fen) VALUES (NEW.number, NEW.amount_fen)
         ON CONFLICT (number) DO UPDATE SET balance_fen = b.balance_fen + NEW.amount_fen;
         IF NEW.kind = 'call' THEN
           INSERT INTO usage AS u (number, period, cost_fen, included_used)
           VALUES (NEW.number, NEW.month, -NEW.amount_fen, NEW.included_seconds)
           ON CONFLICT (number, period) DO UPDATE SET
             cost_fen = u.cost_fen - NEW.amount_fen,
             included_used = u.included_used + NEW.included_seconds;
           INSERT INTO usage AS u (number, period, cost_fen)
           VALUES (NEW.number, NEW.day, -NEW.amount_fen)
           ON CONFLICT (number, period) DO UPDATE SET cost_fen = u.cost_fen - NEW.amount_fen;
         END IF;
         RETURN NULL;
       END $$""",
    """CREATE TRIGGER ledger_moves_the_counters AFTER INSERT ON ledger
       FOR EACH ROW EXECUTE FUNCTION ledger_moves_the_counters()""",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_CDRS, _ACCOUNTS)
SCHEMA_VERSION = len(MIGRATIONS)

_CREATE_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)"
_CURRENT_VERSION = "SELECT COALESCE(MAX(version), 0) FROM schema_version"


async def migrate(conn: asyncpg.Connection) -> tuple[int, int]:
    """Bring the schema up to SCHEMA_VERSION; returns (version before, version after).

    Raises StoreUnavailable for a schema newer than this router knows: it must not write
    into tables whose meaning it does not know.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(_CREATE_VERSION_TABLE)
        current: int = await conn.fetchval(_CURRENT_VERSION)
        if current > SCHEMA_VERSION:
            raise StoreUnavailable(
                f"database schema version {current} is newer than this router's {SCHEMA_VERSION}"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version - 1]:
                await conn.execute(statement)
            await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", version)
    return current, SCHEMA_VERSION


async def schema_version(conn: asyncpg.Connection) -> int:
    """The version the database records; 0 before the first migration."""
    exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    return await conn.fetchval(_CURRENT_VERSION) if exists else 0
