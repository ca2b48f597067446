"""The router daemon: config, store, CDR writer, plans and the FastAGI listener, wired once.

Start order: settings -> plans (bad files are logged, their last good copies serve) -> the
FastAGI address taken -> store and CDR writer (a journal left by a crash is replayed first) ->
calls accepted -> AMI link -> the calls left in progress by a crash adopted in the background
(router.ami.adoption: once the journal is in the store, followed to their end through AMI
or closed as interrupted, retried until the store answers) -> plan watcher.
A start that cannot serve (a calendar, tariffs or numbers file with problems and no last good
copy to serve instead, address taken, store unusable) raises StartupError after closing
what it opened. Stop order on SIGTERM: stop accepting -> let calls finish up to the drain
timeout -> flush CDRs -> close the store.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from pathlib import Path

from dialplan.evaluator import RoutingState
from router.ami.adoption import Adoption
from router.ami.link import AmiLink
from router.ami.live_calls import LiveCalls
from router.ami.reconcile import Reconciler
from router.call.holding import HoldQueues
from router.call.pin_checks import PinChecks
from router.call.pin_guard import PinGuard
from router.call.session import CallServices
from router.configuration.last_good import LAST_GOOD_DIR
from router.configuration.plan_book import PlanBook
from router.configuration.settings import RouterSettings, load_settings, parse_listen
from router.fastagi.descriptors import WANTED_CALLS, raise_open_files_limit
from router.fastagi.server import FastAGIServer
from router.garbage import settle_garbage_collector
from router.lease import Lease
from router.money.accounting import Accounting
from router.money.balance_alerts import BalanceAlerts
from router.money.booking_alerts import Watch
from router.money.late_charges import LateCharges
from router.monitoring.metrics import Metrics
from router.notifications.call_events import CallEvents
from router.notifications.low_balance import LOW_BALANCE_UNDELIVERED_FILE, webhook_for
from router.notifications.sms import SMS_UNDELIVERED_FILE, RateLimit, SmsNotices, sender_for
from router.notifications.undelivered import UndeliveredEvents
from router.notifications.webhooks import WebhookDelivery
from router.numbers.inventory import Inventory
from router.numbers.statuses import NumberStatuses
from router.numbers.ticking import tick
from router.startup import (
    ENVIRONMENT_STORE,
    ROUTER_LOCK,
    ROUTER_YAML_STORE,
    LeaseLost,
    StartupError,
    claim,
    listen_problem,
    spool_identity,
    spool_problem,
    store_problem,
    unserved_problem,
)
from router.storage.call_wait import StopWait, one_store_wait
from router.storage.location import store_for, store_is_transient
from router.storage.protocol import StoreUnavailable
from router.storage.spool import Journal, journal_path
from router.storage.sqlite import SQLiteStore
from router.storage.store_url import STORE_ENV, configured_store_url, redacted
from router.storage.writer import CdrWriter

log = logging.getLogger("hotline400.daemon")


class Daemon:
    def __init__(
        self,
        config_dir: str | Path,
        *,
        listen: str | None = None,
        settings: RouterSettings | None = None,
        clock: Callable[[], datetime] | None = None,
        held_calls: int = WANTED_CALLS,
    ) -> None:
        """`held_calls`: the calls at once the router is meant to hold, warned of at start
        when its open-files limit holds fewer (a production router's busy hour by default;
        the demo, placing one call at a time, asks for one)."""
        self.config_dir = Path(config_dir)
        self.held_calls = held_calls
        self.settings = settings or load_settings(self.config_dir)
        zone = self.settings.zone()
        self.clock = clock or (lambda: datetime.now(zone))
        self.host, self.port = parse_listen(listen or self.settings.listen)
        self.plans = PlanBook(self.config_dir, zone, Path(self.settings.spool_dir) / LAST_GOOD_DIR)
        self.store = store_for(
            self.settings, port=self.port, statement_timeout=self.settings.store_timeout
        )
        self.store_name = redacted(configured_store_url(self.settings))
        self.store_named_by = ENVIRONMENT_STORE if os.environ.get(STORE_ENV) else ROUTER_YAML_STORE
        self.journal = Journal(journal_path(self.settings.spool_dir))
        self.sms = SmsNotices(
            sender_for(
                self.settings.sms_gateway, self.settings.sms_token_env, self.settings.sms_timeout
            ),
            RateLimit(self.settings.sms_per_number, self.settings.sms_window),
            self.plans.get,
            UndeliveredEvents(self.settings.spool_dir, SMS_UNDELIVERED_FILE),
            retry_for=self.settings.sms_retry_for,
            backoff=self.settings.sms_backoff,
        )
        low_balance_kept = UndeliveredEvents(self.settings.spool_dir, LOW_BALANCE_UNDELIVERED_FILE)
        self.alerts = BalanceAlerts(
            webhook_for(self.settings, low_balance_kept, self.clock), self.sms.low_balance
        )
        self.metrics = Metrics(serves=lambda number: self.plans.get(number) is not None)
        self.live_calls = LiveCalls(counted=lambda: self.plans.limited_numbers)
        self.in_progress: set[str] = set()
        """Call ids of the sessions running now, shared by the sessions and the reconciler."""
        accounting = Accounting(
            self.store, self.alerts, zone, balance_seen=self.metrics.balance_seen
        )
        self.cdrs = CdrWriter(
            self.store,
            self.journal,
            batch_interval=self.settings.cdr_batch_interval,
            written=accounting.written,
        )
        self.reconciler = Reconciler(
            self.store,
            writer=self.cdrs,
            zone=zone,
            clock=self.clock,
            in_progress=self.in_progress,
            on_completed=LateCharges(self.plans, accounting, self.cdrs).completed,
            gone_window=self.settings.adopt_cdr_window,
        )
        self.ami = self._ami_link()
        self.webhooks = WebhookDelivery(
            UndeliveredEvents(self.settings.spool_dir),
            queue_size=self.settings.webhook_queue,
            timeout=self.settings.webhook_timeout,
            attempts=self.settings.webhook_attempts,
            backoff=self.settings.webhook_backoff,
            workers=self.settings.webhook_workers,
            posted=self.metrics.webhook_posted,
            allowed_networks=self.settings.crm_networks(),
            proxy=self.settings.crm_proxy_url(),
        )
        self.lease = Lease(
            self.store,
            self.store.router,
            heartbeat=self.settings.lease_heartbeat,
            timeout=self.settings.lease_timeout,
            on_lost=self._lease_lost,
            take_over=isinstance(self.store, SQLiteStore),  # its file lock is held first
        )
        self.lease_lost: str | None = None
        """Why the router stopped on its own: another router of its name holds the lease."""
        self.adoption = Adoption(
            self.store,
            self.reconciler,
            self.ami,
            routers=self.settings.adopt_calls_of,
            cdr_window=self.settings.adopt_cdr_window,
            login_wait=self.settings.adopt_login_wait,
            caught_up=self.cdrs.caught_up,
            owned=self.lease.ensure,
        )
        self.services = CallServices(
            plans=self.plans,
            cdrs=self.cdrs,
            accounting=accounting,
            dial_template=self.settings.dial_template,
            clock=self.clock,
            recordings_dir=self.settings.recordings_dir,
            routing=RoutingState(self.plans.calendar),
            metrics=self.metrics,
            reconcile=self.reconciler.expect,
            dial_ring=self.reconciler.ring_of,
            holding=HoldQueues(self.live_calls),
            in_progress=self.in_progress,
            events=CallEvents(self.webhooks.submit, self.sms),
            pin_guard=PinGuard(self.store, self.settings.pin_guard, self.metrics),
            pin_checks=PinChecks(
                self.settings.pin_guard.check_workers, self.settings.pin_guard.max_waiting_checks
            ),
            statuses=NumberStatuses(),
            log_calls=self.settings.log_calls,
        )
        self.server = FastAGIServer(
            self.services,
            self.settings.peer_networks(),
            header_timeout=self.settings.header_timeout,
            header_max_bytes=self.settings.header_max_bytes,
            command_timeout=self.settings.command_timeout,
        )
        self.metrics.watch_listener(self.server)
        self.metrics.watch_cdr_writer(self.cdrs)
        self.metrics.watch_plans(self.plans)
        self.metrics.watch_balance_alerts(self.alerts)
        self.metrics.watch_webhooks(self.webhooks)
        self.metrics.watch_sms(self.sms)
        self.metrics.watch_kept(
            webhooks=self.webhooks.undelivered, sms=self.sms.kept, low_balance=low_balance_kept
        )
        self.metrics.watch_hold_queues(self.services.holding)
        self.metrics.watch_pin_checks(self.services.pin_checks)
        self.metrics_port: int | None = None
        self._stop = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self._balances: asyncio.Task[None] | None = None
        self._ticks: asyncio.Task[None] | None = None
        self._statuses: asyncio.Task[None] | None = None
        self._statuses_unread = False
        self._adopting: asyncio.Task[None] | None = None
        self._leasing: asyncio.Task[None] | None = None
        self._claims: list[int] = []
        """Locks on the spool_dir and the SQLite file held while the router runs."""
        self._stopping = StopWait()
        """The store's one wait after the drain (store_timeout in all), shared by the stop
        and by every task the start made (the CDR writer, the lease's heartbeat, the
        readers): a silent or locked database holds the stop that long, not a timeout for
        each thing written, renewed or released, nor for a statement one of them began."""

    def _ami_link(self) -> AmiLink | None:
        """The AMI link when router.yaml names an Asterisk; routing never depends on it."""
        settings = self.settings
        if settings.ami_host is None:
            return None
        link = AmiLink(
            settings.ami_host,
            settings.ami_port,
            settings.ami_username,
            settings.ami_password() or "",
            reconnect_max=settings.ami_reconnect_max,
            read_interval=settings.ami_read_interval,
        )
        self.live_calls.attach(link)
        self.reconciler.attach(link)
        self.metrics.watch_ami(lambda: link.connected, link.stats)
        return link

    async def start(self) -> int:
        """Bring the daemon up; returns the FastAGI port it listens on.

        Raises StartupError, after closing whatever it had opened, when the router cannot
        serve: the caller exits at once instead of living on without serving.
        """
        try:
            with one_store_wait(self._stopping):  # what the tasks started here wait at a stop
                return await self._start()
        except BaseException:
            with suppress(Exception):
                await self.stop()
            raise

    async def _start(self) -> int:
        files = raise_open_files_limit(self.held_calls)  # logs the limit and the calls it holds
        self.server.max_connections = max(1, files.calls)
        loaded = self.plans.reload()
        if loaded.unserved:
            last_good = (Path(self.settings.spool_dir) / LAST_GOOD_DIR).absolute()
            raise StartupError(unserved_problem(self.config_dir, loaded.unserved, last_good))
        try:
            self.port = await self.server.bind(self.host, self.port)
        except OSError as error:
            raise StartupError(listen_problem("FastAGI", self.host, self.port, error)) from error
        self._check_spool()
        self._claim_sqlite_file()
        store_open = await self._open_store()
        if store_open:  # before the journal of an earlier run of this name is replayed
            await self.lease.claim(f"{self.host}:{self.port}")
        self._leasing = asyncio.create_task(self.lease.keep(), name="lease")
        await self.cdrs.start()
        await self.webhooks.start()
        began = self.clock()  # the calls left in progress started before this
        if store_open:
            await self._refresh_statuses()  # before the first call
        await self.server.serve()
        if self.ami is not None:
            self.ami.start()
        # in the background: a store down or locked now only delays it, never the calls
        self._adopting = asyncio.create_task(self.adoption.run(began), name="adoption")
        if self.settings.metrics_listen:
            host, port = parse_listen(self.settings.metrics_listen)
            try:
                self.metrics_port = await self.metrics.serve(host, port)
            except OSError as error:  # calls matter more than their figures: route anyway
                log.error("%s; routing calls anyway", listen_problem("metrics", host, port, error))
            else:
                log.info("metrics on http://%s:%d/metrics", host, self.metrics_port)
        self._balances = asyncio.create_task(self._watch_balances(), name="balance-watch")
        self._ticks = asyncio.create_task(self._tick_numbers(), name="numbers-tick")
        self._statuses = asyncio.create_task(self._watch_statuses(), name="status-watch")
        if self.settings.watch_plans:
            self._watcher = asyncio.create_task(self.plans.watch(self._stop), name="plan-watch")
        log.info(
            "FastAGI listening on %s:%d (accepting with %s)",
            self.host,
            self.port,
            self.server.accepting_with,
        )
        return self.port

    def _check_spool(self) -> None:
        """The journal's directory exists and is writable now, not first during an outage."""
        directory = self.journal.path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if not os.access(directory, os.W_OK | os.X_OK):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
            remedy = "stop the other process or give each router a `spool_dir` of its own"
            self._claim(directory / ROUTER_LOCK, f"spool_dir {directory}", remedy)
            self.lease.spool = spool_identity(directory)  # the lock held: its holder is dead
        except OSError as error:
            raise StartupError(spool_problem(str(directory), error)) from error

    def _claim_sqlite_file(self) -> None:
        """A SQLite file is one router's: a second router on it would close the first one's
        calls as left in progress by a crash."""
        if not isinstance(self.store, SQLiteStore):
            return
        path = self.store.path
        remedy = (
            "a SQLite file is one router's; stop the other process, or share calls between "
            "routers through PostgreSQL (docs/deployment.md)"
        )
        try:
            self._claim(path.with_name(f"{path.name}.{ROUTER_LOCK}"), f"database {path}", remedy)
        except OSError as error:
            problem = store_problem(self.store_name, error, self.store_named_by)
            raise StartupError(problem) from error

    def _claim(self, path: Path, what: str, remedy: str) -> None:
        holder = f"pid {os.getpid()}, FastAGI {self.host}:{self.port}"
        self._claims.append(claim(path, what, remedy, holder))

    def _lease_lost(self, why: str) -> None:
        """Another router of this name took the lease over, and adopted the calls this one
        adopted: stop completing them and stop, as on SIGTERM, saying why."""
        if self._adopting is not None:
            self._adopting.cancel()
        dropped = self.reconciler.disown()
        log.error("lease lost: %s; %d adopted call(s) left to it; stopping", why, dropped)
        self.lease_lost = why
        self.request_stop()

    async def _open_store(self) -> bool:
        """Open the store; False when it is down for now (the writer journals until it is
        back). A store that cannot come back by itself stops the start."""
        try:
            await self.store.open()
        except Exception as error:
            if not store_is_transient(error):
                problem = store_problem(self.store_name, error, self.store_named_by)
                raise StartupError(problem) from error
            log.error(
                "store %s unavailable at start (%s): routing calls anyway; CDRs are journaled "
                "to %s and written when it is back",
                self.store_name,
                error,
                self.journal.path,
            )
            return False
        return True

    async def _watch_balances(self) -> None:
        """Every prepaid balance into the low-balance gauge, now and every `balance_refresh`
        seconds; calls through this router move it at once besides."""
        while not self._stop.is_set():
            try:
                await self.services.accounting.refresh_balances(self.plans.tariffs, self.clock())
            except Exception:
                log.exception("balances not refreshed")
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.settings.balance_refresh)

    async def _tick_numbers(self) -> None:
        """The numbers' time-driven transitions, now and every `numbers_tick` seconds: safe
        beside other routers and `hotline400 numbers tick` doing the same. A fee taking a
        prepaid balance below its threshold is warned of through the calls' alerts, which
        send in the background: the tick never waits for a receiver."""
        while not self._stop.is_set():
            plans = self.plans
            watch = Watch(plans.tariffs, self.alerts)
            inventory = Inventory(self.store, plans.number_rules, plans.calendar, watch)
            try:
                report = await tick(inventory, plans.tariffs, self.clock())
            except Exception as error:
                log.error("numbers' transitions not applied: %s", error)
            else:
                if report.timed or report.arrears:
                    log.info(
                        "numbers: %d transition(s) due applied, %d into or out of arrears",
                        report.timed,
                        report.arrears,
                    )
                    await self._refresh_statuses()  # what it moved counts from the next call
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.settings.numbers_tick)

    async def _watch_statuses(self) -> None:
        """The planned numbers' statuses in the inventory, every `status_refresh` seconds
        (router.numbers.statuses): the calls read them from memory."""
        while not self._stop.is_set():
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.settings.status_refresh)
            if not self._stop.is_set():
                await self._refresh_statuses()

    async def _refresh_statuses(self) -> None:
        """Said once when the store cannot be read, and once when it can again."""
        try:
            plans = self.plans
            await self.services.statuses.refresh(self.store, plans.numbers(), plans.number_rules)
        except StoreUnavailable as error:
            if not self._statuses_unread:
                log.error("numbers' statuses unreadable, the last read stay in force: %s", error)
            self._statuses_unread = True
            return
        if self._statuses_unread:
            log.info("numbers' statuses read again")
        self._statuses_unread = False

    def request_stop(self, signal_name: str | None = None) -> None:
        """Stop; a signal says at once what the stop waits for, which may be minutes."""
        if signal_name is not None and not self._stop.is_set():
            log.info(
                "%s: no new calls; %d call(s) in progress have up to %g s (drain_timeout) to "
                "finish",
                signal_name,
                len(self.server.sessions),
                self.settings.drain_timeout,
            )
        self._stop.set()

    def reload(self) -> None:
        self.plans.reload()

    async def run(self) -> None:
        """Serve until SIGTERM or SIGINT; SIGHUP reloads the plans."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self.request_stop, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        await self.start()
        settle_garbage_collector()
        await self._stop.wait()
        await self.stop()
        if self.lease_lost is not None:
            raise LeaseLost(self.lease_lost)

    async def stop(self) -> None:
        self._stop.set()
        await self.server.stop_accepting()
        cancelled = await self.server.drain(self.settings.drain_timeout)
        if cancelled:
            log.warning("%d call(s) still running after the drain timeout were cut", cancelled)
        self.services.pin_checks.close()
        self._stopping.begin(self.settings.store_timeout)
        with one_store_wait(self._stopping):
            await self._stop_with_store(self._stopping)
        for fd in self._claims:
            os.close(fd)
        self._claims.clear()
        log.info("stopped")

    async def _stop_with_store(self, grace: StopWait) -> None:
        """What of a stop may wait for the store, within `grace`."""
        await self._background_stopped(grace)
        if self._adopting is not None:
            self._adopting.cancel()
            await asyncio.gather(self._adopting, return_exceptions=True)
        if self.ami is not None:
            await self.ami.stop()
        await self.reconciler.close()
        await self.alerts.close()
        await self.webhooks.close(grace=self.settings.webhook_timeout)
        await self.sms.close(grace=self.settings.sms_timeout)
        await self.cdrs.close(grace, self.settings.store_timeout)
        if self.journal.record_count:
            log.warning(
                "stopped with %d CDR operation(s) in %s that the store has not taken: the next "
                "start writes them",
                self.journal.record_count,
                self.journal.path,
            )
        await self.metrics.close()
        if self._leasing is not None:  # renewed until the last write: a drain may be long
            self._leasing.cancel()
            await asyncio.gather(self._leasing, return_exceptions=True)
        await self.lease.release()
        await self.store.close()

    async def _background_stopped(self, grace: StopWait) -> None:
        """The plan watch and the store's readers, told to stop, finish what they are at
        within `grace`; one still waiting for the store then is cut (they only read, or
        write idempotently)."""
        tasks = [
            task
            for task in (self._watcher, self._balances, self._ticks, self._statuses)
            if task is not None
        ]
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=max(grace.left(self.settings.store_timeout), 0))
        for task in late:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
