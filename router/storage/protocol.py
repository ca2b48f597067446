"""What the rest of the router asks of a store, whichever engine keeps the data.

The daemon, the CDR writer, accounting, billing, re-rating, the AMI reconciler and every
command are typed against `Store` and nothing else; `router.storage.location` picks the
engine from `store:`. A store says `StoreUnavailable` whenever its database cannot be
reached or written, and nothing else about its engine, so the writer knows to spool and
a command can say which store it could not use.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from numbering.lifecycle import Change, NumberRecord
from rating.ledger import LedgerEntry, LedgerKind
from rating.minimum import RecordedTerms
from router.storage.cdr import CDR, CdrOp, Outcome
from router.storage.console_rows import (
    AuditEntry,
    CallMix,
    HourBucket,
    MenuPathCount,
    PlanVersion,
    RegionCount,
    SurveyScores,
    UserRow,
)
from router.storage.number_rows import HistoryEntry, PartyRow
from router.storage.rows import (
    HeldBefore,
    Holding,
    LeaseHolder,
    PinTally,
    Recorded,
    UsageSnapshot,
)

INTERRUPTED_NOTE = "router restarted"


class StoreUnavailable(Exception):
    """The database cannot be reached or written now; keep the data and try again later."""


class Store(Protocol):
    """CDRs, the ledger, balances, usage counters and call-cap units of the 400 numbers."""

    async def open(self) -> None:
        """Connect, creating or migrating the schema when needed."""

    async def close(self) -> None: ...

    # --- CDRs -----------------------------------------------------------------------------

    async def apply(self, ops: Sequence[CdrOp]) -> None:
        """Apply the ops, with the effect of one by one in order, in one transaction.

        Idempotent: applying ops again (a replay) changes nothing. A start whose call id
        the store holds for another call (a repeat on another router, or before a restart)
        is keyed `UNIQUEID~N`, and the session's later ops follow it (router.storage.repeats).
        """

    def stored_id(self, call_id: str) -> str:
        """The id the store keyed the CDR of this router's session `call_id` by."""

    def with_rekeys(self, ops: Sequence[CdrOp]) -> list[CdrOp]:
        """`ops` as the journal keeps them: each session among them keyed apart announced
        ahead (`Rekeyed`), for a replay by a later run."""

    async def close_interrupted(self, now: datetime, routers: Sequence[str] = ()) -> int:
        """Close this router's calls (and those of `routers`, routers that will not come
        back) started by `now` and still in progress as interrupted; return how many.

        Run at start-up without an AMI link: such calls were left open by a router that
        died. Each ends at its last known moment (its last leg's end, else its start).
        """

    async def stranded_calls(self, now: datetime, routers: Sequence[str] = ()) -> list[CDR]:
        """This router's calls (and those of `routers`) started by `now` and still in
        progress, with their legs: what a restarting router asks Asterisk about."""

    async def query_cdrs(
        self,
        *,
        number: str | None = None,
        caller: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        outcome: Outcome | None = None,
        limit: int | None = None,
        older_than: CDR | None = None,
    ) -> list[CDR]:
        """CDRs newest first with their legs; `since` inclusive, `until` exclusive.
        `older_than`: only the calls listed after that one, so a long listing is read a
        page at a time, each page from where the last ended (router.storage.cdr_pages)."""

    async def answered_calls(
        self,
        since: datetime,
        until: datetime,
        *,
        number: str | None = None,
        after: CDR | None = None,
        limit: int,
    ) -> list[CDR]:
        """Up to `limit` answered calls started in [since, until) (of `number` only, if
        given) with their legs, oldest start first, ties by call id; `after`: only the calls
        listed after that one, so re-rating reads a month a page at a time, each page from
        where the last ended (router.money.answer_order)."""

    async def answered_count(
        self, since: datetime, until: datetime, *, number: str | None = None
    ) -> int:
        """How many calls `answered_calls` lists over the range, counted in the store."""

    async def get_cdr(self, call_id: str) -> CDR | None: ...

    async def get_cdrs(self, call_ids: Sequence[str]) -> list[CDR]:
        """The CDRs of these calls that exist, newest first, in one read."""

    # --- accounts: ledger, balances, usage counters, call caps ----------------------------

    async def usage(self, number: str, month: str, day: str) -> UsageSnapshot:
        """Month-to-date and day-to-date counters and the balance of the number's current
        holding (a past holder's calls count toward none of them): a few keyed reads."""

    async def reserve_call(self, number: str, month: str, cap: int) -> bool:
        """Count one more call this month of the number's current holding if that stays
        within `cap`, in one statement, so routers sharing the database never both take the
        last unit."""

    async def release_call(self, number: str, month: str) -> None:
        """Give back a reserved call that was never answered."""

    async def post_ledger(self, entries: Sequence[LedgerEntry]) -> int:
        """Book entries at once (payments, rent, fees); returns how many were new."""

    async def ledger(
        self,
        number: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        kind: LedgerKind | None = None,
    ) -> list[LedgerEntry]:
        """Entries in booking order; `since` inclusive, `until` exclusive."""

    async def ledger_refs(self, number: str, kind: LedgerKind, refs: Sequence[str]) -> set[str]:
        """Which of `refs` the account has an entry of `kind` with, read by key (a booking
        asks of its own entries, however many the account has)."""

    async def holdings(self, number: str) -> list[Holding]:
        """The number's holdings with their balances and ended holders (each with its
        service provider), oldest first; the last is the current one, whose balance `usage`
        reads. Empty before any entry or return to the pool."""

    async def watch_balance(self, number: str) -> tuple[Decimal | None, Decimal]:
        """The balance of the number's current holding the last watch saw (None: none of
        this holding yet) and the balance now, which this watch leaves as the one seen. One
        step with every other watch of the number, on any router or command: a booking
        watches after it wrote, so each movement of the balance is seen by one watch."""

    async def holdings_of(self, holder: str) -> list[HeldBefore]:
        """The holdings `holder` held and left (the number came back to the pool), by
        number, oldest first, each with the balance it left: what the subscriber still owes,
        or is owed, across the numbers it no longer holds."""

    async def included_seconds_booked(self, number: str) -> dict[str, int]:
        """call id -> included seconds its call entry took, for the calls that took any.

        LedgerEntry does not carry them; re-rating keeps what each call took.
        """

    # --- each number's terms: minimum monthly consumption and charged rate --------------

    async def record_terms(self, records: list[RecordedTerms]) -> None:
        """Add rows to numbers' terms histories, in one transaction."""

    async def terms_history(self, number: str) -> list[RecordedTerms]:
        """A number's recorded terms, oldest first."""

    # --- PIN guessing: failed PIN calls per caller and number, shared by the routers -------

    async def count_pin_failure(
        self,
        number: str,
        caller: str,
        call_id: str,
        at: datetime,
        *,
        window: timedelta,
        limit: int,
        block: timedelta,
    ) -> PinTally:
        """Count one failed PIN call of `caller` ('' when withheld) to `number` at `at`;
        with `limit` failures within `window` before `at`, the caller is refused until
        `at + block`. Routers counting the same caller at once take turns."""

    async def pin_blocked_until(self, number: str, caller: str, now: datetime) -> datetime | None:
        """Until when `caller` is refused on `number` for guessing its PIN; None if not."""

    # --- call recordings: what `recordings purge` reads and marks -------------------------

    async def recorded_numbers(self) -> list[str]:
        """The numbers with recordings not yet purged."""

    async def recordings_before(
        self, number: str, before: datetime, after: Recorded | None = None, limit: int = 1000
    ) -> list[Recorded]:
        """`number`'s recordings not yet purged of calls started before `before`, oldest
        first, from the one after `after`, at most `limit`."""

    async def recording_purged(self, call_id: str, at: datetime) -> None:
        """Note on the call's CDR that its recording was removed at `at`."""

    # --- the management console: users, sessions, audit log, plan versions, reports -------

    async def add_user(self, user: UserRow) -> bool:
        """False if the name is taken."""

    async def user(self, name: str) -> UserRow | None: ...

    async def users(self, account: str | None = None) -> list[UserRow]: ...

    async def set_password(
        self, name: str, password_hash: str, keep_session: str | None = None
    ) -> bool:
        """Change a user's password and end its sessions but `keep_session` (a token
        digest); False if there is no such user."""

    async def disable_user(self, name: str) -> bool:
        """Disable a user and end its sessions at once (a departed employee is out now)."""

    async def open_session(self, token_digest: str, user: str, expires: datetime) -> None: ...

    async def session_user(self, token_digest: str, now: datetime) -> UserRow | None:
        """The enabled user of a live session."""

    async def close_session(self, token_digest: str) -> None: ...

    async def login_failures(
        self, keys: Sequence[str], since: datetime, *, besides: str | None = None
    ) -> dict[str, list[datetime]]:
        """When sign-ins failed after `since`, oldest first, per key; attempts under way
        counted, but attempt `besides`."""

    async def login_attempted(
        self, keys: Sequence[str], at: datetime, forget_before: datetime
    ) -> str:
        """Count a sign-in attempt as failed for `keys` until it is settled; its id."""

    async def login_settled(
        self, keys: Sequence[str], attempt: str, forget: Sequence[str] = ()
    ) -> None:
        """An attempt that did not fail no longer counts, nor the failures of `forget`."""

    async def audit(self, entry: AuditEntry) -> None: ...

    async def audit_log(
        self, account: str | None = None, limit: int = 100, older_than: str | None = None
    ) -> list[AuditEntry]:
        """Newest first; one account's, or everyone's; `older_than` an entry's `entry_id`:
        the entries after it, a page following on from the one it ended (none for an id
        the log does not have)."""

    async def save_plan_version(
        self, number: str, source: str, saved_by: str, saved_at: datetime, note: str
    ) -> int:
        """Record a plan as saved; returns its version number (1, 2, ...)."""

    async def plan_versions(self, number: str) -> list[PlanVersion]: ...

    async def plan_version(self, number: str, version: int) -> PlanVersion | None: ...

    async def hourly(
        self, numbers: Sequence[str], since: datetime, until: datetime
    ) -> list[HourBucket]:
        """Calls of these numbers started in [since, until), by UTC hour."""

    async def call_mix(self, numbers: Sequence[str], since: datetime, until: datetime) -> CallMix:
        """The outcomes of those calls, and the answered ones by talk-time class."""

    async def regions(
        self, numbers: Sequence[str], since: datetime, until: datetime
    ) -> list[RegionCount]:
        """Calls started in [since, until) by caller province and city, commonest first:
        every region, so they add up to the calls of the span."""

    async def menu_paths(
        self, numbers: Sequence[str], since: datetime, until: datetime, limit: int = 50
    ) -> list[MenuPathCount]:
        """Calls started in [since, until) by their way through the IVR menus, commonest
        first; calls that met no menu are left out."""

    async def survey_scores(
        self, numbers: Sequence[str], since: datetime, until: datetime
    ) -> list[SurveyScores]:
        """The satisfaction scores of calls started in [since, until), per number that has
        any, by number; calls without a score are left out."""

    async def call_ids(
        self,
        numbers: Sequence[str],
        *,
        caller: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        outcomes: Sequence[str] = (),
        province: str | None = None,
        limit: int | None = 50,
        older_than: CDR | None = None,
    ) -> list[str]:
        """Ids of matching calls, newest first: the console's call-record search.
        `older_than`: only the calls listed after that one, so an export reads its calls a
        page at a time, each page from where the last ended."""

    async def finished_mark(self, numbers: Sequence[str], since: datetime) -> str:
        """Changes whenever a call of these numbers started since `since` ends."""

    # --- numbers: the inventory, its history, providers and subscribers --------------------

    async def add_numbers(self, records: Iterable[NumberRecord], added: datetime) -> int:
        """Put numbers in the pool at once; those already there stay as they are. How many
        were new."""

    async def number_record(self, number: str) -> NumberRecord | None: ...

    async def number_records(self, numbers: Sequence[str]) -> dict[str, NumberRecord]:
        """The records of these numbers that are in the inventory."""

    async def search_numbers(
        self,
        *,
        segment: str | None = None,
        grade: str | None = None,
        premium: bool | None = None,
        pattern: str | None = None,
        status: str | None = None,
        holder: str | None = None,
        subscriber: str | None = None,
        due_by: datetime | None = None,
        limit: int = 50,
    ) -> list[NumberRecord]:
        """Numbers in number order matching every condition given; with `due_by`, the
        numbers due by then whatever their status and holders as written."""

    async def held_numbers(self) -> list[NumberRecord]:
        """Numbers a subscriber holds: those a routing plan should exist for."""

    async def due_numbers(self, now: datetime, limit: int) -> list[NumberRecord]:
        """Numbers whose next time-driven transition fell due by `now`, earliest first."""

    async def record_changes(
        self,
        changes: Sequence[Change],
        due: datetime | None,
        fees: Sequence[Sequence[LedgerEntry]],
        *,
        party: PartyRow | None = None,
        material: PartyRow | None = None,
        replacing: PartyRow | None = None,
    ) -> bool:
        """Write one number's transitions, their history and fees (and `party`, the new
        subscriber they lock it to; or `material`, the real-name material of an existing
        subscriber that had none) in one transaction, if the number is still at the
        version they were made from; else write nothing, False. NameTaken (nothing written)
        when `party`'s name is taken, or `material`'s subscriber has material meanwhile."""

    async def number_history(self, number: str) -> list[HistoryEntry]:
        """Every transition of a number, oldest first."""

    async def add_party(self, party: PartyRow) -> bool:
        """Add a service provider, or a subscriber of one; False if the name is taken."""

    async def providers(self, name: str | None = None) -> list[PartyRow]: ...

    async def set_provider_warning(self, name: str, threshold: Decimal) -> bool:
        """Set a service provider's low-balance warning threshold; False if there is no
        such provider."""

    async def subscribers(
        self, *, name: str | None = None, provider: str | None = None
    ) -> list[PartyRow]: ...

    # --- the lease of a router name (router.lease) -----------------------------------------

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
        """Claim or renew `router`'s lease for `instance` until `seconds` from now on the
        database's clock, if it is free, expired, this instance's already or held for the
        same `spool` (the spool_dir whose lock the claimer holds: its holder is dead), or
        whoever holds it, with `take_over`: None. Else the other instance holding it,
        untouched. Atomic: of two claims at once one wins."""

    async def release_lease(self, router: str, instance: str) -> None:
        """Delete `router`'s lease if `instance` still holds it."""
