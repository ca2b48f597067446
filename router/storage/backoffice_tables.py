"""What the management console keeps beside the calls, over any engine's sessions, written
once: users and their sessions, the audit log, every saved version of a routing plan, and
the aggregate reads of its pages (from the hourly and daily counts of
router.storage.call_counts).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from router.storage import queries
from router.storage.call_counts import DAYS, DURATION_EDGES, HOUR_US, HOURS, UNANSWERED_OUTCOMES
from router.storage.cdr import CDR
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
from router.storage.rows import Row, epoch_us, from_epoch_us
from router.storage.sessions import SessionSource

MERGED_NUMBERS = 64
"""Up to this many numbers, a limited call search reads each number's newest calls apart."""


class BackOfficeTables(SessionSource):
    """The console's part of `Store`."""

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self._connected() as session:
            return await session.fetch(sql, params)

    async def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._single_write() as session:
            return await session.execute(sql, params)

    # --- users and sessions -------------------------------------------------------------

    async def add_user(self, user: UserRow) -> bool:
        """False if the name is taken."""
        changed = await self._execute(
            "INSERT INTO console_users (name, role, account, password_hash, disabled,"
            " created_us) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
            (
                user.name,
                user.role,
                user.account,
                user.password_hash,
                int(user.disabled),
                epoch_us(user.created_at),
            ),
        )
        return changed == 1

    async def user(self, name: str) -> UserRow | None:
        rows = await self._fetch("SELECT * FROM console_users WHERE name = ?", (name,))
        return _user(rows[0]) if rows else None

    async def users(self, account: str | None = None) -> list[UserRow]:
        if account is None:
            rows = await self._fetch("SELECT * FROM console_users ORDER BY name")
        else:
            rows = await self._fetch(
                "SELECT * FROM console_users WHERE account = ? ORDER BY name", (account,)
            )
        return [_user(row) for row in rows]

    async def set_password(
        self, name: str, password_hash: str, keep_session: str | None = None
    ) -> bool:
        """Change a user's password and end its sessions, but the one whose token digest is
        `keep_session` (the user's own, changing its password): whoever knew the old one is
        out now. False if there is no such user."""
        async with self._transaction() as session:
            changed = await session.execute(
                "UPDATE console_users SET password_hash = ? WHERE name = ?", (password_hash, name)
            )
            await session.execute(
                "DELETE FROM console_sessions WHERE user_name = ? AND token_digest <> ?",
                (name, keep_session or ""),
            )
        return changed == 1

    async def disable_user(self, name: str) -> bool:
        """Disable a user and end its sessions at once (a departed employee is out now)."""
        changed = await self._execute(
            "UPDATE console_users SET disabled = 1 WHERE name = ?", (name,)
        )
        await self._execute("DELETE FROM console_sessions WHERE user_name = ?", (name,))
        return changed == 1

    async def open_session(self, token_digest: str, user: str, expires: datetime) -> None:
        await self._execute(
            "INSERT INTO console_sessions (token_digest, user_name, expires_us) VALUES (?, ?, ?)",
            (token_digest, user, epoch_us(expires)),
        )

    async def session_user(self, token_digest: str, now: datetime) -> UserRow | None:
        """The enabled user of a live session."""
        rows = await self._fetch(
            "SELECT u.* FROM console_sessions AS s JOIN console_users AS u"
            " ON u.name = s.user_name WHERE s.token_digest = ? AND s.expires_us > ?"
            " AND u.disabled = 0",
            (token_digest, epoch_us(now)),
        )
        return _user(rows[0]) if rows else None

    async def close_session(self, token_digest: str) -> None:
        await self._execute("DELETE FROM console_sessions WHERE token_digest = ?", (token_digest,))

    # --- failed sign-ins -----------------------------------------------------------------

    async def login_failures(
        self, keys: Sequence[str], since: datetime, *, besides: str | None = None
    ) -> dict[str, list[datetime]]:
        """When sign-ins failed after `since`, oldest first, for each of `keys`; those
        counted so far of an attempt under way included, but attempt `besides`."""
        failures: dict[str, list[datetime]] = {}
        for key in keys:
            rows = await self._fetch(
                "SELECT at_us FROM login_failures WHERE key = ? AND at_us > ? AND id <> ?"
                " ORDER BY at_us",
                (key, epoch_us(since), besides or ""),
            )
            failures[key] = [from_epoch_us(row["at_us"]) for row in rows]
        return failures

    async def login_attempted(
        self, keys: Sequence[str], at: datetime, forget_before: datetime
    ) -> str:
        """A sign-in attempt, counted as failed for each of `keys` until it is settled
        (login_settled), so attempts made at once count each other whatever their outcome;
        returns its id. Failures of those keys not after `forget_before` are dropped."""
        attempt = uuid.uuid4().hex
        async with self._transaction() as session:
            for key in keys:
                await session.execute(
                    "DELETE FROM login_failures WHERE key = ? AND at_us <= ?",
                    (key, epoch_us(forget_before)),
                )
                await session.execute(
                    "INSERT INTO login_failures (key, at_us, id) VALUES (?, ?, ?)",
                    (key, epoch_us(at), attempt),
                )
        return attempt

    async def login_settled(
        self, keys: Sequence[str], attempt: str, forget: Sequence[str] = ()
    ) -> None:
        """An attempt with `keys` that did not fail after all (refused unheard, or let in):
        it no longer counts, and neither do the failures of the keys in `forget`."""
        async with self._transaction() as session:
            for key in keys:
                await session.execute(
                    "DELETE FROM login_failures WHERE key = ? AND id = ?", (key, attempt)
                )
            for key in forget:
                await session.execute("DELETE FROM login_failures WHERE key = ?", (key,))

    # --- audit log -----------------------------------------------------------------------

    async def audit(self, entry: AuditEntry) -> None:
        await self._execute(
            "INSERT INTO audit_log (id, at_us, actor, account, action, target, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                uuid.uuid4().hex,
                epoch_us(entry.at),
                entry.actor,
                entry.account,
                entry.action,
                entry.target,
                entry.detail,
            ),
        )

    async def audit_log(
        self, account: str | None = None, limit: int = 100, older_than: str | None = None
    ) -> list[AuditEntry]:
        conditions, params = (["account = ?"], [account]) if account is not None else ([], [])
        if older_than is not None:  # after that entry in the log's order (keyset)
            after = "SELECT at_us FROM audit_log WHERE id = ?"
            conditions.append(f"(at_us < ({after}) OR (at_us = ({after}) AND id > ?))")
            params += [older_than, older_than, older_than]
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = await self._fetch(
            f"SELECT * FROM audit_log {where} ORDER BY at_us DESC, id LIMIT ?",
            (*params, limit),
        )
        return [
            AuditEntry(
                from_epoch_us(row["at_us"]),
                row["actor"],
                row["account"],
                row["action"],
                row["target"],
                row["detail"],
                row["id"],
            )
            for row in rows
        ]

    # --- plan versions -------------------------------------------------------------------

    async def save_plan_version(
        self, number: str, source: str, saved_by: str, saved_at: datetime, note: str
    ) -> int:
        """Record a plan as saved; returns its version number (1, 2, ...)."""
        for _ in range(5):  # two consoles saving at once: the loser takes the next number
            rows = await self._fetch(
                "SELECT COALESCE(MAX(version), 0) AS latest FROM plan_versions WHERE number = ?",
                (number,),
            )
            version = int(rows[0]["latest"]) + 1
            changed = await self._execute(
                "INSERT INTO plan_versions (number, version, saved_us, saved_by, source, note)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (number, version) DO NOTHING",
                (number, version, epoch_us(saved_at), saved_by, source, note),
            )
            if changed == 1:
                return version
        raise RuntimeError(f"could not record a new version of {number}'s plan")

    async def plan_versions(self, number: str) -> list[PlanVersion]:
        rows = await self._fetch(
            "SELECT * FROM plan_versions WHERE number = ? ORDER BY version DESC", (number,)
        )
        return [_plan_version(row) for row in rows]

    async def plan_version(self, number: str, version: int) -> PlanVersion | None:
        rows = await self._fetch(
            "SELECT * FROM plan_versions WHERE number = ? AND version = ?", (number, version)
        )
        return _plan_version(rows[0]) if rows else None

    # --- aggregate reads of the calls ------------------------------------------------------

    async def hourly(
        self, numbers: Sequence[str], since: datetime, until: datetime
    ) -> list[HourBucket]:
        """Calls of these numbers started in [since, until), by UTC hour.

        Read from the hourly counts: `since` and `until` fall on whole hours (local days
        do, in every zone a 400 number is in)."""
        if not numbers:
            return []
        marks = ", ".join("?" for _ in numbers)
        unanswered = ", ".join(f"'{outcome}'" for outcome in UNANSWERED_OUTCOMES)
        rows = await self._fetch(
            "SELECT hour, SUM(calls) AS calls,"
            " SUM(CASE WHEN outcome = 'answered' THEN calls ELSE 0 END) AS answered,"
            f" SUM(CASE WHEN outcome IN ({unanswered}) THEN calls ELSE 0 END) AS unanswered,"
            " SUM(CASE WHEN outcome = 'answered' THEN seconds ELSE 0 END) AS seconds,"
            " SUM(international) AS international FROM call_hours"
            f" WHERE number IN ({marks}) AND hour >= ? AND hour < ? GROUP BY 1",
            (*numbers, *_hours(since, until)),
        )
        return [
            HourBucket(
                from_epoch_us(int(row["hour"]) * HOUR_US),
                int(row["calls"]),
                int(row["answered"]),
                int(row["unanswered"]),
                int(row["seconds"]),
                int(row["international"]),
            )
            for row in rows
            if int(row["calls"])
        ]

    async def call_mix(self, numbers: Sequence[str], since: datetime, until: datetime) -> CallMix:
        """The outcomes of the calls started in [since, until), and the answered ones in the
        DURATION_EDGES talk-time classes."""
        mix = CallMix({}, [0] * (len(DURATION_EDGES) + 1))
        if not numbers or since >= until:
            return mix
        counted, params = _counted(numbers, since, until, "outcome, duration_class, calls", "calls")
        rows = await self._fetch(
            f"SELECT outcome, duration_class, SUM(calls) AS calls FROM ({counted}) AS counted"
            " GROUP BY 1, 2",
            params,
        )
        for row in rows:
            calls = int(row["calls"])
            if calls:
                mix.outcomes[row["outcome"]] = mix.outcomes.get(row["outcome"], 0) + calls
            if row["outcome"] == "answered":
                mix.durations[int(row["duration_class"])] += calls
        return mix

    async def regions(
        self, numbers: Sequence[str], since: datetime, until: datetime
    ) -> list[RegionCount]:
        """Every region callers came from (a few hundred cities at most), so the figures of
        a report add up to its calls."""
        if not numbers or since >= until:
            return []
        counted, params = _counted(numbers, since, until, "province, city, calls", "regions")
        rows = await self._fetch(
            f"SELECT province, city, SUM(calls) AS calls FROM ({counted}) AS counted"
            " GROUP BY 1, 2 HAVING SUM(calls) > 0 ORDER BY 3 DESC, 1, 2",
            params,
        )
        return [
            RegionCount(row["province"] or None, row["city"] or None, int(row["calls"]))
            for row in rows
        ]

    async def menu_paths(
        self, numbers: Sequence[str], since: datetime, until: datetime, limit: int = 50
    ) -> list[MenuPathCount]:
        if not numbers:
            return []
        marks = ", ".join("?" for _ in numbers)
        rows = await self._fetch(
            "SELECT menu_path, COUNT(*) AS calls FROM cdrs"
            f" WHERE number IN ({marks}) AND started_us >= ? AND started_us < ?"
            " AND menu_path IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?",
            (*numbers, epoch_us(since), epoch_us(until), limit),
        )
        return [MenuPathCount(row["menu_path"], int(row["calls"])) for row in rows]

    async def survey_scores(
        self, numbers: Sequence[str], since: datetime, until: datetime
    ) -> list[SurveyScores]:
        if not numbers:
            return []
        marks = ", ".join("?" for _ in numbers)
        rows = await self._fetch(
            "SELECT number, COUNT(*) AS scored, SUM(survey_score) AS score_sum FROM cdrs"
            f" WHERE number IN ({marks}) AND started_us >= ? AND started_us < ?"
            " AND survey_score IS NOT NULL GROUP BY 1 ORDER BY 1",
            (*numbers, epoch_us(since), epoch_us(until)),
        )
        return [
            SurveyScores(row["number"], int(row["scored"]), int(row["score_sum"])) for row in rows
        ]

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
        """Ids of matching calls, newest first: the call-record search of the console;
        `older_than`, only the calls listed after that one (an export's next page, keyset
        on the listing's order as router.storage.cdr_pages reads).

        With a limit and a few numbers, each number's newest calls are read apart, down its
        (number, started_us) index, and merged: one query over all of them would read every
        call of the span to sort them (a month of three busy numbers is 200,000 calls)."""
        if not numbers:
            return []
        conditions, params = _call_conditions(caller, since, until, outcomes, province)
        if older_than is not None:
            conditions.append(queries.OLDER_THAN)
            params += queries.listing_key(older_than)
        newest = " ORDER BY started_us DESC, call_id DESC"
        if limit is not None and 1 < len(numbers) <= MERGED_NUMBERS:
            parts = [
                f"SELECT call_id, started_us FROM (SELECT call_id, started_us FROM cdrs"
                f" WHERE {' AND '.join(['number = ?', *conditions])}{newest} LIMIT ?) AS n{i}"
                for i in range(len(numbers))
            ]
            rows = await self._fetch(
                f"SELECT call_id FROM ({' UNION ALL '.join(parts)}) AS merged{newest} LIMIT ?",
                [value for n in numbers for value in (n, *params, limit)] + [limit],
            )
            return [row["call_id"] for row in rows]
        where = _of_numbers(numbers, conditions)
        sql = f"SELECT call_id FROM cdrs WHERE {where}{newest}"
        params = [*numbers, *params]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [row["call_id"] for row in await self._fetch(sql, params)]

    async def finished_mark(self, numbers: Sequence[str], since: datetime) -> str:
        """A mark that changes whenever a call of these numbers started since `since` ends:
        the live dashboard redraws when it moves."""
        if not numbers:
            return "0:0"
        marks = ", ".join("?" for _ in numbers)
        rows = await self._fetch(
            "SELECT COUNT(*) AS finished, MAX(started_us) AS newest FROM cdrs"
            f" WHERE number IN ({marks}) AND started_us >= ? AND outcome <> 'in_progress'",
            (*numbers, epoch_us(since)),
        )
        return f"{int(rows[0]['finished'] or 0)}:{int(rows[0]['newest'] or 0)}"


def _of_numbers(numbers: Sequence[str], conditions: Sequence[str]) -> str:
    """The WHERE of a call search over `numbers` (given as parameters first) and the
    search's other conditions."""
    return " AND ".join([f"number IN ({', '.join('?' for _ in numbers)})", *conditions])


def _call_conditions(
    caller: str | None,
    since: datetime | None,
    until: datetime | None,
    outcomes: Sequence[str],
    province: str | None,
) -> tuple[list[str], list[Any]]:
    """The conditions and parameters of the console's call-record search."""
    conditions: list[str] = []
    params: list[Any] = []
    if caller:
        conditions.append("(caller = ? OR caller_raw = ?)")
        params += [caller, caller]
    if since is not None:
        conditions.append("started_us >= ?")
        params.append(epoch_us(since))
    if until is not None:
        conditions.append("started_us < ?")
        params.append(epoch_us(until))
    if outcomes:
        conditions.append(f"outcome IN ({', '.join('?' for _ in outcomes)})")
        params += list(outcomes)
    if province:
        conditions.append("(province = ? OR city = ?)")
        params += [province, province]
    return conditions, params


def _hours(since: datetime, until: datetime) -> tuple[int, int]:
    """[since, until) as hour numbers; a partial hour at either end counts whole."""
    return epoch_us(since) // HOUR_US, -(-epoch_us(until) // HOUR_US)


def _counted(
    numbers: Sequence[str], since: datetime, until: datetime, columns: str, kind: str
) -> tuple[str, list[Any]]:
    """A UNION ALL of the counts of [since, until): the whole UTC days it holds from the
    daily table, and the hours before the first and after the last of them from the
    hourly one. `kind` is "calls" (outcomes and talk-time classes) or "regions"."""
    first_hour, end_hour = _hours(since, until)
    first_day, end_day = -(-first_hour // 24), end_hour // 24
    if first_day >= end_day:  # no whole day: hours only
        days, hours = None, [(first_hour, end_hour)]
    else:
        days, hours = (first_day, end_day), [(first_hour, first_day * 24), (end_day * 24, end_hour)]
    marks = ", ".join("?" for _ in numbers)
    parts: list[str] = []
    params: list[Any] = []
    spans = [(DAYS, days)] if days else []
    spans += [(HOURS, span) for span in hours if span[0] < span[1]]
    for period, (low, high) in spans:
        table = period.calls if kind == "calls" else period.regions
        parts.append(
            f"SELECT {columns} FROM {table} WHERE number IN ({marks})"
            f" AND {period.column} >= ? AND {period.column} < ?"
        )
        params += [*numbers, low, high]
    return " UNION ALL ".join(parts), params


def _user(row: Mapping[str, Any]) -> UserRow:
    return UserRow(
        row["name"],
        row["role"],
        row["account"],
        row["password_hash"],
        bool(row["disabled"]),
        from_epoch_us(row["created_us"]),
    )


def _plan_version(row: Mapping[str, Any]) -> PlanVersion:
    return PlanVersion(
        row["number"],
        int(row["version"]),
        from_epoch_us(row["saved_us"]),
        row["saved_by"],
        row["source"],
        row["note"],
    )
