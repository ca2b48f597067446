"""A real router daemon on a free port, its SQLite file in a temporary directory."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from router.configuration.settings import load_settings
from router.daemon import Daemon
from router.simulation.asterisk_agi import CallResult, SimulatedCall, run_call
from router.storage.cdr import CDR, Outcome

E2E_CONFIG = Path(__file__).resolve().parent / "e2e_config"
MONDAY_MORNING = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


class SimulatedClock:
    """Beijing time that runs `speedup` times faster than real time from MONDAY_MORNING,
    matching a simulator that sleeps 1/speedup of each virtual second."""

    def __init__(self, speedup: float) -> None:
        self.speedup = speedup
        self.began = time.monotonic()

    def __call__(self) -> datetime:
        elapsed = (time.monotonic() - self.began) * self.speedup
        return MONDAY_MORNING + timedelta(seconds=elapsed)


@asynccontextmanager
async def running_router(
    tmp_path: Path,
    config: Path = E2E_CONFIG,
    clock: Callable[[], datetime] = lambda: MONDAY_MORNING,
    **overrides: object,
) -> AsyncIterator[Daemon]:
    config_dir = tmp_path / "config"
    shutil.copytree(config, config_dir)
    settings = load_settings(config_dir).model_copy(
        update={
            "database": str(tmp_path / "var" / "hotline400.db"),
            "spool_dir": str(tmp_path / "var" / "spool"),
            **overrides,
        }
    )
    daemon = Daemon(config_dir, settings=settings, clock=clock)
    await daemon.start()
    try:
        yield daemon
    finally:
        await daemon.stop()


async def call(daemon: Daemon, time_scale: float = 0.0, **fields: object) -> CallResult:
    """Play one simulated call (SimulatedCall fields) against the daemon."""
    simulated = SimulatedCall(**fields)  # type: ignore[arg-type]
    return await run_call(daemon.host, daemon.port, simulated, time_scale=time_scale)


async def finished_cdr(daemon: Daemon, call_id: str, timeout: float = 3.0) -> CDR:
    """The CDR once the writer has stored its end (writes are batched, not synchronous)."""
    async with asyncio.timeout(timeout):
        while True:
            cdr = await daemon.store.get_cdr(call_id)
            if cdr is not None and cdr.outcome is not Outcome.IN_PROGRESS:
                return cdr
            await asyncio.sleep(0.02)
