"""How close the router daemon comes to the FastAGI protocol ceiling, and what 5,000 ringing
calls cost it in memory.

Two server processes run side by side, each fed by the Asterisk protocol simulator from
this process (so the simulator's CPU never shares a server's event loop):

- the router: `hotline400 serve` on a copy of tests/e2e_config (dial template
  Local/{number}@phones), its SQLite file and CDR journal in a temporary directory;
- the ceiling: bench/bare_fastagi.py, which sends the same AGI lines per scenario (Dial
  and GET FULL VARIABLE per attempt, the forward Dial, one MSet) with no caller lookup,
  no plan, no decide() and no CDRs.

The call mix cycles three scenarios: 4000000001 answered at once (3 AGI round trips:
Dial, GET FULL VARIABLE, MSet), 4000000002 busy then forwarded and answered (5),
4000000003 unanswered three times (7).
Every call has a caller ID never seen before (fixed lines of five cities and mobiles), as
most callers of a 400 line call once, so the router places each caller afresh.

Measured per server:
- throughput: `--calls` calls with `--concurrency` open at once, in alternating rounds;
  calls/s from wall time, and the server's CPU per call from /proc/<pid>/stat (all its
  threads, SQLite's included) so the comparison holds even where the simulator is the
  bottleneck; router/ceiling is given both ways and the target applies to the lower;
- overhead: the server's think time summed over a call (CallResult.think_s: from each
  reply, or the environment block, to the next command), one call at a time, so no queue
  inflates it; also its p50/p99 under load;
- hold: `--hold` calls ringing at once (Dial rings `--ring` real seconds, then no answer)
  on fresh server processes, sampling VmRSS and open descriptors of the server.

Open files: 5,000 held calls are 5,000 sockets in each process. The soft RLIMIT_NOFILE of
this process is raised to the hard limit before the servers start; children inherit it, and
each server's effective limit is read back from /proc/<pid>/limits and reported.

    python bench/agi_load.py [--calls N] [--concurrency N] [--hold N] [--quick]

With --store postgresql://... (and --routers N) it runs instead the shared-store comparison
described at "several routers on one shared store" below; with --webhooks, the cost of a CRM
that never answers ("a CRM that never answers" below).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import itertools
import os
import resource
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import yaml

from router.call.channel_contract import ChannelVariable
from router.call.channel_contract import Outcome as HotlineStatus
from router.simulation.asterisk_agi import (
    CallResult,
    Outcome,
    SimulatedCall,
    recorded_destinations,
    run_call,
    run_calls,
)
from router.simulation.asterisk_ami import (
    MANAGER_CONF,
    RECORDINGS,
    AmiSimulator,
    accounts_from_manager_conf,
    recorded_events,
)

REPO = Path(__file__).resolve().parent.parent
E2E_CONFIG = REPO / "tests" / "e2e_config"
BARE_SERVER = Path(__file__).resolve().parent / "bare_fastagi.py"
TARGET_RATIO = 0.70
SATURATED_CORES = 0.9
"""Simulator CPU above which a round measured the simulator rather than the server."""
TARGET_HOLD_RSS_MIB = 1024.0
PLAN_RING_TIMEOUT_S = 20.0
"""Dial timeout of the e2e plans: a held call rings this many virtual seconds."""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MIB_PER_KIB = 1 / 1024
FD_HEADROOM = 256
"""Descriptors a process needs besides one per held call: listener, log, SQLite, pipes."""


@dataclass(frozen=True)
class Scenario:
    name: str
    dialled: str
    status: HotlineStatus
    """HOTLINE_STATUS both servers must leave on the channel."""


SCENARIOS = (
    Scenario("answer", "4000000001", HotlineStatus.ANSWERED),
    Scenario("busy+forward", "4000000002", HotlineStatus.ANSWERED),
    Scenario("no-answer x3", "4000000003", HotlineStatus.NOANSWER),
)
HELD_CALL = SimulatedCall(dialled="4000000001", destinations={"13800000011": Outcome.no_answer()})
"""Rings for the plan's whole Dial timeout, then ends unanswered."""

_FIXED_AREAS = ("010", "021", "020", "0531", "0755")
_MOBILE_BLOCKS = ("139", "138", "186", "150", "158")


def fresh_callers() -> Iterator[str]:
    """Caller IDs that never repeat: fixed lines and mobiles, alternately, all numbers a
    real caller could have. (Local numbers 8000xxxx, as this once made, are no valid
    number in Beijing or Shanghai: one caller in five took phonenumbers' full parse, a
    path real caller IDs do not take.)"""
    for n in itertools.count():
        if n % 2:
            yield f"{_MOBILE_BLOCKS[n % 5]}{n:08d}"
        else:
            yield f"{_FIXED_AREAS[n % 5]}6{n:07d}"


_callers = fresh_callers()
_call_ids = itertools.count(1)


def call_mix(count: int) -> list[SimulatedCall]:
    return [
        SimulatedCall(
            dialled=SCENARIOS[n % len(SCENARIOS)].dialled,
            caller_id=next(_callers),
            uniqueid=f"1795400000.{next(_call_ids)}",
        )
        for n in range(count)
    ]


def held_calls(count: int) -> list[SimulatedCall]:
    return [
        SimulatedCall(
            dialled=HELD_CALL.dialled,
            destinations=HELD_CALL.destinations,
            caller_id=next(_callers),
            uniqueid=f"1795400000.{next(_call_ids)}",
        )
        for _ in range(count)
    ]


# --- the server processes ------------------------------------------------------------------


def raise_fd_limit() -> tuple[int, int]:
    """Lift this process's soft open-files limit to its hard limit; returns (soft, hard)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    soft = hard if hard != resource.RLIM_INFINITY else 1 << 20
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft, hard


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def router_config(
    workdir: Path, extra: str = "", plan_extra: str = "", account: str | None = None
) -> Path:
    """tests/e2e_config with production settings but the database and spool in `workdir`;
    `extra` lines are added to router.yaml, `plan_extra` lines to every plan; `account`
    (a name of ACCOUNTS) gives the answered number that account."""
    config = workdir / "config"
    shutil.copytree(E2E_CONFIG, config)
    if account is not None:
        tariffs = yaml.safe_load((config / "tariffs.yaml").read_text(encoding="utf-8"))
        tariffs["packages"]["e2e-bundle"] = {
            **tariffs["packages"]["e2e-regional"],
            "included_minutes": 1000,
        }
        tariffs["accounts"][ANSWERED.dialled] = ACCOUNTS[account]
        (config / "tariffs.yaml").write_text(yaml.safe_dump(tariffs), encoding="utf-8")
    for plan in (config / "plans").glob("*.yaml"):
        plan.write_text(plan.read_text(encoding="utf-8") + plan_extra, encoding="utf-8")
    (config / "router.yaml").write_text(
        'dial_template: "Local/{number}@phones"\n'
        f'database: "{workdir / "var" / "hotline400.db"}"\n'
        f'spool_dir: "{workdir / "var" / "spool"}"\n' + extra,
        encoding="utf-8",
    )
    return config


@dataclass
class ServerProcess:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_s(self) -> float:
        """User + system CPU seconds of every thread so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def status_kib(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
        raise KeyError(key)

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def calls_connected(self) -> int:
        """Connections on the server's port it has accepted and holds: its sockets that
        the kernel lists as established there. (Descriptors alone miscount: the router
        closes a listening duplicate as it nears its limit.)"""
        established = set()
        for table in ("tcp", "tcp6"):
            for line in Path(f"/proc/{self.pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "01" and int(fields[1].rpartition(":")[2], 16) == self.port:
                    established.add(fields[9])  # the socket's inode
        held = 0
        for fd in os.listdir(f"/proc/{self.pid}/fd"):
            with contextlib.suppress(OSError):  # closed since listed
                link = os.readlink(f"/proc/{self.pid}/fd/{fd}")
                held += link.startswith("socket:[") and link[8:-1] in established
        return held

    def fd_limit(self) -> str:
        for line in Path(f"/proc/{self.pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return f"{soft}/{hard}"
        return "unknown"

    def logged_problems(self) -> list[str]:
        """WARNING and ERROR lines the server logged so far."""
        lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        marks = ("level=warning", "level=error", '"level": "warning"', '"level": "error"')
        return [line for line in lines if any(mark in line for mark in marks)]

    def stop(self) -> None:
        """SIGTERM: the router drains, flushes its CDRs and closes the store."""
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_router(
    workdir: Path,
    name: str = "router",
    extra_config: str = "",
    tree: Path = REPO,
    plan_extra: str = "",
    account: str | None = None,
) -> ServerProcess:
    """`hotline400 serve` from the source tree `tree` (this checkout by default)."""
    port = free_port()
    config = router_config(workdir, extra_config, plan_extra, account)
    argv = ["serve", "--config", str(config), "--listen", f"127.0.0.1:{port}"]
    command = [sys.executable, "-c", "import sys; from router.cli import main; sys.exit(main())"]
    return _spawn(name, [*command, *argv], port, workdir, tree)


def start_bare(workdir: Path) -> ServerProcess:
    port = free_port()
    command = [sys.executable, str(BARE_SERVER), "--listen", f"127.0.0.1:{port}"]
    return _spawn("ceiling", command, port, workdir)


def _spawn(
    name: str, command: list[str], port: int, workdir: Path, tree: Path = REPO
) -> ServerProcess:
    log = workdir / f"{name.replace(' ', '_')}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=workdir, stdout=sink, stderr=subprocess.STDOUT, env=_child_env(tree)
        )
    return ServerProcess(name, process, port, log)


def _child_env(tree: Path = REPO) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    return env


async def wait_ready(server: ServerProcess, timeout: float = 120.0) -> None:
    """Play real calls until one gets through: a bare connect would count as a broken
    session in the router."""
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            raise SystemExit(f"{server.name} exited: see {server.log}")
        result = await run_call("127.0.0.1", server.port, call_mix(1)[0], timeout=5)
        if result.error is None:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"{server.name} not serving after {timeout} s: {result.error}")
        await asyncio.sleep(0.1)


async def check_same_wire(router: ServerProcess, bare: ServerProcess) -> None:
    """Both servers must send the same lines per scenario, or the ceiling measures
    something else."""
    for scenario, call in zip(SCENARIOS, call_mix(len(SCENARIOS)), strict=True):
        ours = await run_call("127.0.0.1", router.port, call)
        theirs = await run_call("127.0.0.1", bare.port, call)
        if ours.commands != theirs.commands:
            raise SystemExit(
                f"{scenario.name}: the servers differ\n  router:  {ours.commands}\n"
                f"  ceiling: {theirs.commands}"
            )


async def settle(server: ServerProcess) -> None:
    """Wait until the server's CPU stops moving: write-behind CDR batches land after the
    last call ends and belong to the run."""
    before = server.cpu_s()
    while True:
        await asyncio.sleep(0.2)
        now = server.cpu_s()
        if now - before <= 1 / CLOCK_TICKS:
            return
        before = now


# --- throughput and overhead ---------------------------------------------------------------


def think_ms(result: CallResult) -> float:
    """The server's time in one call: the sum of its gaps before each command."""
    return 1000 * sum(result.think_s)


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


MIX_STATUS = {scenario.dialled: scenario.status for scenario in SCENARIOS}
HELD_STATUS = {HELD_CALL.dialled: HotlineStatus.NOANSWER}


def failures(results: Sequence[CallResult], expected: Mapping[str, str]) -> list[str]:
    """Calls that broke or ended with another HOTLINE_STATUS than `expected` by number."""
    problems = []
    for result in results:
        status = result.variables.get(ChannelVariable.STATUS)
        if result.error is not None:
            problems.append(f"{result.call.uniqueid}: {result.error}")
        elif status != expected.get(result.call.dialled, status):
            problems.append(f"{result.call.uniqueid}: {ChannelVariable.STATUS} {status}")
    return problems


def machine_busy_s() -> float:
    """CPU seconds every process on the machine has spent, from /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


@dataclass(frozen=True)
class Round:
    calls: int
    wall_s: float
    server_cpu_s: float
    client_cpu_s: float
    others_cpu_s: float
    """CPU the rest of the machine used meanwhile: other work skews wall-clock figures."""
    think_ms: tuple[float, ...]
    failed: int

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.wall_s

    @property
    def cpu_ms_per_call(self) -> float:
        return 1000 * self.server_cpu_s / self.calls


async def load_round(server: ServerProcess, calls: int, concurrency: int) -> Round:
    mix = call_mix(calls)
    cpu_before, client_before = server.cpu_s(), time.process_time()
    machine_before = machine_busy_s()
    started = time.monotonic()
    results = await run_calls("127.0.0.1", server.port, mix, concurrency, timeout=120)
    wall = time.monotonic() - started
    client = time.process_time() - client_before
    others = machine_busy_s() - machine_before - (server.cpu_s() - cpu_before) - client
    await settle(server)
    problems = failures(results, MIX_STATUS)
    for problem in problems[:5]:
        print(f"  {server.name}: {problem}", file=sys.stderr)
    return Round(
        calls=calls,
        wall_s=wall,
        server_cpu_s=server.cpu_s() - cpu_before,
        client_cpu_s=client,
        others_cpu_s=max(0.0, others),
        think_ms=tuple(think_ms(result) for result in results),
        failed=len(problems),
    )


async def overhead_one_at_a_time(server: ServerProcess, calls: int) -> list[float]:
    results = [await run_call("127.0.0.1", server.port, call) for call in call_mix(calls)]
    if problems := failures(results, MIX_STATUS):
        raise SystemExit(f"{server.name}: {problems[0]}")
    return [think_ms(result) for result in results]


@dataclass(frozen=True)
class LoadFigures:
    rounds: list[Round]
    alone_ms: list[float]

    @property
    def median_round(self) -> Round:
        return sorted(self.rounds, key=lambda r: r.calls_per_s)[len(self.rounds) // 2]

    @property
    def cpu_ms_per_call(self) -> float:
        return statistics.median(r.cpu_ms_per_call for r in self.rounds)


async def measure_load(
    router: ServerProcess, bare: ServerProcess, args: argparse.Namespace
) -> dict[str, LoadFigures]:
    servers = (bare, router)
    for server in servers:  # warm caches, imports and the SQLite file
        await load_round(server, args.warmup, args.concurrency)
    rounds: dict[str, list[Round]] = {server.name: [] for server in servers}
    for number in range(1, args.rounds + 1):
        for server in servers:
            done = await load_round(server, args.calls, args.concurrency)
            rounds[server.name].append(done)
            print(
                f"  round {number} {server.name:<8} {done.calls_per_s:8.0f} calls/s  "
                f"server CPU {done.cpu_ms_per_call:6.3f} ms/call  "
                f"simulator {done.client_cpu_s / done.wall_s:4.2f} cores  "
                f"others {done.others_cpu_s / done.wall_s:4.2f} cores  failed {done.failed}"
            )
    return {
        server.name: LoadFigures(
            rounds[server.name], await overhead_one_at_a_time(server, args.alone_calls)
        )
        for server in servers
    }


# --- holding ringing calls -----------------------------------------------------------------


@dataclass(frozen=True)
class HoldFigures:
    calls: int
    idle_rss_mib: float
    peak_rss_mib: float
    hwm_mib: float
    peak_fds: int
    all_held_s: float | None
    """Seconds from the first connection until every call was open at the server."""
    wall_s: float
    failed: int

    @property
    def kib_per_call(self) -> float:
        return 1024 * (self.peak_rss_mib - self.idle_rss_mib) / self.calls


HELD_PER_DRIVER = 5000
"""Held calls played by one driver process. A process holds one socket per call, and one
event loop opening 20,000 connections at once falls seconds behind in sending their
environment blocks, which a router rightly times out: Asterisk sends the block as soon as
it connects. Several drivers keep both within bounds."""
HELD_CONNECTING = 64
"""Calls of one driver between their connect and their environment block: as each
Asterisk channel sends the block as soon as its connection is up, a driver writes it
before it starts many more connections, instead of after all of its share."""
HELD_SLACK_FDS = 16
"""Descriptors short of the calls at which the connections held start being counted (a
count reads every socket of the server, too slow to take at each sample)."""


async def hold(server: ServerProcess, calls: int, ring_s: float) -> HoldFigures:
    await wait_ready(server)
    idle_fds = server.open_fds()
    idle_rss = server.status_kib("VmRSS") * MIB_PER_KIB
    peak_rss, peak_fds, all_held_at = idle_rss, idle_fds, None
    started = time.monotonic()
    shares = [HELD_PER_DRIVER] * (calls // HELD_PER_DRIVER)
    shares += [calls % HELD_PER_DRIVER] if calls % HELD_PER_DRIVER else []
    drivers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).resolve()),
            "--drive-held",
            str(share),
            "--port",
            str(server.port),
            "--ring",
            str(ring_s),
            "--first",
            str(100_000_000 + index * 1_000_000),
            stdout=asyncio.subprocess.PIPE,
            env=_child_env(),
        )
        for index, share in enumerate(shares)
    ]
    playing = asyncio.ensure_future(asyncio.gather(*(d.communicate() for d in drivers)))
    while not playing.done():
        peak_rss = max(peak_rss, server.status_kib("VmRSS") * MIB_PER_KIB)
        fds = server.open_fds()
        peak_fds = max(peak_fds, fds)
        near_all = fds - idle_fds >= calls - HELD_SLACK_FDS
        if all_held_at is None and near_all and server.calls_connected() >= calls:
            all_held_at = time.monotonic() - started
        await asyncio.wait({playing}, timeout=0.25)
    problems = [line for out, _ in playing.result() for line in out.decode().splitlines() if line]
    for problem in [*problems[:3], *server.logged_problems()[:3]]:
        print(f"  {server.name}: {problem}", file=sys.stderr)
    await settle(server)
    return HoldFigures(
        calls=calls,
        idle_rss_mib=idle_rss,
        peak_rss_mib=peak_rss,
        hwm_mib=server.status_kib("VmHWM") * MIB_PER_KIB,
        peak_fds=peak_fds,
        all_held_s=all_held_at,
        wall_s=time.monotonic() - started,
        failed=len(problems),
    )


async def drive_held(args: argparse.Namespace) -> None:
    """A driver process of `hold`: plays its share of held calls at once and prints one
    line per call that failed."""
    raise_fd_limit()
    global _call_ids
    _call_ids = itertools.count(args.first)
    results = await run_calls(
        "127.0.0.1",
        args.port,
        held_calls(args.drive_held),
        args.drive_held,
        time_scale=args.ring / PLAN_RING_TIMEOUT_S,
        timeout=args.ring + 120,
        connecting=HELD_CONNECTING,
    )
    for problem in failures(results, HELD_STATUS):
        print(problem)


# --- the run -------------------------------------------------------------------------------


def stored_cdrs(workdir: Path) -> int:
    """Finished CDRs in the router's database, read once the router has stopped."""
    with contextlib.closing(sqlite3.connect(workdir / "var" / "hotline400.db")) as db:
        (count,) = db.execute("SELECT count(*) FROM cdrs WHERE outcome != 'in_progress'").fetchone()
    return count


@contextlib.contextmanager
def servers(workdir: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """The router and the ceiling, each in its own directory under `workdir`."""
    for side in ("router", "ceiling"):
        (workdir / side).mkdir(parents=True)
    router = start_router(workdir / "router")
    bare = start_bare(workdir / "ceiling")
    try:
        yield router, bare
    finally:
        router.stop()
        bare.stop()


def report_load(figures: dict[str, LoadFigures]) -> None:
    print(
        f"\n{'server':<8} {'calls/s':>8} {'CPU ms/call':>11} "
        f"{'alone p50':>9} {'alone p99':>9} {'load p50':>9} {'load p99':>9}   (ms per call)"
    )
    for name, figure in figures.items():
        typical = figure.median_round
        print(
            f"{name:<8} {typical.calls_per_s:8.0f} {figure.cpu_ms_per_call:11.3f} "
            f"{percentile(figure.alone_ms, 0.5):9.3f} {percentile(figure.alone_ms, 0.99):9.3f} "
            f"{percentile(typical.think_ms, 0.5):9.2f} {percentile(typical.think_ms, 0.99):9.2f}"
        )
    router, bare = figures["router"], figures["ceiling"]
    wall_ratio = router.median_round.calls_per_s / bare.median_round.calls_per_s
    cpu_ratio = bare.cpu_ms_per_call / router.cpu_ms_per_call
    verdict = "meets" if min(wall_ratio, cpu_ratio) >= TARGET_RATIO else "misses"
    print(
        f"router/ceiling: {100 * wall_ratio:.0f}% of calls/s, {100 * cpu_ratio:.0f}% by CPU per "
        f"call ({verdict} the {100 * TARGET_RATIO:.0f}% target)"
    )
    driving = bare.median_round.client_cpu_s / bare.median_round.wall_s
    if driving >= SATURATED_CORES:
        print(
            f"the simulator used {driving:.2f} cores driving the ceiling: its calls/s is the "
            "simulator's limit, so the CPU ratio is the capacity ratio"
        )


def report_hold(name: str, figures: HoldFigures) -> None:
    held = f"{figures.all_held_s:.1f} s" if figures.all_held_s is not None else "never"
    print(
        f"{name:<8} {figures.calls} ringing: VmRSS idle {figures.idle_rss_mib:.0f} MiB, "
        f"peak {figures.peak_rss_mib:.0f} MiB (VmHWM {figures.hwm_mib:.0f} MiB), "
        f"{figures.kib_per_call:.0f} KiB per call, peak fds {figures.peak_fds}, "
        f"all open after {held}, {figures.wall_s:.1f} s, failed {figures.failed}"
    )


async def run(args: argparse.Namespace) -> None:
    soft, hard = raise_fd_limit()
    print(f"open files: bench soft limit raised to {soft} (hard {hard}); children inherit it")
    if soft < args.hold + FD_HEADROOM:
        print(
            f"--hold {args.hold} needs {args.hold + FD_HEADROOM} open files in each server: "
            "calls beyond a server's limit wait in its accept queue, not all are held at once"
        )
    with tempfile.TemporaryDirectory(prefix="agi_load.") as temp:
        workdir = Path(temp)
        with servers(workdir) as (router, bare):
            await wait_ready(router)
            await wait_ready(bare)
            print(f"fd limits: router {router.fd_limit()}, ceiling {bare.fd_limit()}")
            await check_same_wire(router, bare)
            print(f"{args.calls} calls x {args.rounds} rounds, {args.concurrency} at once:")
            figures = await measure_load(router, bare, args)
        played = 1 + len(SCENARIOS) + args.warmup + args.rounds * args.calls + args.alone_calls
        print(f"router stored {stored_cdrs(workdir / 'router')} finished CDRs of {played} calls")
        report_load(figures)
        if args.hold:
            await hold_both(workdir, args)


async def hold_both(workdir: Path, args: argparse.Namespace) -> None:
    print(f"\nholding {args.hold} calls ringing {args.ring:.0f} s, fresh processes:")
    with servers(workdir / "hold") as (router, bare):
        for server in (router, bare):
            figures = await hold(server, args.hold, args.ring)
            report_hold(server.name, figures)
            if server is router:
                verdict = "meets" if figures.peak_rss_mib <= TARGET_HOLD_RSS_MIB else "misses"
                print(f"  router peak RSS {verdict} the {TARGET_HOLD_RSS_MIB:.0f} MiB target")


# --- several routers on one shared store (--store, --routers) -------------------------------
#
# A run of its own, chosen by --store or --routers: the same call mixes on one router with
# its own SQLite file, one router on --store, and --routers routers sharing --store, each
# router a `hotline400 serve` process with its own spool, all loading one config directory.
# Rounds alternate between the set-ups. The "counted" mix calls a prepaid number with a
# monthly call cap on every call (counters read, a unit of the cap reserved, the charge
# booked on the ledger), so its extra cost over the "plain" mix is the shared counters'.

COUNTED = Scenario("counted", "4000000008", "answered")
"""Prepaid, with a monthly call cap raised out of reach: every call is counted and charged."""
UNREACHED_CAP = 1_000_000_000
PREPAY_FEN = 1_000_000_000
"""Ten million yuan: no counted call of a run is ever refused for want of credit."""


def add_shared_store_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("several routers on one store (a run of its own)")
    group.add_argument(
        "--store", metavar="URL", help="postgresql://...: routers on this store against SQLite"
    )
    group.add_argument(
        "--routers", type=int, default=1, metavar="N", help="routers sharing --store (default 1)"
    )


def shared_store_requested(args: argparse.Namespace) -> bool:
    return args.store is not None or args.routers > 1


def counted_mix(count: int) -> list[SimulatedCall]:
    return [
        SimulatedCall(
            dialled=COUNTED.dialled,
            caller_id=next(_callers),
            uniqueid=f"1795400000.{next(_call_ids)}",
        )
        for _ in range(count)
    ]


MIXES: dict[str, tuple[Callable[[int], list[SimulatedCall]], dict[str, str]]] = {
    "plain": (call_mix, MIX_STATUS),
    "counted": (counted_mix, {COUNTED.dialled: COUNTED.status}),
}


@dataclass(frozen=True)
class StoreSetup:
    label: str
    store_url: str
    routers: int


def shared_config(workdir: Path, store_url: str) -> Path:
    """tests/e2e_config on `store_url`, spool relative to each router's directory, and
    4000000008's call cap out of reach."""
    config = workdir / "config"
    shutil.copytree(E2E_CONFIG, config)
    (config / "router.yaml").write_text(
        f'dial_template: "Local/{{number}}@phones"\nstore: "{store_url}"\nspool_dir: var/spool\n',
        encoding="utf-8",
    )
    plan = config / "plans" / f"{COUNTED.dialled}.yaml"
    text = plan.read_text(encoding="utf-8")
    plan.write_text(text.replace("monthly_calls: 2", f"monthly_calls: {UNREACHED_CAP}"))
    return config


def start_shared_routers(workdir: Path, setup: StoreSetup) -> list[ServerProcess]:
    config = shared_config(workdir, setup.store_url)
    command = [sys.executable, "-c", "import sys; from router.cli import main; sys.exit(main())"]
    started = []
    for index in range(1, setup.routers + 1):
        home = workdir / f"router-{index}"
        home.mkdir()
        port = free_port()
        argv = ["serve", "--config", str(config), "--listen", f"127.0.0.1:{port}"]
        started.append(_spawn(f"{setup.label} #{index}", [*command, *argv], port, home))
    return started


def postgres_cpu_s() -> float:
    """User + system CPU seconds of every PostgreSQL process on the machine so far."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, _, rest = stat.partition("(")[2].rpartition(")")
        if name == "postgres":
            fields = rest.split()
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


@dataclass(frozen=True)
class SharedRound:
    calls: tuple[int, ...]
    """Calls played on each router."""
    walls_s: tuple[float, ...]
    """Seconds until each router's last call ended."""
    wall_s: float
    routers_cpu_s: float
    database_cpu_s: float
    client_cpu_s: float
    others_cpu_s: float
    """CPU the rest of the machine used meanwhile: other work skews wall-clock figures."""
    failed: int

    @property
    def calls_per_s(self) -> float:
        return sum(self.calls) / self.wall_s

    @property
    def per_router_calls_per_s(self) -> tuple[float, ...]:
        return tuple(calls / wall for calls, wall in zip(self.calls, self.walls_s, strict=True))

    @property
    def router_ms_per_call(self) -> float:
        return 1000 * self.routers_cpu_s / sum(self.calls)

    @property
    def database_ms_per_call(self) -> float:
        return 1000 * self.database_cpu_s / sum(self.calls)


async def shared_round(
    routers: Sequence[ServerProcess], mix: str, calls: int, concurrency: int
) -> SharedRound:
    """`calls` calls of the mix dealt round-robin over the routers, `concurrency` open in
    all, as Asterisk servers spreading calls over SRV targets would."""
    make_calls, expected = MIXES[mix]
    played = make_calls(calls)
    shares = [played[index :: len(routers)] for index in range(len(routers))]
    each = max(1, concurrency // len(routers))
    cpu_before = sum(router.cpu_s() for router in routers)
    database_before, client_before = postgres_cpu_s(), time.process_time()
    machine_before = machine_busy_s()
    started = time.monotonic()

    async def play(
        router: ServerProcess, share: list[SimulatedCall]
    ) -> tuple[list[CallResult], float]:
        results = await run_calls("127.0.0.1", router.port, share, each, timeout=120)
        return results, time.monotonic() - started

    outcomes = await asyncio.gather(*map(play, routers, shares))
    wall = time.monotonic() - started
    client = time.process_time() - client_before
    routers_cpu = sum(router.cpu_s() for router in routers) - cpu_before
    database_cpu = postgres_cpu_s() - database_before
    others = machine_busy_s() - machine_before - routers_cpu - database_cpu - client
    for router in routers:
        await settle(router)
    problems = [problem for results, _ in outcomes for problem in failures(results, expected)]
    for problem in problems[:5]:
        print(f"  {mix}: {problem}", file=sys.stderr)
    return SharedRound(
        calls=tuple(len(share) for share in shares),
        walls_s=tuple(router_wall for _, router_wall in outcomes),
        wall_s=wall,
        routers_cpu_s=sum(router.cpu_s() for router in routers) - cpu_before,
        database_cpu_s=postgres_cpu_s() - database_before,
        client_cpu_s=client,
        others_cpu_s=max(0.0, others),
        failed=len(problems),
    )


# Plain drivers only: run as a script, bench/rating.py shadows the `rating` package.
_PAYMENT = (
    "INSERT INTO ledger (number, at, at_us, month, day, amount_fen, kind, ref, note) "
    "VALUES ({}, {}, {}, {}, {}, {}, 'payment', 'agi_load', 'bench prepayment')"
)
_FINISHED = "SELECT count(*) FROM cdrs WHERE outcome != 'in_progress'"


def sqlite_path(store_url: str) -> Path | None:
    return Path(store_url.removeprefix("sqlite:///")) if store_url.startswith("sqlite:") else None


async def prepay(store_url: str) -> None:
    """Credit for every counted call of the run, on the ledger of a store the routers have
    created (its triggers move the balance)."""
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    at_us = (now - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    row = (COUNTED.dialled, now.isoformat(), at_us, f"{now:%Y-%m}", f"{now:%Y-%m-%d}", PREPAY_FEN)
    path = sqlite_path(store_url)
    if path is not None:
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
            db.execute(_PAYMENT.format(*"??????"), row)
        return
    conn = await asyncpg.connect(store_url)
    try:
        await conn.execute(_PAYMENT.format(*(f"${n}" for n in range(1, 7))), *row)
    finally:
        await conn.close()


async def finished_cdrs(store_url: str) -> int:
    path = sqlite_path(store_url)
    if path is not None:
        with contextlib.closing(sqlite3.connect(path)) as db:
            return db.execute(_FINISHED).fetchone()[0]
    conn = await asyncpg.connect(store_url)
    try:
        return await conn.fetchval(_FINISHED)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def scratch_schemas(server_url: str, count: int) -> AsyncIterator[list[str]]:
    """`count` new schemas on the server, as store URLs; dropped at the end."""
    names = [f"agi_load_{os.getpid()}_{index}" for index in range(count)]
    admin = await asyncpg.connect(server_url)
    try:
        for name in names:
            await admin.execute(f"CREATE SCHEMA {name}")
        separator = "&" if "?" in server_url else "?"
        yield [f"{server_url}{separator}search_path={name}" for name in names]
    finally:
        for name in names:
            await admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        await admin.close()


async def run_shared_store(args: argparse.Namespace) -> None:
    if args.store is None or not args.store.startswith(("postgresql://", "postgres://")):
        raise SystemExit("--routers needs --store postgresql://USER@HOST/DATABASE")
    raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="agi_load.") as temp:
        workdir = Path(temp)
        counts = [1] if args.routers == 1 else [1, args.routers]
        async with scratch_schemas(args.store, len(counts)) as urls:
            setups = [StoreSetup("sqlite x1", f"sqlite:///{workdir / 'sqlite.db'}", 1)]
            setups += [
                StoreSetup(f"postgresql x{count}", url, count)
                for count, url in zip(counts, urls, strict=True)
            ]
            await measure_shared(workdir, setups, args)


async def measure_shared(workdir: Path, setups: list[StoreSetup], args: argparse.Namespace) -> None:
    running: dict[str, list[ServerProcess]] = {}
    try:
        for setup in setups:
            (workdir / setup.label).mkdir()
            running[setup.label] = start_shared_routers(workdir / setup.label, setup)
        for routers in running.values():
            for router in routers:
                await wait_ready(router)
        for setup in setups:
            await prepay(setup.store_url)
        print(
            f"{args.calls} calls x {args.rounds} rounds per mix and set-up, "
            f"{args.concurrency} open at once (shared by the routers of a set-up):"
        )
        figures: dict[tuple[str, str], list[SharedRound]] = {}
        for mix in MIXES:
            for routers in running.values():
                await shared_round(routers, mix, args.warmup, args.concurrency)
            for number in range(1, args.rounds + 1):
                for setup in setups:
                    done = await shared_round(
                        running[setup.label], mix, args.calls, args.concurrency
                    )
                    figures.setdefault((setup.label, mix), []).append(done)
                    print(
                        f"  round {number} {mix:<7} {setup.label:<14} "
                        f"{done.calls_per_s:6.0f} calls/s  routers "
                        f"{done.router_ms_per_call:6.3f} ms/call  PostgreSQL "
                        f"{done.database_ms_per_call:6.3f} ms/call  simulator "
                        f"{done.client_cpu_s / done.wall_s:4.2f} cores  others "
                        f"{done.others_cpu_s / done.wall_s:4.2f} cores  failed {done.failed}"
                    )
    finally:
        for routers in running.values():
            for router in routers:
                router.stop()
    for setup in setups:
        print(f"{setup.label}: {await finished_cdrs(setup.store_url)} finished CDRs stored")
    report_shared(figures)


def report_shared(figures: dict[tuple[str, str], list[SharedRound]]) -> None:
    print(
        f"\n{'set-up':<14} {'mix':<8} {'calls/s':>8} {'per router':>15} "
        f"{'router CPU':>10} {'PG CPU':>7} {'failed':>6}   (CPU in ms per call)"
    )
    cpu: dict[tuple[str, str], float] = {}
    for (label, mix), rounds in figures.items():
        typical = sorted(rounds, key=lambda r: r.calls_per_s)[len(rounds) // 2]
        per_router = " / ".join(f"{rate:.0f}" for rate in typical.per_router_calls_per_s)
        router_ms = statistics.median(r.router_ms_per_call for r in rounds)
        database_ms = statistics.median(r.database_ms_per_call for r in rounds)
        cpu[label, mix] = router_ms + database_ms
        print(
            f"{label:<14} {mix:<8} {typical.calls_per_s:8.0f} {per_router:>15} "
            f"{router_ms:10.3f} {database_ms:7.3f} {sum(r.failed for r in rounds):6d}"
        )
    for label in dict.fromkeys(label for label, _ in figures):
        extra = cpu[label, "counted"] - cpu[label, "plain"]
        print(f"{label}: a counted call costs {extra:+.3f} ms CPU over a plain one")


# --- the AMI link's cost (--ami) ------------------------------------------------------------
#
# A run of its own: minimal answered calls (4000000001: Dial, GET FULL VARIABLE, MSet) on
# the ceiling, on a router without an AMI link, and on a router whose AMI link logs in to
# the AMI simulator of this process with the account of asterisk/manager.conf (read
# call,cdr, its event filter, timestamped events). For every call the simulator replays the
# recorded AMI stream of such a call (answer.ami) with the call's own ids: the events up to
# the inbound channel's Hangup as the call dials (written when the AGI simulator runs the
# Dial, so they reach the router while the session is in progress, as Asterisk sends
# them), the rest once the session has ended.
#
# Every round plays all the setups at once, each at the offered rate: the CPU a process
# spends on the same work moves by 15-25 % from one half-minute to the next on a shared
# virtual machine (two identical routers in alternating rounds: 1.37 against 1.54 ms a
# call in one round, 1.81 against 1.88 in another), and setups measured side by side see
# the same machine. Each setup's figure is its ratio to the ceiling of the same round
# (two identical routers played together: within 2-5 % of each other in every round); the
# median over the rounds is what the targets are judged on.

AMI_RECORDING = "answer.ami"
RECORDED_IDS = b"1795371264."
"""The recording's ids share this prefix; its inbound (AGI) channel is `.1`."""
AMI_USER = "hotline400"
TARGET_RATIO_WITHOUT_AMI = 1.3
TARGET_RATIO_WITH_AMI = 1.5
"""The goal as ratios to the bare server: 0.30 and 0.35 ms of router CPU a call against the
bare server's 0.23 ms on a real Asterisk. Absolute figures differ from machine to machine
(and on this one from day to day); the ratio in one run is what compares."""
ANSWERED = SCENARIOS[0]
ACCOUNTS = {
    "metered": {"package": "e2e-regional", "prepaid": False},
    "minutes": {"package": "e2e-bundle", "prepaid": False},
}
"""--account: postpaid, per started minute (the call is priced from the tariff alone), or
postpaid with 1,000 included minutes (its price needs the minutes the month used: the
number's counters are read as the call arrives)."""


class AmiFeed:
    """The AMI simulator, and the recorded events of one answered call per call played."""

    def __init__(self) -> None:
        accounts = accounts_from_manager_conf(MANAGER_CONF.read_text(encoding="utf-8"))
        self.secret = accounts[AMI_USER].secret
        self.simulator = AmiSimulator(accounts, timestamp_events=True)
        events = recorded_events(RECORDINGS / AMI_RECORDING)
        inbound_hangup = b"Event: Hangup\r\n"
        split = next(
            index
            for index, event in enumerate(events)
            if event.startswith(inbound_hangup)
            and b"\r\nUniqueid: " + RECORDED_IDS + b"1\r\n" in event
        )
        self.during, self.after = events[:split], events[split:]
        self.port = 0
        self.written = 0
        self._bases = itertools.count(1796000000)

    async def start(self) -> None:
        self.port = await self.simulator.start()

    async def stop(self) -> None:
        await self.simulator.stop()

    def router_yaml(self) -> str:
        return f'ami_host: "127.0.0.1"\nami_port: {self.port}\nami_secret: "{self.secret}"\n'

    def calls(self, count: int) -> list[SimulatedCall]:
        """Answered calls whose Dial writes the events of the call so far."""
        played = []
        for _ in range(count):
            ids = f"{next(self._bases)}.".encode()
            during = [event.replace(RECORDED_IDS, ids) for event in self.during]

            def at_dial(number: str, during: list[bytes] = during) -> Outcome:
                self.written += self.simulator.send(during)
                return recorded_destinations(number)

            played.append(
                SimulatedCall(
                    dialled=ANSWERED.dialled,
                    caller_id=next(_callers),
                    uniqueid=f"{ids.decode()}1",
                    destinations=at_dial,
                )
            )
        return played

    def call_ended(self, call: SimulatedCall) -> None:
        ids = (call.uniqueid or "").removesuffix("1").encode()
        self.written += self.simulator.send(
            event.replace(RECORDED_IDS, ids) for event in self.after
        )


async def answered_calls(
    server: ServerProcess, calls: int, concurrency: int, feed: AmiFeed | None, rate: float
) -> list[CallResult]:
    """`calls` minimal answered calls started `rate` a second (0: as fast as they go), at
    most `concurrency` at once; with `feed`, each with its AMI events."""
    if feed is not None:
        played = feed.calls(calls)
    else:
        played = [
            SimulatedCall(
                dialled=ANSWERED.dialled,
                caller_id=next(_callers),
                uniqueid=f"1795400000.{next(_call_ids)}",
            )
            for _ in range(calls)
        ]
    gate = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()
    begins = loop.time()

    async def one(index: int, call: SimulatedCall) -> CallResult:
        if rate:
            await asyncio.sleep(max(0.0, begins + index / rate - loop.time()))
        async with gate:
            result = await run_call("127.0.0.1", server.port, call, timeout=120)
        if feed is not None:
            feed.call_ended(call)
        return result

    return await asyncio.gather(*(one(index, call) for index, call in enumerate(played)))


async def answered_rounds_together(
    setups: Sequence[tuple[ServerProcess, AmiFeed | None]],
    calls: int,
    concurrency: int,
    rate: float,
) -> tuple[list[Round], float, float]:
    """One round of `calls` answered calls on every setup at once; each setup's Round,
    and the simulator's and the rest of the machine's cores meanwhile."""
    cpu_before = [server.cpu_s() for server, _ in setups]
    client_before, machine_before = time.process_time(), machine_busy_s()
    started = time.monotonic()
    played = await asyncio.gather(
        *(_timed(answered_calls(server, calls, concurrency, feed, rate)) for server, feed in setups)
    )
    wall = time.monotonic() - started
    client = time.process_time() - client_before
    servers_cpu = [
        server.cpu_s() - before for (server, _), before in zip(setups, cpu_before, strict=True)
    ]
    others = machine_busy_s() - machine_before - sum(servers_cpu) - client
    rounds = []
    for (server, _), (results, server_wall), cpu in zip(setups, played, servers_cpu, strict=True):
        await settle(server)
        problems = failures(results, {ANSWERED.dialled: ANSWERED.status})
        for problem in problems[:5]:
            print(f"  {server.name}: {problem}", file=sys.stderr)
        rounds.append(
            Round(
                calls=calls,
                wall_s=server_wall,
                server_cpu_s=cpu,
                client_cpu_s=client,
                others_cpu_s=max(0.0, others),
                think_ms=tuple(think_ms(result) for result in results),
                failed=len(problems),
            )
        )
    return rounds, client / wall, max(0.0, others) / wall


async def _timed(playing: Awaitable[list[CallResult]]) -> tuple[list[CallResult], float]:
    started = time.monotonic()
    results = await playing
    return results, time.monotonic() - started


async def run_ami_cost(args: argparse.Namespace) -> None:
    raise_fd_limit()
    trees = [("", REPO)]
    if args.compare_tree is not None:
        trees.append(("before ", args.compare_tree.resolve()))
    uvloop_installed = importlib.util.find_spec("uvloop") is not None
    with tempfile.TemporaryDirectory(prefix="agi_load.") as temp:
        workdir = Path(temp)
        (workdir / "ceiling").mkdir()
        setups: list[tuple[ServerProcess, AmiFeed | None]] = [
            (start_bare(workdir / "ceiling"), None)
        ]
        try:
            for prefix, tree in trees:
                plain = "event_loop: asyncio\n"  # uvloop, when installed, is the default
                variants = []
                if args.loop in ("both", "asyncio"):
                    variants += [("router", False, plain), ("router+AMI", True, plain)]
                if uvloop_installed and args.loop in ("both", "uvloop"):
                    variants.append(("router uvloop", False, "event_loop: uvloop\n"))
                    variants.append(("router+AMI uvloop", True, "event_loop: uvloop\n"))
                for name, with_ami, extra in variants:
                    feed = AmiFeed() if with_ami else None
                    if feed is not None:
                        await feed.start()
                        extra += feed.router_yaml()
                    home = workdir / f"{prefix}{name}".replace(" ", "_")
                    home.mkdir()
                    router = start_router(
                        home, f"{prefix}{name}", extra, tree, account=args.account
                    )
                    setups.append((router, feed))
            for server, _ in setups:
                await wait_ready(server)
            await _ami_rounds(setups, args)
        finally:
            for server, feed in setups:
                server.stop()
                if feed is not None:
                    await feed.stop()


async def _ami_rounds(
    setups: list[tuple[ServerProcess, AmiFeed | None]], args: argparse.Namespace
) -> None:
    deadline = time.monotonic() + 60
    for server, feed in setups:
        while feed is not None and feed.simulator.sessions < 1:  # links log in meanwhile
            if time.monotonic() > deadline:
                problems = "\n".join(server.logged_problems()[-5:])
                raise SystemExit(f"{server.name}: its AMI link did not log in\n{problems}")
            await asyncio.sleep(0.05)
    # warm caches, imports and the SQLite file
    await answered_rounds_together(setups, args.warmup, args.concurrency, args.rate)
    called = "" if args.account is None else f" to a number with a {args.account} account"
    print(
        f"minimal answered calls{called}, {args.calls} x {args.rounds} rounds, every setup at "
        f"once, {args.rate:g} calls/s offered to each, at most {args.concurrency} at once; "
        f"AMI: {AMI_RECORDING} per call, manager.conf's account"
    )
    rounds: dict[str, list[Round]] = {server.name: [] for server, _ in setups}
    written = {server.name: feed.written for server, feed in setups if feed is not None}
    for number in range(1, args.rounds + 1):
        done, simulators, others = await answered_rounds_together(
            setups, args.calls, args.concurrency, args.rate
        )
        ceiling = done[0].cpu_ms_per_call
        print(f"  round {number}: simulators {simulators:4.2f} cores, others {others:4.2f} cores")
        for (server, _), figures in zip(setups, done, strict=True):
            rounds[server.name].append(figures)
            print(
                f"    {server.name:<24} {figures.calls_per_s:6.0f} calls/s  "
                f"server CPU {figures.cpu_ms_per_call:6.3f} ms/call "
                f"({figures.cpu_ms_per_call / ceiling:4.2f} x ceiling)  failed {figures.failed}"
            )
    events = {
        server.name: (feed.written - written[server.name]) / (args.calls * args.rounds)
        for server, feed in setups
        if feed is not None
    }
    report_ami_cost(rounds, events)


def report_ami_cost(rounds: dict[str, list[Round]], events_per_call: dict[str, float]) -> None:
    """The median of each setup's CPU per call, and of its ratio to the ceiling round by
    round (the ceiling is the first setup)."""
    ceiling = rounds["ceiling"]
    cpu = {
        name: statistics.median(r.cpu_ms_per_call for r in done) for name, done in rounds.items()
    }
    print(f"\n{'setup':<24} {'calls/s':>8} {'CPU ms/call':>11} {'x ceiling':>9}   target")
    for name, done in rounds.items():
        typical = sorted(done, key=lambda r: r.calls_per_s)[len(done) // 2]
        ratio = statistics.median(
            r.cpu_ms_per_call / c.cpu_ms_per_call for r, c in zip(done, ceiling, strict=True)
        )
        verdict = ""
        if name != "ceiling":
            target = TARGET_RATIO_WITH_AMI if "+AMI" in name else TARGET_RATIO_WITHOUT_AMI
            verdict = f"<= {target:.1f} x: {'meets' if ratio <= target else 'misses'}"
        print(f"{name:<24} {typical.calls_per_s:8.0f} {cpu[name]:11.3f} {ratio:9.2f}   {verdict}")
    for prefix in ("", "before "):
        if f"{prefix}router+AMI" in rounds:
            extra = statistics.median(
                a.cpu_ms_per_call - r.cpu_ms_per_call
                for a, r in zip(
                    rounds[f"{prefix}router+AMI"], rounds[f"{prefix}router"], strict=True
                )
            )
            print(
                f"{prefix}AMI link: {events_per_call[f'{prefix}router+AMI']:.1f} events per call "
                f"written to it, {1000 * extra:.0f} µs of router CPU per call"
            )


# --- a CRM that never answers (--webhooks) --------------------------------------------------
#
# A run of its own: the call mix on three routers, alternating rounds: one whose plans name
# no CRM, one whose every plan sends all three call events to a CRM in this process that
# answers 204 at once, and one whose CRM accepts connections, reads the POSTs and never
# answers. The last is the worst a CRM can do: each POST waits for its timeout, the four
# workers are soon all stuck, the bounded queue fills, and from then on every event is kept
# as undelivered at once (an fsync'd append in a worker thread). Calls/s, router CPU per
# call and the router's own time per call (think time, one call at a time) are compared in
# the same process, as ratios to the router without a CRM.

CRM_KEY_ENV = "HOTLINE400_BENCH_CRM_KEY"


class BenchCrm:
    """An HTTP receiver in this process: answers every request with 204, or never answers."""

    def __init__(self, answers: bool) -> None:
        self.answers = answers
        self.requests = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._held: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._held:
            writer.transport.abort()

    def plan_yaml(self) -> str:
        return f'crm: {{url: "http://127.0.0.1:{self.port}/events", secret_env: {CRM_KEY_ENV}}}\n'

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._held.add(writer)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, ValueError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                self.requests += 1
                if not self.answers:
                    continue  # read, never answered: the router's POST runs into its timeout
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        self._held.discard(writer)


async def run_webhooks_cost(args: argparse.Namespace) -> None:
    raise_fd_limit()
    os.environ[CRM_KEY_ENV] = "bench-key-" + "k" * 32  # the routers inherit it
    answering, silent = BenchCrm(answers=True), BenchCrm(answers=False)
    await answering.start()
    await silent.start()
    with tempfile.TemporaryDirectory(prefix="agi_load.") as temp:
        workdir = Path(temp)
        setups = []
        try:
            for name, crm in (
                ("router", None),
                ("router+CRM", answering),
                ("router+dead CRM", silent),
            ):
                home = workdir / name.replace(" ", "_")
                home.mkdir()
                plan_extra = crm.plan_yaml() if crm is not None else ""
                setups.append(start_router(home, name, plan_extra=plan_extra))
            for server in setups:
                await wait_ready(server)
            figures = await _webhook_rounds(setups, args)
            kept = _undelivered(workdir / "router+dead_CRM")
        finally:
            for server in setups:
                server.stop()
            await answering.stop()
            await silent.stop()
    report_webhooks_cost(figures, answering.requests, silent.requests, kept)


async def _webhook_rounds(
    setups: list[ServerProcess], args: argparse.Namespace
) -> dict[str, LoadFigures]:
    for server in setups:  # warm caches, imports, the SQLite file; fill the dead CRM's queue
        await load_round(server, args.warmup, args.concurrency)
    print(f"call mix, {args.calls} x {args.rounds} rounds, {args.concurrency} at once:")
    rounds: dict[str, list[Round]] = {server.name: [] for server in setups}
    for number in range(1, args.rounds + 1):
        for server in setups:
            done = await load_round(server, args.calls, args.concurrency)
            rounds[server.name].append(done)
            print(
                f"  round {number} {server.name:<16} {done.calls_per_s:6.0f} calls/s  "
                f"server CPU {done.cpu_ms_per_call:6.3f} ms/call  "
                f"others {done.others_cpu_s / done.wall_s:4.2f} cores  failed {done.failed}"
            )
    return {
        server.name: LoadFigures(
            rounds[server.name], await overhead_one_at_a_time(server, args.alone_calls)
        )
        for server in setups
    }


def _undelivered(home: Path) -> int:
    kept = home / "var" / "spool" / "webhooks.undelivered"
    return len(kept.read_bytes().splitlines()) if kept.exists() else 0


def report_webhooks_cost(
    figures: dict[str, LoadFigures], delivered: int, unanswered: int, kept: int
) -> None:
    base = figures["router"]
    print(
        f"\n{'setup':<16} {'calls/s':>8} {'CPU ms/call':>11} {'alone p50':>9} "
        f"{'alone p99':>9}   ratios to the router without a CRM"
    )
    for name, figure in figures.items():
        typical = figure.median_round
        alone = percentile(figure.alone_ms, 0.5)
        print(
            f"{name:<16} {typical.calls_per_s:8.0f} {figure.cpu_ms_per_call:11.3f} "
            f"{alone:9.3f} {percentile(figure.alone_ms, 0.99):9.3f}   "
            f"calls/s {typical.calls_per_s / base.median_round.calls_per_s:.2f}, "
            f"CPU {figure.cpu_ms_per_call / base.cpu_ms_per_call:.2f}, "
            f"think {alone / percentile(base.alone_ms, 0.5):.2f}"
        )
    print(
        f"CRM answering: {delivered} events received; CRM never answering: {unanswered} "
        f"POSTs read, {kept} events kept as undelivered by its router"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=6000, help="calls per round and server")
    parser.add_argument("--concurrency", type=int, default=200, help="calls open at once")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds per server, alternating (with --ami: every setup at once)",
    )
    parser.add_argument("--warmup", type=int, default=600, help="calls before the first round")
    parser.add_argument("--alone-calls", type=int, default=600, help="calls one at a time")
    parser.add_argument("--hold", type=int, default=5000, help="ringing calls held at once")
    parser.add_argument("--ring", type=float, default=25.0, help="real seconds a held call rings")
    parser.add_argument("--quick", action="store_true", help="a small run of every measurement")
    parser.add_argument(
        "--ami",
        action="store_true",
        help="a run of its own: minimal answered calls on the ceiling and on the router "
        "without and with an AMI link fed the recorded events of each call",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=150.0,
        help="with --ami: calls started per second on every setup, 0 for as fast as they go",
    )
    parser.add_argument(
        "--compare-tree",
        type=Path,
        metavar="DIR",
        help="with --ami: also run routers from this source tree (a checkout of an earlier "
        "commit, say) in the same rounds",
    )
    parser.add_argument(
        "--loop",
        choices=("both", "asyncio", "uvloop"),
        default="both",
        help="with --ami: the event loops the routers run on (uvloop only where installed); "
        "with --compare-tree, that tree's routers run on them too",
    )
    parser.add_argument(
        "--account",
        choices=ACCOUNTS,
        help="with --ami: the answered number has a postpaid account, so every call is priced "
        "and booked: 'metered' (priced from the tariff alone) or 'minutes' (1,000 included "
        "minutes: the counters are read as each call arrives); the targets are the minimal "
        "call's",
    )
    parser.add_argument(
        "--webhooks",
        action="store_true",
        help="a run of its own: the call mix on routers without a CRM, with a CRM that "
        "answers at once, and with one that never answers",
    )
    add_shared_store_flags(parser)
    driver = parser.add_argument_group("a driver process of --hold (started by the bench)")
    driver.add_argument("--drive-held", type=int, default=0, metavar="N", help=argparse.SUPPRESS)
    driver.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    driver.add_argument("--first", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.calls, args.concurrency, args.rounds = 600, 50, 1
        args.warmup, args.alone_calls, args.hold, args.ring = 100, 100, 500, 5.0
    return args


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.drive_held:
        asyncio.run(drive_held(arguments))
    elif arguments.ami:
        asyncio.run(run_ami_cost(arguments))
    elif arguments.webhooks:
        asyncio.run(run_webhooks_cost(arguments))
    elif shared_store_requested(arguments):
        asyncio.run(run_shared_store(arguments))
    else:
        asyncio.run(run(arguments))
