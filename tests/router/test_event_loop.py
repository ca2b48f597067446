"""uvloop is an optional extra: asked for in router.yaml, it runs the daemon when installed,
and asyncio's loop does when it is not."""

from __future__ import annotations

import asyncio
import importlib.util
import logging

import pytest

from router.commands.serve import event_loop_factory


def test_asyncio_is_the_default_loop() -> None:
    assert event_loop_factory("asyncio") is None


def test_uvloop_runs_the_daemon_when_installed_else_asyncio_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    factory = event_loop_factory("uvloop")
    if importlib.util.find_spec("uvloop") is None:
        assert factory is None
        assert "uvloop is not installed" in caplog.text
        return
    assert factory is not None
    with asyncio.Runner(loop_factory=factory) as runner:
        loop_name = runner.run(_loop_module())
    assert loop_name.startswith("uvloop")
    assert "event loop: uvloop" in caplog.text


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_the_ami_link_logs_in_and_reads_events_on_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")  # an optional extra
    from tests.router.ami.test_ami import eventually, linked, replayed

    async def link_and_replay() -> int:
        async with linked() as (simulator, link):
            seen: list[str] = []
            link.on_event("Hangup", lambda event: seen.append(event["Uniqueid"]))
            await replayed(simulator, link, "answer.ami")
            await eventually(lambda: len(seen) == 4)
            return link.stats().connects

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(link_and_replay()) == 1
