"""Two console processes on one configuration directory (uvicorn's workers, or two consoles
started by hand) saving, or restoring, one plan from the same page: one wins, the other is
told the plan changed since, whichever process each runs in."""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path

import httpx
import pytest

from console.app import create_app
from console.store_access import opened_store
from console.views import routing
from tests.console.harness import (
    CLINIC,
    NOW,
    add_users,
    console_config,
    created_store,
    csrf_of,
    sign_in,
)

HOLD_SECONDS = 2.0
"""How long the first save waits between its check and its write for the other to finish:
without the lock, the other passes the check in that time and both are written."""


@pytest.mark.parametrize("second_asks", ["save", "restore"])
async def test_two_processes_changing_a_plan_from_one_page_write_one_and_refuse_the_other(
    tmp_path: Path, second_asks: str
) -> None:
    config_dir = console_config(tmp_path, None)
    plan_file = config_dir / "plans" / f"{CLINIC}.yaml"
    original = plan_file.read_text(encoding="utf-8")
    async with created_store(config_dir) as store:
        await add_users(store)
        await store.save_plan_version(CLINIC, original, "ops", NOW, "as found")
    base = hashlib.sha256(original.encode()).hexdigest()
    texts = {
        name: original.replace("ring_timeout: 25", f"ring_timeout: {timeout}")
        for name, timeout in (("first", 30), ("second", 35))
    }
    spawn = multiprocessing.get_context("spawn")
    first_checked, second_finished = spawn.Event(), spawn.Event()
    results: Queue[tuple[str, int]] = spawn.Queue()
    workers = [
        spawn.Process(
            target=change_in_a_console_process,
            args=(
                config_dir,
                name,
                how,
                texts[name],
                base,
                first_checked,
                second_finished,
                results,
            ),
        )
        for name, how in (("first", "save"), ("second", second_asks))
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        await asyncio.to_thread(worker.join, 60)
    statuses = dict(results.get(timeout=1) for _ in workers)
    assert statuses == {"first": 303, "second": 409}
    assert plan_file.read_text(encoding="utf-8") == texts["first"]
    async with created_store(config_dir) as store:
        history = [v.source for v in await store.plan_versions(CLINIC)]
    assert texts["first"] in history and texts["second"] not in history


def change_in_a_console_process(
    config_dir: Path,
    name: str,
    how: str,
    text: str,
    base: str,
    first_checked: Event,
    second_finished: Event,
    results: Queue[tuple[str, int]],
) -> None:
    """One console process saving `text` (or restoring version 1) over the plan as it was
    (`base`). The first holds between its check and its write until the second has finished
    (or HOLD_SECONDS); the second starts once the first has checked."""
    if name == "first":
        write = routing.write_atomically

        def write_once_the_second_is_done(path: Path, content: str) -> None:
            first_checked.set()
            second_finished.wait(HOLD_SECONDS)
            write(path, content)

        routing.write_atomically = write_once_the_second_is_done  # type: ignore[assignment]
    else:
        first_checked.wait(30)
    status = asyncio.run(_change(config_dir, how, text, base))
    if name == "second":
        second_finished.set()
    results.put((name, status))


async def _change(config_dir: Path, how: str, text: str, base: str) -> int:
    async with opened_store(config_dir) as store:
        app = create_app(config_dir, store, clock=lambda: NOW, secure_cookies=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
            assert (await sign_in(client, "ops")).status_code == 303
            routing_path = f"/numbers/{CLINIC}/routing"
            form = {"csrf": await csrf_of(client, routing_path), "base": base}
            if how == "restore":
                restored = await client.post(f"{routing_path}/versions/1/restore", data=form)
                return restored.status_code
            form |= {"mode": "yaml", "action": "save", "yaml": text}
            return (await client.post(routing_path, data=form)).status_code
