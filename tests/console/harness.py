"""A real console on a free port over a real store (SQLite file or a PostgreSQL scratch
schema), with users of every role and calls written through the store's own API."""

from __future__ import annotations

import asyncio
import random
import re
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import uvicorn
from starlette.applications import Starlette

from console.app import create_app
from console.security import hash_password
from console.store_access import opened_store
from router.configuration.settings import load_settings
from router.storage.cdr import CDR, CallerRegion, FinishCall, Outcome, StartCall
from router.storage.console_rows import UserRow
from router.storage.location import ConfiguredStore, store_for

SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "config"
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=SHANGHAI)
SHOP, CLINIC, FACTORY = "4008207788", "4001234567", "4006001234"
PASSWORD = "correct horse battery"
USERS = {
    "ops": ("operator", None),
    "shop": ("subscriber-admin", SHOP),
    "shopstaff": ("subscriber-staff", SHOP),
    "clinic": ("subscriber-admin", CLINIC),
}


def console_config(tmp_path: Path, store_url: str | None) -> Path:
    """The shipped example configuration, its store in tmp_path or at `store_url`."""
    config_dir = tmp_path / "config"
    shutil.copytree(SHIPPED_CONFIG, config_dir)
    router_yaml = config_dir / "router.yaml"
    text = router_yaml.read_text(encoding="utf-8")
    text = re.sub(
        r"^database: .*$", f"database: {tmp_path / 'var' / 'hotline400.db'}", text, flags=re.M
    )
    text = re.sub(r"^spool_dir: .*$", f"spool_dir: {tmp_path / 'var' / 'spool'}", text, flags=re.M)
    text = re.sub(r"^store: .*$", "", text, flags=re.M)
    if store_url is not None:
        text += f"\nstore: {store_url}\n"
    router_yaml.write_text(text, encoding="utf-8")
    (tmp_path / "var").mkdir(exist_ok=True)
    return config_dir


@asynccontextmanager
async def created_store(config_dir: Path) -> AsyncIterator[ConfiguredStore]:
    """The configured store made as a router's first start makes it: the console opens
    only a store that exists."""
    store = store_for(load_settings(config_dir), port=0)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def add_users(store: ConfiguredStore) -> None:
    digest = hash_password(PASSWORD)
    for name, (role, account) in USERS.items():
        await store.add_user(UserRow(name, role, account, digest, False, NOW))


def a_call(
    call_id: str,
    number: str,
    started: datetime,
    outcome: Outcome = Outcome.ANSWERED,
    *,
    caller: str = "13805310001",
    seconds: int = 60,
    province: str = "山东",
    city: str = "济南",
) -> list[StartCall | FinishCall]:
    answered = outcome is Outcome.ANSWERED
    cdr = CDR(
        call_id,
        number,
        caller,
        caller,
        "mobile",
        started,
        CallerRegion(province, city, "0531"),
    )
    fields: dict[str, object] = {
        "outcome": outcome,
        "ended_at": started + timedelta(seconds=seconds + 5),
        "billable_seconds": seconds if answered else 0,
    }
    if answered:
        fields |= {
            "answered_at": started + timedelta(seconds=5),
            "caller_share": Decimal("0.15"),
            "callee_share": Decimal("0.20"),
            "total": Decimal("0.35"),
            "tariff_id": "nationwide-300@2026-11",
        }
    return [StartCall(cdr), FinishCall(call_id, fields)]


TRAFFIC_REGIONS = [
    ("山东", "济南"),
    ("广东", "广州"),
    ("上海", "上海"),
    ("北京", "北京"),
    ("浙江", "杭州"),
]


def a_month_of_traffic(
    numbers: list[str], now: datetime, calls: int = 400, seed: int = 5
) -> list[StartCall | FinishCall]:
    """Calls over the 30 days before `now` as a business sees them: mostly in office hours,
    most answered, from a handful of provinces; so screenshots show charts with figures."""
    rng = random.Random(seed)
    ops: list[StartCall | FinishCall] = []
    for index in range(calls):
        day = now - timedelta(days=rng.randrange(30))
        hour = rng.choices(range(24), [1] * 8 + [8] * 10 + [3] * 6)[0]
        started = min(day.replace(hour=hour, minute=rng.randrange(60)), now - timedelta(minutes=5))
        province, city = rng.choice(TRAFFIC_REGIONS)
        outcome = rng.choices(
            [Outcome.ANSWERED, Outcome.BUSY, Outcome.NOANSWER, Outcome.REJECTED], [75, 10, 12, 3]
        )[0]
        ops += a_call(
            f"traffic.{index}",
            rng.choice(numbers),
            started,
            outcome,
            caller=f"138{rng.randrange(10**8):08d}",
            seconds=int(rng.expovariate(1 / 150)) + 5,
            province=province,
            city=city,
        )
    return ops


@dataclass
class Site:
    url: str
    config_dir: Path
    store: ConfiguredStore
    clock: Callable[[], datetime]

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, follow_redirects=False, timeout=10)

    async def signed_in(self, name: str) -> httpx.AsyncClient:
        client = self.client()
        response = await sign_in(client, name)
        assert response.status_code == 303, response.text
        return client


async def sign_in(
    client: httpx.AsyncClient, name: str, password: str = PASSWORD, **fields: str
) -> httpx.Response:
    """The sign-in form filled in and posted, as a browser does: its page first, for the
    form's CSRF token and the cookie it comes with."""
    token = await csrf_of(client, "/login")
    return await client.post(
        "/login", data={"csrf": token, "name": name, "password": password, **fields}
    )


async def csrf_of(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


@asynccontextmanager
async def running_console(
    tmp_path: Path,
    store_url: str | None = None,
    clock: Callable[[], datetime] = lambda: NOW,
    secret: bytes | None = None,
) -> AsyncIterator[Site]:
    config_dir = console_config(tmp_path, store_url)
    async with created_store(config_dir) as seeding:
        await add_users(seeding)
    async with opened_store(config_dir) as store:
        app = create_app(config_dir, store, clock=clock, secure_cookies=False, secret=secret)
        async with serving(app) as url:
            yield Site(url, config_dir, store, clock)


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """The console app served on a free port of the loopback; yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
