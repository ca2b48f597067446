"""`hotline400 demo`: run the router on the example config and show a day of calls."""

from __future__ import annotations

import argparse
import asyncio
import logging

from router.configuration.settings import load_settings
from router.daemon import Daemon
from router.simulation.demo import DemoClock, balances, describe, play_tour, prepay_accounts


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "demo", parents=[common], help="route a varied set of calls through the example plans"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    return asyncio.run(_demo(args.config))


async def _demo(config_dir: str) -> int:
    clock = DemoClock()
    # the tour needs no /metrics endpoint, and must not clash with a router already serving one
    settings = load_settings(config_dir).model_copy(update={"metrics_listen": None})
    daemon = Daemon(config_dir, listen="127.0.0.1:0", settings=settings, clock=clock)
    port = await daemon.start()
    print(f"hotline400 router on 127.0.0.1:{port} with plans {', '.join(daemon.plans.numbers())}")
    print(f"CDRs go to {daemon.settings.database}\n")
    try:
        for line in await prepay_accounts(daemon, clock()):
            print(line)
        played = await play_tour("127.0.0.1", port, clock)
        money = await balances(daemon)
    finally:
        await daemon.stop()
    for index, (demo, result) in enumerate(played, start=1):
        print(describe(index, demo, result))
    for line in money:
        print(line)
    failed = [result for _, result in played if result.error]
    print(f"\n{len(played)} calls placed, {len(failed)} failed.")
    print("See the call records with: hotline400 cdr")
    return 1 if failed else 0
