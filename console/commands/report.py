"""`hotline400 report`: the console's report figures from the command line.

report --number N --from D --to D [--format table|csv|json|png] [--output FILE]
The table is for a person; CSV has one row per day; JSON holds every figure; PNG draws the
charts of the console's reports page into one image (to --output, or standard output when it
is not a terminal). A number without calls in the days asked that has no plan, no
tariffs.yaml account and no inventory record is refused as users add refuses it: a typo.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import sys
import unicodedata
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from console.reports import DURATION_LABELS, Report, build_report, read_day
from console.store_access import opened_store
from dialplan.errors import ConfigError
from dialplan.regions import place_name
from router.commands.arguments import service_number
from router.commands.exits import refuse_usage
from router.configuration.config_dir import load_config
from router.configuration.settings import load_settings
from router.numbers.known import is_known_number
from router.storage.location import NoStore
from router.storage.protocol import Store, StoreUnavailable

MAX_DAYS = 366


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("report", parents=[common], help="call reports of a number")
    parser.add_argument("--number", required=True, type=service_number, help="the 400 number")
    parser.add_argument(
        "--from", dest="first", required=True, type=_day, metavar="YYYY-MM-DD", help="first day"
    )
    parser.add_argument(
        "--to", dest="last", required=True, type=_day, metavar="YYYY-MM-DD", help="last day"
    )
    parser.add_argument(
        "--format",
        choices=("table", "csv", "json", "png"),
        default="table",
        help="table for a person, csv (a row a day), json (every figure), png (the charts)",
    )
    parser.add_argument("--output", metavar="FILE", help="write here instead of standard output")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.last < args.first:
        return refuse_usage("report", f"--to {args.last} is before --from {args.first}")
    if args.format == "png" and not args.output and sys.stdout.isatty():
        return refuse_usage(
            "report",
            "--format png writes an image: give --output FILE or redirect standard output "
            "to a file",
        )
    if (args.last - args.first).days >= MAX_DAYS:
        return _fail(f"a report covers at most {MAX_DAYS} days")
    if not Path(args.config).is_dir():
        return _fail(f"no configuration directory {args.config}")
    try:
        zone = ZoneInfo(load_settings(Path(args.config)).timezone)
        report = asyncio.run(_report(Path(args.config), args.number, args.first, args.last, zone))
    except UnknownNumber as error:
        return _fail(str(error))
    except ConfigError as error:
        return _fail(f"cannot read the configuration: {error.summary()}")
    except NoStore as error:
        return _fail(f"no store: {error}")
    except StoreUnavailable as error:
        return _fail(f"the store cannot be used: {error}")
    content = _rendered(report, args.format)
    if not args.output:
        if isinstance(content, bytes):
            sys.stdout.buffer.write(content)
        else:
            sys.stdout.write(content)
        return 0
    try:
        Path(args.output).write_bytes(
            content if isinstance(content, bytes) else content.encode("utf-8")
        )
    except OSError as error:
        return _fail(f"cannot write {args.output}: {error.strerror or error}")
    return 0


def _rendered(report: Report, form: str) -> str | bytes:
    """The report in `form`, whole: written at once, a file that cannot be written is
    refused before any of it is, and standard output is never mixed with an error."""
    if form == "png":
        from console.chart_images import report_png  # matplotlib only when a PNG is asked for

        return report_png(report)
    out = io.StringIO(newline="")
    {"table": _table, "csv": _csv, "json": _json}[form](report, out)
    return out.getvalue()


class UnknownNumber(Exception):
    """The number is nowhere: a typo, whose report would be an empty one."""


async def _report(config: Path, number: str, first: date, last: date, zone: ZoneInfo) -> Report:
    async with opened_store(config) as store:
        report = await build_report(store, [number], first, last, zone)
        if not report.calls and not await _known(config, number, store):
            raise UnknownNumber(
                f"no account {number}: name a 400 number of the plans, tariffs.yaml or the "
                "inventory"
            )
        return report


async def _known(config: Path, number: str, store: Store) -> bool:
    """Whether `number` has a plan, a tariffs.yaml account or an inventory record: a number
    of none of them (and without calls) is a typo, not a quiet number."""
    configured = load_config(config)
    accounts = configured.tariffs.accounts if configured.tariffs is not None else {}
    return await is_known_number(number, {*configured.plans, *accounts}, store)


def figures(report: Report) -> dict[str, Any]:
    return {
        "numbers": report.numbers,
        "from": report.first_day.isoformat(),
        "to": report.last_day.isoformat(),
        "calls": report.calls,
        "answered": report.answered,
        "unanswered": report.unanswered,
        "days": [
            {
                "day": d.day.isoformat(),
                "calls": d.calls,
                "answered": d.answered,
                "unanswered": d.unanswered,
                "talk_seconds": d.talk_seconds,
            }
            for d in report.days
        ],
        "by_hour": report.by_hour,
        "durations": dict(zip(DURATION_LABELS, report.durations, strict=True)),
        "regions": [
            {"province": r.province, "city": r.city, "calls": r.calls} for r in report.regions
        ],
        "menu_paths": [{"path": m.path, "calls": m.calls} for m in report.menu_paths],
        "survey_scores": [
            {"number": s.number, "scored": s.scored, "average": round(s.average, 2)}
            for s in report.survey_scores
        ],
        "outcomes": dict(report.outcomes.most_common()),
        "fraud_signals": [
            {"at": s.at.isoformat(), "kind": s.kind, "detail": s.detail} for s in report.signals
        ],
    }


def _json(report: Report, out: Any) -> None:
    json.dump(figures(report), out, ensure_ascii=False, indent=2)
    out.write("\n")


def _csv(report: Report, out: Any) -> None:
    writer = csv.writer(out)
    writer.writerow(["day", "calls", "answered", "unanswered", "talk_seconds"])
    for d in report.days:
        writer.writerow([d.day.isoformat(), d.calls, d.answered, d.unanswered, d.talk_seconds])


def _table(report: Report, out: Any) -> None:
    rate = f"{report.answer_rate:.0%}" if report.answer_rate is not None else "-"
    print(
        f"{', '.join(report.numbers)} {report.first_day} to {report.last_day}:"
        f" {report.calls} calls, {report.answered} answered ({rate}),"
        f" {report.unanswered} unanswered",
        file=out,
    )
    if report.outcomes:
        ranked = sorted(report.outcomes.items(), key=lambda item: (-item[1], item[0]))
        outcomes = ", ".join(f"{name} {n}" for name, n in ranked)
        print(f"outcomes: {outcomes}", file=out)
    print(f"\n{'day':<12}{'calls':>7}{'answered':>10}{'unanswered':>12}{'talk min':>10}", file=out)
    for d in report.days:
        print(
            f"{d.day.isoformat():<12}{d.calls:>7}{d.answered:>10}{d.unanswered:>12}"
            f"{d.talk_seconds / 60:>10.1f}",
            file=out,
        )
    print(
        "\ncalls by hour: " + " ".join(f"{h:02d}h {n}" for h, n in enumerate(report.by_hour) if n),
        file=out,
    )
    print(
        "talk time:     "
        + "  ".join(
            f"{label} {n}" for label, n in zip(DURATION_LABELS, report.durations, strict=True)
        ),
        file=out,
    )
    print("\ncallers from:", file=out)
    for r in report.regions[:15]:
        region = place_name(r.province, r.city) or "unknown"
        print(f"  {_filled(region, 20)}{r.calls:>7}", file=out)
    if report.menu_paths:
        print("\nways through the menus:", file=out)
        for m in report.menu_paths[:15]:
            print(f"  {m.path:<40}{m.calls:>7}", file=out)
    if report.survey_scores:
        print("\nsatisfaction scores (1-5):", file=out)
        for score in report.survey_scores:
            print(
                f"  {score.number:<12}average {score.average:.2f} of {score.scored} scored call(s)",
                file=out,
            )
    for s in report.signals:
        print(f"fraud signal: {s.kind} {s.at:%Y-%m-%d}: {s.detail}", file=out)


def _filled(text: str, columns: int) -> str:
    """`text` filled with spaces to `columns` columns of a terminal, where a Chinese
    character takes two: the counts after a province's name line up."""
    width = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * (columns - width)


def _day(text: str) -> date:
    try:
        return read_day(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _fail(message: str) -> int:
    print(f"hotline400 report: {message}", file=sys.stderr)
    return 1
