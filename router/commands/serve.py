"""`hotline400 serve`: run the FastAGI router until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from dialplan.errors import ConfigError
from router.daemon import Daemon
from router.monitoring.logs import configure_logging


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("serve", parents=[common], help="run the FastAGI router")
    parser.add_argument("--listen", metavar="HOST:PORT", help="override router.yaml's listen")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    configure_logging()
    if not Path(args.config).is_dir():
        print(f"cannot start: no configuration directory {args.config}", file=sys.stderr)
        return 1
    try:
        daemon = Daemon(args.config, listen=args.listen)
    except (ConfigError, ValueError) as error:
        print(f"cannot start:\n{error}", file=sys.stderr)
        return 1
    settings = daemon.settings
    configure_logging(
        settings.log_format,
        settings.log_level,
        settings.mask_caller_numbers,
        zone=ZoneInfo(settings.timezone),
    )
    asyncio.run(daemon.run())
    return 0
