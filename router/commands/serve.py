"""`hotline400 serve`: run the FastAGI router until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from dialplan.errors import ConfigError
from router.configuration.settings import load_settings, parse_listen
from router.monitoring.logs import configure_logging, skip_unwritten_record_fields
from router.startup import LeaseLost, StartupError, refuse_taken_address

log = logging.getLogger("hotline400.daemon")


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("serve", parents=[common], help="run the FastAGI router")
    parser.add_argument(
        "--listen", type=_address, metavar="HOST:PORT", help="override router.yaml's listen"
    )
    parser.set_defaults(run=run)


def _address(text: str) -> str:
    try:
        parse_listen(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def run(args: argparse.Namespace) -> int:
    configure_logging()
    if not Path(args.config).is_dir():
        print(f"cannot start: no configuration directory {args.config}", file=sys.stderr)
        return 1
    try:
        settings = load_settings(args.config)
        refuse_taken_address("FastAGI", *parse_listen(args.listen or settings.listen))
        # The router's modules take a second or more to load on a busy host: only now that
        # the settings are sound and the address is free.
        from router.daemon import Daemon

        daemon = Daemon(args.config, listen=args.listen, settings=settings)
    except StartupError as error:
        print(f"cannot start: {error}", file=sys.stderr)
        return 1
    except ConfigError as error:
        print(f"cannot start: {error.summary()}", file=sys.stderr)
        return 1
    except ValueError as error:
        print(f"cannot start: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # the store's directory or the spool cannot be made or read
        print(f"cannot start: {_os_problem(error)}", file=sys.stderr)
        return 1
    settings = daemon.settings
    configure_logging(
        settings.log_format,
        settings.log_level,
        settings.mask_caller_numbers,
        zone=ZoneInfo(settings.timezone),
    )
    skip_unwritten_record_fields()
    try:
        with asyncio.Runner(loop_factory=event_loop_factory(settings.event_loop)) as runner:
            runner.run(daemon.run())
    except StartupError as error:
        print(f"cannot start: {error}", file=sys.stderr)
        return 1
    except LeaseLost as error:
        print(f"stopped: {error}", file=sys.stderr)
        return 1
    return 0


def event_loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed and router.yaml's `event_loop` is auto or uvloop;
    else asyncio's (None). uvloop is an optional extra: a router without it routes the same
    calls, on more CPU; only a router that names it says it is missing."""
    if name == "asyncio":
        log.info("event loop: asyncio")
        return None
    try:
        import uvloop
    except ImportError:
        if name == "uvloop":
            log.warning("event_loop: uvloop is not installed; running on asyncio's loop")
        else:
            log.info("event loop: asyncio (pip install 'hotline400[uvloop]' for uvloop)")
        return None
    log.info("event loop: uvloop %s", uvloop.__version__)
    return uvloop.new_event_loop


_OS_PROBLEMS = {
    errno.EEXIST: "file exists where a directory is needed",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
    errno.EACCES: "permission denied",
    errno.EROFS: "read-only file system",
}


def _os_problem(error: OSError) -> str:
    what = _OS_PROBLEMS.get(error.errno or 0, error.strerror or str(error))
    where = f"{Path(error.filename).absolute()}: " if error.filename else ""
    return f"{where}{what}; check the paths in router.yaml"
