"""Exports at an operator's scale: `hotline400 cdr` of every call, and the console's downloads.

Fills a SQLite store with N call records (default 1,100,000: more than one Excel sheet
holds) as bench/console_pages.py does, or reuses one it filled before (--store FILE), then:

- runs `hotline400 cdr --format csv|json|xlsx` over every call, each as a process of its
  own, and reports its wall time and peak resident memory (the kernel's ru_maxrss of that
  process); the workbook's sheets are read back (their names and row counts) to show that
  every call is in it;
- with --console, serves the console in this process and times, over real HTTP, the
  CSV and Excel downloads of searches of growing size, as the operator's browser asks
  (Excel let through whatever the size, to time it; not past 400,000 calls).

    python bench/cdr_export.py [--cdrs N] [--store FILE] [--formats csv,json,xlsx]
                               [--console]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import httpx
from console_pages import NOW, SHOP, fill_sqlite  # puts the repository on the import path

from router.commands.workbook import XLSX_MEDIA_TYPE
from router.configuration.settings import RouterSettings
from tests.console.harness import running_console, sign_in

ROOT = Path(__file__).resolve().parents[1]
EXCEL_TIMED = 400_000
"""The largest search whose Excel download is timed: a million calls take minutes."""

CONSOLE_SEARCHES = [  # (what, query): from a day of the busiest number to everything
    ("1 day, one number", f"number={SHOP}&since=2026-11-20&until=2026-11-20"),
    ("7 days, one number", f"number={SHOP}&since=2026-11-14&until=2026-11-20"),
    ("30 days, one number", f"number={SHOP}&since=2026-10-22&until=2026-11-20"),
    ("90 days, one number", f"number={SHOP}"),
    ("90 days, all numbers", ""),
]


def export(config: Path, fmt: str, folder: Path) -> tuple[float, float, int, Path]:
    """Wall and CPU seconds, peak RSS in KiB and the file of one `cdr --format fmt` of every
    call (the CPU is what an idle machine's wall would be, whatever the neighbours' load)."""
    target = folder / f"calls.{fmt}"
    command = [sys.executable, "-m", "router.cli", "cdr", "--config", str(config)]
    command += ["--format", fmt]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    began = time.perf_counter()
    if fmt == "xlsx":
        process = subprocess.Popen([*command, "--output", str(target)], env=env, cwd=ROOT)
    else:
        with target.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, env=env, cwd=ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - began
    if process.returncode != 0:
        raise SystemExit(f"cdr --format {fmt} failed with {process.returncode}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, target


def sheet_rows(workbook: Path) -> list[tuple[str, int]]:
    """Each sheet's name and data rows (its header left out), from the file's own XML."""
    with zipfile.ZipFile(workbook) as archive:
        listing = archive.read("xl/workbook.xml").decode()
        names = re.findall(r'<sheet name="([^"]+)"', listing)
        rows = []
        for index, name in enumerate(names, start=1):
            with archive.open(f"xl/worksheets/sheet{index}.xml") as part:
                head = part.read(4096).decode(errors="replace")
            last = re.search(r'<dimension ref="[A-Z]+\d+:[A-Z]+(\d+)"', head)
            rows.append((name, int(last.group(1)) - 1 if last else 0))
    return rows


def run_cli(store: Path, formats: list[str]) -> None:
    calls = sqlite3.connect(store).execute("SELECT COUNT(*) FROM cdrs").fetchone()[0]
    print(f"\nhotline400 cdr of every call ({calls:,} calls)")
    print(f"  {'format':<8}{'seconds':>9}{'CPU s':>8}{'peak RSS MiB':>14}{'file MiB':>10}")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        config = folder / "config"
        config.mkdir()
        (config / "router.yaml").write_text(
            f'store: "sqlite:///{store}"\ntimezone: Asia/Shanghai\n', encoding="utf-8"
        )
        for fmt in formats:
            seconds, cpu, peak_kib, target = export(config, fmt, folder)
            size = target.stat().st_size / 2**20
            print(f"  {fmt:<8}{seconds:>9.1f}{cpu:>8.1f}{peak_kib / 1024:>14.0f}{size:>10.0f}")
            if fmt == "xlsx":
                sheets = sheet_rows(target)
                written = sum(rows for _, rows in sheets)
                listed = ", ".join(f"{name!r}: {rows:,}" for name, rows in sheets)
                verdict = "every call" if written == calls else f"{calls - written:,} MISSING"
                print(f"    sheets {listed} ({verdict})")
            target.unlink()


async def time_console(store: Path) -> None:
    """Each search's CSV and Excel downloads, Excel allowed any size here so it is timed
    (but past EXCEL_TIMED calls, where it would take minutes); the default limit is said."""
    default = RouterSettings().console_excel_calls
    print(f"\nconsole downloads (operator, over HTTP; default console_excel_calls {default:,})")
    print(f"  {'search':<24}{'calls':>10}{'CSV s/CPU s':>14}{'Excel s/CPU s':>14}  by default")
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        (tmp / "var").mkdir()
        shutil.copyfile(store, tmp / "var" / "hotline400.db")
        async with (
            running_console(tmp, clock=lambda: NOW) as site,
            httpx.AsyncClient(base_url=site.url, timeout=3600) as client,
        ):
            router_yaml = site.config_dir / "router.yaml"
            text = router_yaml.read_text(encoding="utf-8")
            unlimited = re.sub(r"^console_excel_calls: .*$", "", text, flags=re.M)
            router_yaml.write_text(unlimited + "console_excel_calls: 10000000\n")
            assert (await sign_in(client, "ops")).status_code == 303
            for what, query in CONSOLE_SEARCHES:
                (csv_wall, csv_cpu), csv = await _timed(client, f"/calls.csv?{query}")
                calls = csv.text.count("\n") - 1
                excel = "-"
                if calls <= EXCEL_TIMED:
                    (wall, cpu), workbook = await _timed(client, f"/calls.xlsx?{query}")
                    assert workbook.headers["content-type"] == XLSX_MEDIA_TYPE
                    excel = f"{wall:.1f} / {cpu:.1f}"
                given = "given" if calls <= default else "refused: CSV or cdr offered"
                csv_times = f"{csv_wall:.1f} / {csv_cpu:.1f}"
                print(f"  {what:<24}{calls:>10,}{csv_times:>14}{excel:>14}  {given}")


async def _timed(
    client: httpx.AsyncClient, path: str
) -> tuple[tuple[float, float], httpx.Response]:
    """The answer to a GET, its wall seconds and the CPU seconds this process spent on it
    (the console serves in this process): the CPU is what an idle machine's wall would be,
    whatever the neighbours' load while it is measured."""
    wall, cpu = time.perf_counter(), time.process_time()
    response = await client.get(path)
    return (time.perf_counter() - wall, time.process_time() - cpu), response


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cdrs", type=int, default=1_100_000, help="CDRs in a new store")
    parser.add_argument("--store", type=Path, help="a store this bench filled before, reused")
    parser.add_argument("--formats", default="csv,json,xlsx", help="the cdr exports to run")
    parser.add_argument("--console", action="store_true", help="time the console's downloads")
    args = parser.parse_args()
    print(
        f"exports ({platform.python_version()}, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.2f})"
    )
    with tempfile.TemporaryDirectory() as scratch:
        store = args.store or Path(scratch) / "hotline400.db"
        if not store.exists():
            began = time.perf_counter()
            fill_sqlite(store, args.cdrs)
            print(f"  {args.cdrs:,} CDRs written in {time.perf_counter() - began:.0f} s")
        formats = [fmt for fmt in args.formats.split(",") if fmt]
        if formats:
            run_cli(store.resolve(), formats)
        if args.console:
            asyncio.run(time_console(store.resolve()))


if __name__ == "__main__":
    main()
