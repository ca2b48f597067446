"""How the numbers and providers commands print records: a table for a person, JSON for a
program. Times are shown in the billing zone (in JSON as ISO-8601 with the offset, as `cdr`
and `bill` give them); money in yuan to the fen."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from numbering.lifecycle import Change, NumberRecord
from numbering.segments import operator_of
from rating.ledger import LedgerEntry
from router.storage.number_rows import HistoryEntry, PartyRow


def local(moment: datetime | None, zone: ZoneInfo) -> str:
    return "" if moment is None else f"{moment.astimezone(zone):%Y-%m-%d %H:%M}"


def iso(moment: datetime | None, zone: ZoneInfo) -> str | None:
    """An instant for a program: ISO-8601 with its offset, in the billing zone."""
    return None if moment is None else moment.astimezone(zone).isoformat()


def record_json(record: NumberRecord, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "number": record.number,
        "status": record.status.value,
        "operator": operator_of(record.number).value,
        "grade": record.grade,
        "selection_fee": str(record.selection_fee),
        "since": iso(record.since, zone),
        "until": iso(record.until, zone),
        "provider": record.provider,
        "subscriber": record.subscriber,
    }


def change_json(change: Change, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "number": change.after.number,
        "at": iso(change.at, zone),
        "actor": change.actor,
        "from": change.before.status.value,
        "to": change.after.status.value,
        "reason": change.reason,
        "fees": [
            {"kind": fee.kind, "amount": str(fee.amount), "payer": fee.payer} for fee in change.fees
        ],
    }


def history_json(entry: HistoryEntry, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "at": iso(entry.at, zone),
        "actor": entry.actor,
        "from": entry.from_status,
        "to": entry.to_status,
        "reason": entry.reason,
        "fees": entry.fees,
    }


def party_json(party: PartyRow, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "name": party.name,
        "full_name": party.full_name,
        "licence": party.licence,
        "legal_representative": party.legal_representative,
        "id": party.id_masked,
        "created": iso(party.created_at, zone),
    } | (
        {"provider": party.provider}
        if party.provider
        else {"low_balance_warning": str(party.low_balance_warning)}
    )


def entry_json(entry: LedgerEntry, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "at": iso(entry.at, zone),
        "amount": str(entry.amount),
        "kind": entry.kind.value,
        "ref": entry.ref,
        "note": entry.note,
    }


def print_json(value: object) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )


def print_changes(changes: Sequence[Change], zone: ZoneInfo) -> None:
    """One line a transition: when, the number, from -> to, who, why, fees booked."""
    for change in changes:
        fees = "".join(f"; {fee.kind} {fee.amount} ({fee.payer})" for fee in change.fees)
        print(
            f"{local(change.at, zone)}  {change.after.number}  {change.before.status} -> "
            f"{change.after.status}  by {change.actor}: {change.reason}{fees}"
        )


RECORD_HEADER = ("number", "status", "operator", "grade", "fee", "holder", "until")


def record_row(record: NumberRecord, zone: ZoneInfo) -> tuple[str, ...]:
    holder = record.subscriber or record.provider or ""
    if record.subscriber and record.provider:
        holder = f"{record.subscriber} ({record.provider})"
    return (
        record.number,
        record.status.value,
        operator_of(record.number).value,
        record.grade,
        str(record.selection_fee),
        holder,
        local(record.until, zone),
    )
