"""`hotline400 serve`: run the FastAGI router until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from dialplan.errors import ConfigError
from router.daemon import Daemon


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("serve", parents=[common], help="run the FastAGI router")
    parser.add_argument("--listen", metavar="HOST:PORT", help="override router.yaml's listen")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if not Path(args.config).is_dir():
        print(f"cannot start: no configuration directory {args.config}", file=sys.stderr)
        return 1
    try:
        daemon = Daemon(args.config, listen=args.listen)
    except (ConfigError, ValueError) as error:
        print(f"cannot start:\n{error}", file=sys.stderr)
        return 1
    asyncio.run(daemon.run())
    return 0
