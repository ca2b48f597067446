"""Call records: search, one call's detail, and the CSV and Excel exports of a search."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response

from console.context import Console
from console.reports import read_day
from console.streamed_download import StreamedDownload
from console.web import audit, console_of, not_found, render, scope_of, user_of
from dialplan.regions import canonical_province, short_city_name, split_place
from router.commands.arguments import caller_id
from router.commands.spreadsheet import cdr_values, spreadsheet_cell
from router.commands.workbook import XLSX_MEDIA_TYPE, ExportSheet
from router.recordings.files import recording_file
from router.storage.cdr import CDR, TIME_FIELDS, Outcome, cdr_to_json
from router.storage.protocol import StoreUnavailable

log = logging.getLogger("hotline400.console")

PAGE_SIZE = 50
SPREADSHEET_BOM = "\ufeff"
"""Opens the export: without it Excel reads UTF-8 in the system's code page (GBK on a
Chinese Windows) and every 山东 turns to mojibake."""
EXPORT_BATCH = 500
TOO_MANY_FOR_EXCEL = 422
"""The status of an Excel export refused for its size: understood, but not done this way."""
READ_CHUNK = 1 << 16
EXPORT_COLUMNS = (
    "call_id",
    "number",
    "caller",
    "caller_raw",
    "province",
    "city",
    "area_code",
    "started_at",
    "answered_at",
    "ended_at",
    "billable_seconds",
    "outcome",
    "rule",
    "caller_share",
    "callee_share",
    "total",
    "tariff_id",
    "note",
    "menu_path",
    "menu_digits",
    "language",
    "survey_score",
    "legs",
)
"""The columns of the CSV and Excel exports."""


@dataclass(frozen=True, slots=True)
class Search:
    """A call-record search as the form states it; `problems` for fields it could not read
    and for days given the wrong way round (searched the right way round)."""

    number: str
    caller: str
    since: date | None
    until: date | None
    outcome: str
    region: str
    problems: tuple[str, ...]

    @classmethod
    def from_query(cls, request: Request) -> Search:
        query = request.query_params
        problems: list[str] = []
        dates = []
        for name in ("since", "until"):
            text = query.get(name, "").strip()
            try:
                dates.append(read_day(text) if text else None)
            except ValueError as error:
                problems.append(f"{name}: {error}")
                dates.append(None)
        if dates[0] is not None and dates[1] is not None and dates[1] < dates[0]:
            problems.append("until: the last day comes before the first")
            dates.reverse()  # the days between them, as the reports page reads them
        outcome = query.get("outcome", "")
        if outcome and outcome not in {*Outcome, "unanswered"}:
            problems.append(f"outcome: {outcome!r} is not an outcome")
            outcome = ""
        return cls(
            query.get("number", "").strip(),
            query.get("caller", "").strip(),
            dates[0],
            dates[1],
            outcome,
            query.get("region", "").strip(),
            tuple(problems),
        )

    def numbers(self, visible: Sequence[str]) -> list[str]:
        """The searched numbers; someone else's number is not found, like any of its pages."""
        if self.number and self.number not in visible:
            raise not_found()
        return [n for n in visible if not self.number or n == self.number]

    def in_words(self) -> str:
        """The filters as the audit log keeps them: what a download of call records held."""
        fields = (
            ("number", self.number),
            ("caller", self.caller),
            ("since", self.since),
            ("until", self.until),
            ("outcome", self.outcome),
            ("region", self.region),
        )
        return ", ".join(f"{name} {value}" for name, value in fields if value) or "no filter"

    def outcomes(self) -> tuple[str, ...]:
        if self.outcome == "unanswered":
            return (Outcome.BUSY.value, Outcome.NOANSWER.value)
        return (self.outcome,) if self.outcome else ()


async def calls_of(console: Console, call_ids: Sequence[str]) -> list[CDR]:
    return await console.store.get_cdrs(call_ids)


def _filters(request: Request, search: Search) -> dict[str, Any]:
    """The store's filters of a search (its numbers the user's, its days the console's)."""
    console = console_of(request)
    zone = console.zone
    since = datetime.combine(search.since, time(), zone) if search.since else None
    return {
        "numbers": search.numbers(console.numbers_for(user_of(request))),
        "caller": caller_id(search.caller) if search.caller else None,
        "since": scope_of(request).start(since),
        "until": datetime.combine(search.until + timedelta(days=1), time(), zone)
        if search.until
        else None,
        "outcomes": search.outcomes(),
        "province": _region_key(search.region) or None,
    }


def _region_key(typed: str) -> str:
    """The province or city a region typed names, as the store keeps it: 山东省 or Shandong
    -> 山东, 济南市 -> 济南, and '山东 济南' (as the list shows it) or 山东省济南市 -> 济南."""
    text = "".join(typed.split())
    if not text:
        return ""
    province = canonical_province(text)
    if province is not None:
        return province
    found, cities = split_place(text)
    if found is not None:
        return cities[0] if cities else found
    return short_city_name(text)


async def _matching_ids(request: Request, search: Search, limit: int | None) -> list[str]:
    return await console_of(request).store.call_ids(**_filters(request, search), limit=limit)


async def search_page(request: Request) -> Response:
    search = Search.from_query(request)
    ids = await _matching_ids(request, search, PAGE_SIZE + 1)
    calls = await calls_of(console_of(request), ids[:PAGE_SIZE])
    return render(
        request,
        "calls.html",
        {
            "search": search,
            "calls": calls,
            "more": len(ids) > PAGE_SIZE,
            "outcomes": [o.value for o in Outcome],
            "export_query": request.url.query,
            "excel_most": console_of(request).config.settings.console_excel_calls,
        },
    )


async def _visible_call(request: Request) -> CDR:
    """The call of the path, when the user may see its number and it was made in the
    number's current holding (a subscriber's); else "not found"."""
    cdr = await console_of(request).store.get_cdr(request.path_params["call_id"])
    if cdr is None or not scope_of(request).allows_at(cdr.number, cdr.started_at):
        raise not_found()
    return cdr


async def call_page(request: Request) -> Response:
    cdr = await _visible_call(request)
    return render(request, "call.html", {"call": cdr, "details": extra_details(cdr)})


async def recording(request: Request) -> Response:
    """The call's recording as its CDR names it, for the call page's player: only a file
    under router.yaml's recordings_dir, not yet purged; anything else is "not found".

    A recording is a conversation with a caller: who listened, and when, goes into the
    audit log. A player fetches one listening in several ranged requests (seeking, or the
    browser reading the file in parts); only the one from the start is written down."""
    cdr = await _visible_call(request)
    if cdr.recording_path is None or cdr.recording_purged_at is not None:
        raise not_found()
    settings = console_of(request).config.settings
    file = recording_file(settings.recordings_dir, cdr.recording_path)
    if file is None:
        raise not_found()
    if request.headers.get("range", "bytes=0-").replace(" ", "").startswith("bytes=0-"):
        await audit(request, "play recording", cdr.call_id, f"call to {cdr.number}")
    return FileResponse(file, media_type="audio/wav", headers={"Cache-Control": "no-store"})


def extra_details(cdr: CDR) -> list[tuple[str, str]]:
    """Fields a feature adds to a call (IVR path, survey score, recording), when present."""
    labels = {
        "menu_path": "IVR path",
        "menu_digits": "Keys pressed",
        "survey_score": "Survey score",
        "recording_path": "Recording",
        "language": "Language",
    }
    data = cdr_to_json(cdr)
    return [(label, str(data[name])) for name, label in labels.items() if data.get(name)]


async def export_csv(request: Request) -> Response:
    """The calls the search finds, as CSV for a spreadsheet (UTF-8 with a BOM), sent as
    they are read, a page at a time: a search of a million calls holds one page.

    The audit entry is written when the stream ends, with the calls it sent: counted as
    they are sent, not beforehand, so a call started after the export was asked for and
    sent in it is counted too; a download stopped before its end says so (`_Sent`)."""
    search = Search.from_query(request)
    if problems := _refused(request, search):
        return problems
    console = console_of(request)
    filters = _filters(request, search)
    sent = _Sent()

    async def rows() -> AsyncGenerator[str, None]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(EXPORT_COLUMNS)
        yield SPREADSHEET_BOM + buffer.getvalue()
        async for page in _pages(console, filters):
            buffer.seek(0)
            buffer.truncate()
            for cdr in page:
                writer.writerow(csv_row(cdr))
            sent.calls += len(page)
            yield buffer.getvalue()
        sent.whole = True

    return StreamedDownload(
        rows(),
        partial(_audit_sent, request, "CSV", search, sent),
        media_type="text/csv; charset=utf-8",
        headers=_attachment(console, "csv"),
    )


@dataclass(slots=True)
class _Sent:
    """What an export has handed to the connection: `calls` counts the calls as they are
    handed over (a CSV's page by page, a workbook's all at its last byte), so a download
    stopped half-way may have reached its client with fewer, never more; `whole` once
    everything went."""

    calls: int = 0
    whole: bool = False


EXPORT_FILES = {"CSV": "calls.csv", "Excel": "calls.xlsx"}


async def _audit_sent(request: Request, kind: str, search: Search, sent: _Sent) -> None:
    """The audit entry of a download that has ended, however it ended; one the store cannot
    take then cannot call the calls back, so the console's log says who took how many."""
    try:
        await _audit_download(request, EXPORT_FILES[kind], sent.calls, search, not sent.whole)
    except StoreUnavailable as error:
        who, calls = user_of(request).name, _calls(sent.calls)
        log.error("%s downloaded %s as %s, not audited: %s", who, calls, kind, error)


async def _pages(console: Console, filters: dict[str, Any]) -> AsyncIterator[list[CDR]]:
    """The calls of a search, newest first, EXPORT_BATCH at a time, each page starting after
    the last call of the one before (keyset on the listing's order, as
    router.storage.cdr_pages reads): none twice, none missed. A call started during the
    export is newer than the first page and left out; one started before the first page is
    read is sent."""
    last = None
    while True:
        ids = await console.store.call_ids(**filters, limit=EXPORT_BATCH, older_than=last)
        page = await calls_of(console, ids)
        if page:
            yield page
        if len(ids) < EXPORT_BATCH or not page:
            return
        last = page[-1]


async def export_xlsx(request: Request) -> Response:
    """The calls the search finds, as an Excel workbook: caller numbers and area codes stay
    text with their leading zeros, times are date-times in the console's zone, charges are
    numbers. Written batch by batch to a scratch file (in a worker thread: XlsxWriter is
    pure Python and slow next to the CSV writer), then sent.

    Nothing is sent until the workbook is whole, and a reverse proxy gives up on an answer
    silent for longer than its read timeout (nginx: 60 s): a search of more calls than
    router.yaml's `console_excel_calls` gets a page saying so, with the CSV (sent as it is
    read) as the way to have them all, and `hotline400 cdr --format xlsx` for the operator
    (a subscriber's user is told to ask the operator for such a workbook). Audited when the
    download ends, as the CSV is: a client or proxy that gives up while the workbook is
    written took nothing usable, and the entry says `download cut short`."""
    console = console_of(request)
    most = console.config.settings.console_excel_calls
    search = Search.from_query(request)
    ids = await _workbook_ids(request, search, most)
    if isinstance(ids, Response):
        return ids
    sent = _Sent(calls=len(ids))

    async def chunks() -> AsyncGenerator[bytes, None]:
        with tempfile.TemporaryDirectory(prefix="hotline400-calls-") as folder:
            path = Path(folder) / "calls.xlsx"
            sheet = ExportSheet(
                path, EXPORT_COLUMNS, title="calls", zone=console.zone, times=TIME_FIELDS
            )
            with sheet:
                for start in range(0, len(ids), EXPORT_BATCH):
                    batch = await calls_of(console, ids[start : start + EXPORT_BATCH])
                    await asyncio.to_thread(_add_calls, sheet, batch)
                await asyncio.to_thread(sheet.close)
            with path.open("rb") as file:
                while chunk := await asyncio.to_thread(file.read, READ_CHUNK):
                    yield chunk
        sent.whole = True

    return StreamedDownload(
        chunks(),
        partial(_audit_sent, request, "Excel", search, sent),
        media_type=XLSX_MEDIA_TYPE,
        headers=_attachment(console, "xlsx"),
    )


def _add_calls(sheet: ExportSheet, cdrs: Sequence[CDR]) -> None:
    """A batch of rows, off the event loop: a cell costs XlsxWriter about 6 µs, so 500
    calls of 23 columns would hold every other page up for some 70 ms."""
    for cdr in cdrs:
        sheet.add(_export_values(cdr))


async def _workbook_ids(request: Request, search: Search, most: int) -> list[str] | Response:
    """The calls the Excel export of the search holds, newest first, or the answer refusing
    it (`_refused`), or a page saying how to have them when it finds more than `most`."""
    if problems := _refused(request, search):
        return problems
    ids = await _matching_ids(request, search, most + 1)
    if len(ids) > most:
        # The command runs on the server: a subscriber's user is told to ask the operator.
        command = cli_export(search) if user_of(request).is_operator else None
        context = {"most": most, "export_query": request.url.query, "command": command}
        return render(request, "calls_excel_refused.html", context, status=TOO_MANY_FOR_EXCEL)
    return ids


def _refused(request: Request, search: Search) -> Response | None:
    """A search with a field it cannot read (a date that is none, or out of range) exports
    nothing rather than more than was asked: the answer is then its problems."""
    if not search.problems:
        return None
    search.numbers(console_of(request).numbers_for(user_of(request)))  # another's: not found
    return PlainTextResponse("\n".join(search.problems) + "\n", status_code=400)


async def _audit_download(
    request: Request, file: str, calls: int, search: Search, cut_short: bool = False
) -> None:
    """Call records are personal data: who downloaded them, with which filters and how many
    calls (and whether the download stopped before its end), goes into the audit log."""
    count = f"{_calls(calls)}{', download cut short' if cut_short else ''}"
    await audit(request, "download call records", file, f"{count}; {search.in_words()}")


def _calls(count: int) -> str:
    return f"{count} call{'' if count == 1 else 's'}"


def cli_export(search: Search) -> str:
    """The `hotline400 cdr` that writes the search's calls as a workbook, with the filters
    the command shares (the number, the days); its --caller and --outcome read a caller and
    an outcome as the search does not, so those are left for the operator to add."""
    command = ["hotline400 cdr --format xlsx --output calls.xlsx"]
    if search.number:
        command.append(f"--number {search.number}")
    if search.since:
        command.append(f"--since {search.since}")
    if search.until:
        command.append(f"--until {search.until}")
    return " ".join(command)


def _attachment(console: Console, kind: str) -> dict[str, str]:
    """An export's headers: an attachment named for when it was taken, calls-20261124-1030.csv."""
    return {
        "Content-Disposition": f'attachment; filename="calls-{console.now():%Y%m%d-%H%M}.{kind}"'
    }


def _export_values(cdr: CDR) -> list[object]:
    legs = "; ".join(
        f"{leg.destination} {leg.dial_status} ring {leg.ring_seconds}s talk {leg.talk_seconds}s"
        for leg in cdr.legs
    )
    return cdr_values(cdr, EXPORT_COLUMNS, legs)


def csv_row(cdr: CDR) -> list[object]:
    return [spreadsheet_cell(value) for value in _export_values(cdr)]
