"""Switching a value-added feature on or off from the console: tariffs.yaml and the fee.

An account's features live in tariffs.yaml (`accounts.N.features`, feature: the day it was
switched on), which `bill`, `account fees` and closing read; so the console edits that one
line of the file, leaving every other line (and its comments) as it was, checks that the
edited file reads back exactly as intended, and replaces the file in one rename. A
round-trip YAML library was tried: ruamel.yaml 0.19 writes the file back unchanged, but
deleting a feature also deletes the comment lines after it (it keeps them with the deleted
key), hence the edit by lines.

Switching on books the feature's fee at once, in full, dated that day
(rating.ledger.feature_fees_due, ref 'recording@2026-11-24'): switching the same feature on
again the same day books nothing more, another day books it again. Switching off refunds
nothing.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path

from console.file_writing import held, write_atomically
from dialplan.errors import ConfigError
from dialplan.yaml_source import read_config_text
from rating.ledger import LedgerEntry, feature_fees_due
from rating.tariff import Tariffs
from rating.tariff_loader import parse_tariffs
from router.configuration.config_dir import TARIFFS_FILE

INDENT_STEP = 2


class CannotSwitch(Exception):
    """The file is laid out in a way this edit cannot follow; the message says so."""


@asynccontextmanager
async def switching(config_dir: Path, console_lock: asyncio.Lock) -> AsyncIterator[None]:
    """tariffs.yaml held for one switch, from the balance check to the fee booked: two
    switches at once, in this console or another process, could otherwise both pass the
    check against one balance that pays for only one fee."""
    async with held(config_dir / TARIFFS_FILE, console_lock):
        yield


def switch_feature(
    config_dir: Path, tariffs: Tariffs, number: str, feature: str, on: date | None
) -> Tariffs:
    """Write tariffs.yaml with `feature` of `number` switched on `on` (off with None); the
    tariffs as they now read. Call it inside `switching(config_dir)`."""
    path = config_dir / TARIFFS_FILE
    try:
        text = read_config_text(path)  # saved as GBK since it loaded: told as `check` tells it
    except ConfigError as error:
        raise CannotSwitch(str(error)) from None
    edited = switched_text(text, number, feature, on)
    try:
        result = parse_tariffs(str(path), edited, tariffs.zone)
    except ConfigError as error:
        raise CannotSwitch(f"the edited {TARIFFS_FILE} would not load: {error}") from None
    wanted = dict(tariffs.accounts[number].features)
    wanted.pop(feature, None)
    if on is not None:
        wanted[feature] = on
    if result.accounts.get(number) is None or result.accounts[number].features != wanted:
        raise CannotSwitch(
            f"{TARIFFS_FILE} does not read back as intended; switch {feature} of "
            f"{number} in the file itself"
        )
    write_atomically(path, edited)
    return result


def fee_entries(tariffs: Tariffs, number: str, feature: str, day: date) -> list[LedgerEntry]:
    """The deduction for switching `feature` on `day`: the tariff's fee, in full."""
    return [e for e in feature_fees_due(tariffs, number, day) if e.ref.startswith(f"{feature}@")]


def switched_text(text: str, number: str, feature: str, on: date | None) -> str:
    """tariffs.yaml's text with the one line of `feature` under `number`'s `features`
    added, changed or removed; CannotSwitch when the account is not written in block style."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    accounts = _find(lines, 0, len(lines), r"accounts\s*:", indent=0)
    if accounts is None:
        raise CannotSwitch(f"{TARIFFS_FILE} has no accounts: block")
    accounts_end = _block_end(lines, accounts)
    account = _find(
        lines,
        accounts + 1,
        accounts_end,
        rf"[\"']?{number}[\"']?\s*:",
        indent=_first_child_indent(lines, accounts, accounts_end),
    )
    if account is None:
        raise CannotSwitch(f"{TARIFFS_FILE} has no block for account {number}")
    account_end = _block_end(lines, account)
    child = _first_child_indent(lines, account, account_end)
    features = _find(lines, account + 1, account_end, r"features\s*:(\s*\{\s*\})?", indent=child)
    value = [] if on is None else [f"{feature}: {on.isoformat()}\n"]
    if features is None:
        if on is None:
            return "".join(lines)
        at = _last_content(lines, account, account_end) + 1
        new = [f"{' ' * child}features:\n", f"{' ' * (child + INDENT_STEP)}{value[0]}"]
        return "".join(lines[:at] + new + lines[at:])
    features_end = _block_end(lines, features)
    inner = _first_child_indent(lines, features, features_end, child + INDENT_STEP)
    current = _find(lines, features + 1, features_end, rf"{re.escape(feature)}\s*:.*", indent=inner)
    body = [f"{' ' * inner}{line}" for line in value]
    comment = _trailing_comment(lines[features])
    header = f"{' ' * child}features:{comment}\n"
    if current is not None:
        lines[current : current + 1] = body
    elif on is not None:
        at = _last_content(lines, features, features_end) + 1
        lines[at:at] = body
    others = any(
        _indent(line) == inner and not _blank(line)
        for line in lines[features + 1 : _block_end(lines, features)]
    )
    lines[features] = header if others else f"{' ' * child}features: {{}}{comment}\n"
    return "".join(lines)


def _trailing_comment(line: str) -> str:
    """The comment ending a `features:` line (a line `_find` matched, so any `#` in it
    starts the comment), with the spaces before it; '' without one."""
    at = line.find("#")
    if at < 0:
        return ""
    spaces = line[len(line[:at].rstrip(" ")) : at] or " "
    return spaces + line[at:].rstrip("\n")


def _blank(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _find(
    lines: list[str], start: int, end: int, key: str, indent: int | None = None
) -> int | None:
    """The first line in [start, end) that is `key` (a regex) at `indent` (any if None),
    followed by nothing but a comment."""
    pattern = re.compile(rf"^( *){key}\s*(#.*)?$")
    for index in range(start, end):
        found = pattern.match(lines[index].rstrip("\n"))
        if found and (indent is None or len(found.group(1)) == indent):
            return index
    return None


def _block_end(lines: list[str], header: int) -> int:
    """The index after the last line indented under `header` (blank lines and comments
    belong to whatever content follows them)."""
    own = _indent(lines[header])
    end = header + 1
    for index in range(header + 1, len(lines)):
        if _blank(lines[index]):
            continue
        if _indent(lines[index]) <= own:
            break
        end = index + 1
    return end


def _last_content(lines: list[str], header: int, end: int) -> int:
    return max((i for i in range(header, end) if not _blank(lines[i])), default=header)


def _first_child_indent(lines: list[str], header: int, end: int, default: int | None = None) -> int:
    for index in range(header + 1, end):
        if not _blank(lines[index]):
            return _indent(lines[index])
    if default is None:
        raise CannotSwitch(f"line {header + 1} of {TARIFFS_FILE} has nothing under it")
    return default
