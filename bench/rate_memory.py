"""Peak memory of `hotline400 rate` over a month of answered calls, and what it prints.

Fills a SQLite store as bench/statement_memory.py does (default 200,000 answered calls of
4008207788 within November 2026, priced as the bench's rows are), gives every call its
ANSWER leg to a Beijing number, or reuses a store it filled before (--store FILE); then runs
`hotline400 rate --from 2026-11-01 --to 2026-11-30` over a copy of it (every call already
priced: nothing to do but read them), over a copy whose calls have no price (each priced,
its included minutes taken in answer order, its entry booked), and with `--rerate` over
another copy (tariffs of its own: every call re-priced, an adjustment booked for each whose
share changed), each as a process of its own with the checkout given (--tree, default this
one: a main checkout gives the figure before a change), and reports the kernel's peak
resident memory of that process (wait4's ru_maxrss), its wall and CPU seconds, its summary
line, and digests of what it printed and of the ledger it left (the same before and after a
change that keeps the results).

    python bench/rate_memory.py [--calls N] [--store FILE] [--tree DIR]
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import console_pages  # puts the repository on the import path
import statement_memory

ROOT = Path(__file__).resolve().parents[1]
NUMBER = console_pages.SHOP
TARIFFS = f"""\
version: "bench"
caller_tariffs:
  fixed: {{first_seconds: 180, first_charge: 0.22, per_seconds: 60, charge: 0.11}}
  mobile: {{per_seconds: 60, charge: 0.15}}
  other: {{first_seconds: 180, first_charge: 0.22, per_seconds: 60, charge: 0.11}}
packages:
  office:
    included_minutes: 3000
    local: {{per_seconds: 60, charge: 0.10}}
    long_distance: {{per_seconds: 60, charge: 0.30}}
accounts:
  "{NUMBER}": {{package: office}}
"""
PLAN = (
    f'number: "{NUMBER}"\nname: Shop\nhome_area_code: "010"\ndefault: {{target: "01087654321"}}\n'
)
LEGS = (
    "INSERT INTO legs (call_id, seq, destination, dial_status, started_at, ring_seconds,"
    " talk_seconds, forward_reason) SELECT call_id, 1, '01087654321', 'ANSWER', started_at, 8,"
    " billable_seconds, 'primary' FROM cdrs"
)

UNPRICE = "UPDATE cdrs SET caller_share = NULL, callee_share = NULL, total = NULL, tariff_id = NULL"


def fill(store: Path, calls: int) -> None:
    """statement_memory's calls, each with its answered leg; opened once, as a router would,
    so the runs measured do not upgrade the schema."""
    statement_memory.fill(store, calls)
    with sqlite3.connect(store) as db:
        db.execute(LEGS)
    statement_memory.measure(store, ROOT, statement=False)


def configure(directory: Path, store: Path) -> Path:
    config = directory / "config"
    (config / "plans").mkdir(parents=True)
    (config / "router.yaml").write_text(
        f'store: "sqlite:///{store}"\nspool_dir: "{directory / "spool"}"\n', encoding="utf-8"
    )
    (config / "tariffs.yaml").write_text(TARIFFS, encoding="utf-8")
    (config / "plans" / f"{NUMBER}.yaml").write_text(PLAN, encoding="utf-8")
    return config


def run(store: Path, tree: Path, *flags: str, unpriced: bool = False) -> str:
    """One `hotline400 rate` over a copy of `store` (its calls' prices taken away first if
    `unpriced`: every call priced as the router would have, taking included minutes)."""
    directory = Path(tempfile.mkdtemp(prefix="hotline400-rate-"))
    copy = directory / "store.db"
    shutil.copyfile(store, copy)
    if unpriced:
        with sqlite3.connect(copy) as db:
            db.execute(UNPRICE)
    config = configure(directory, copy)
    out = directory / "out.txt"
    argv = ["rate", "--config", str(config), "--from", "2026-11-01", "--to", "2026-11-30"]
    code = "import sys; from router.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    began = time.monotonic()
    with out.open("wb") as stdout:
        process = subprocess.Popen(
            [sys.executable, "-c", code, *argv, *flags], cwd=tree, env=env, stdout=stdout
        )
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - began
    if status:
        raise SystemExit(f"rate {' '.join(flags)} failed: {status}")
    printed = out.read_bytes()
    summary = printed.decode().splitlines()[-1]
    with sqlite3.connect(copy) as db:
        rows = db.execute(
            "SELECT kind, ref, amount_fen, included_seconds FROM ledger ORDER BY id"
        ).fetchall()
    shutil.rmtree(directory)
    cpu = usage.ru_utime + usage.ru_stime
    name = " ".join(["rate", *flags]) + ", calls unpriced" * unpriced
    return (
        f"{name}: peak RSS {usage.ru_maxrss // 1024} MiB;"
        f" {wall:.1f} s wall, {cpu:.1f} s CPU; {summary}\n"
        f"  printed {len(printed.splitlines())} lines sha256 {_digest(printed)};"
        f" ledger {len(rows)} rows sha256 {_digest(repr(rows).encode())}"
    )


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def main() -> None:
    store, tree = statement_memory.store_and_tree(__doc__.splitlines()[0], fill)
    opened, _ = statement_memory.measure(store, tree, statement=False)
    print(f"{store} ({tree}): store opened only, peak RSS {opened} MiB")
    print(run(store, tree), flush=True)
    print(run(store, tree, unpriced=True), flush=True)
    print(run(store, tree, "--rerate"), flush=True)


if __name__ == "__main__":
    main()
