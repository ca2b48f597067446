"""uvloop is an optional extra: by default (`event_loop: auto`) it runs the daemon when it is
installed and asyncio's loop does when it is not; `asyncio` names asyncio's loop whatever is
installed, and `uvloop` warns when it is missing."""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest

from router.commands.serve import event_loop_factory
from router.configuration.settings import RouterSettings


def test_the_default_is_auto() -> None:
    assert RouterSettings().event_loop == "auto"


def test_asyncio_named_is_asyncio_whatever_is_installed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    assert event_loop_factory("asyncio") is None
    assert "event loop: asyncio" in caplog.text


@pytest.mark.parametrize("name", ["auto", "uvloop"])
def test_uvloop_runs_the_daemon_when_installed(name: str, caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("uvloop")  # an optional extra, in the test extra too
    caplog.set_level(logging.INFO)
    factory = event_loop_factory(name)
    assert factory is not None
    with asyncio.Runner(loop_factory=factory) as runner:
        loop_name = runner.run(_loop_module())
    assert loop_name.startswith("uvloop")
    assert "event loop: uvloop" in caplog.text


def test_without_uvloop_auto_runs_asyncio_quietly_and_uvloop_named_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` raises ImportError
    caplog.set_level(logging.INFO)
    assert event_loop_factory("auto") is None
    assert [r.levelname for r in caplog.records] == ["INFO"]
    assert "event loop: asyncio" in caplog.text
    caplog.clear()
    assert event_loop_factory("uvloop") is None
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "uvloop is not installed; running on asyncio's loop" in caplog.text


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
