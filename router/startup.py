"""Why a router cannot start, in one line an operator can act on.

A router that cannot serve must say so and exit at once, so a service manager sees it fail
rather than a process that looks alive. Only a store that may come back by itself (a
PostgreSQL server down or restarting, a SQLite file locked by another process, a schema
waiting for this router's upgrade) lets the router start anyway: CDRs then go to the journal
and are written when the store is back.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path

from dialplan.errors import Problem
from router.storage.protocol import StoreUnavailable


class StartupError(Exception):
    """The router cannot serve; the message is the line printed before exiting (followed,
    for configuration files, by their problems, one a line)."""


class LeaseLost(Exception):
    """Another router of this name took its lease over (router.lease): the router stopped;
    the message says who holds it."""


LISTENERS = {
    "FastAGI": ("hotline400 serve", "`listen` in router.yaml (or --listen)"),
    "metrics": ("hotline400 serve", "`metrics_listen` in router.yaml"),
    "console": ("hotline400 web", "--listen"),
}
"""Each listener: the command that usually holds its address, and where the address is
set, to name the right one when it is taken (serve's --listen moves the FastAGI port only)."""


def listen_problem(what: str, host: str, port: int, error: OSError) -> str:
    """The line for an address the `what` listener (a key of LISTENERS) could not listen on."""
    address = f"{host}:{port}"
    if error.errno == errno.EADDRINUSE:
        holder, setting = LISTENERS[what]
        return (
            f"{what} address {address} is already in use (another {holder}?): "
            f"stop the other process or choose another {setting}"
        )
    if error.errno == errno.EACCES:
        return f"{what} address {address}: permission denied (ports below 1024 need privileges)"
    if error.errno == errno.EADDRNOTAVAIL:
        return f"{what} address {address} is not an address of this machine"
    return f"{what} address {address}: {error.strerror or error}"


def refuse_taken_address(what: str, host: str, port: int) -> None:
    """Raise StartupError when the address cannot be listened on now.

    A probe binds each socket the listener would (SO_REUSEADDR, IPv6 sockets IPv6 only, as
    asyncio's server does) and closes it without listening, so `serve` can refuse a taken
    address before it loads the router; the listener's own bind still decides.
    """
    try:
        addresses = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        for family, kind, proto, _, address in addresses:
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                probe.bind(address)
    except OSError as error:
        raise StartupError(listen_problem(what, host, port, error)) from error


def spool_problem(directory: str, error: OSError) -> str:
    """The line for a CDR journal directory the router cannot make or write: without it, the
    calls of a database outage would be lost, so the router does not start."""
    why = error.strerror or str(error)
    return (
        f"spool_dir {directory} cannot be used for the CDR journal: {why}; check `spool_dir` "
        "in router.yaml and the directory's permissions"
    )


def unserved_problem(
    config_dir: Path, unserved: Mapping[str, Sequence[Problem]], last_good: Path
) -> str:
    """The refusal of a start with a calendar, tariffs or numbers file that has problems and
    no last good copy in `last_good` to serve instead: routing on without it would connect
    calls with no prices, caps or balance checks, to suspended or cancelled numbers, or route
    holidays as working days. Each file's problems follow, as `hotline400 check` prints them."""
    files = []
    for name in unserved:
        copy = last_good / name
        files.append(
            f"{config_dir / name}" + (" (its copy no longer loads)" if copy.exists() else "")
        )
    named = files[0] if len(files) == 1 else f"{', '.join(files[:-1])} and {files[-1]}"
    has, it = ("has", "it") if len(files) == 1 else ("have", "them")
    problems = [str(problem) for found in unserved.values() for problem in found]
    return "\n".join(
        [
            f"{named} {has} problems and no last good copy in {last_good} to serve instead; "
            f"fix {it} and start again:",
            *problems,
        ]
    )


ROUTER_LOCK = "router.lock"
"""The file in spool_dir a running router holds locked (and beside its SQLite file, with
this suffix): the journal, like a SQLite file, is one router's."""


def claim(path: Path, what: str, remedy: str, holder: str) -> int:
    """Lock `path` for this router's life; the descriptor, which lets go when closed (or
    when the process ends, however it ends). StartupError naming the router that holds it.

    `holder` (the process and its address) is written in the file for the refusal of the
    next router to name."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "its pid unknown"
        os.close(fd)
        raise StartupError(
            f"{what} is in use by another hotline400 serve ({other}): {remedy}"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, holder.encode(), 0)
    return fd


SPOOL_ID = "router.id"
"""The file in spool_dir keeping the directory's token (`spool_identity`)."""


def spool_identity(directory: Path) -> str:
    """The host's name and the token kept in `directory` (made at its first use): what a
    router's lease names of the spool_dir it journals to (router.lease). Call it holding
    the directory's lock (ROUTER_LOCK), so one router at a time reads or makes the token."""
    path = directory / SPOOL_ID
    try:
        token = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        token = ""
    if not token:
        token = secrets.token_hex(16)
        fresh = path.with_name(f".{SPOOL_ID}.new")
        with fresh.open("w", encoding="ascii") as file:
            file.write(f"{token}\n")
            file.flush()
            os.fsync(file.fileno())
        fresh.replace(path)
    return f"{socket.gethostname()} {token}"


ROUTER_YAML_STORE = "`store`/`database` in router.yaml"
ENVIRONMENT_STORE = (
    "HOTLINE400_STORE in the router's environment (it overrides router.yaml's `store` and "
    "`database`)"
)


def store_problem(store: str, error: BaseException, named_by: str = ROUTER_YAML_STORE) -> str:
    """The line for a store that cannot be used at all; `named_by` is the setting that
    named it, where the admin has to look."""
    detail = str(error.__cause__ or error) if isinstance(error, StoreUnavailable) else str(error)
    return (
        f"store {store} cannot be opened: {detail}; check {named_by}, "
        "the path and its permissions, or the server's credentials"
    )
