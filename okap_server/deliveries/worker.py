"""The delivery worker: a task on every server process that claims due deliveries from
the outbox (``outbox.claim``) and sends them (``sender.send``), off every request's path.

A slow or dead receiver costs this task only: each attempt is bounded by
``webhook_timeout_seconds``, endpoints are sent to concurrently, and the database work
runs in threads. It also writes the ``grant.expiring`` notices now and then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import httpx
from sqlalchemy.exc import SQLAlchemyError

from okap_server.background import in_background
from okap_server.clock import new_id, utcnow
from okap_server.context import Vault
from okap_server.deliveries.expiring import note_expiring
from okap_server.webhooks import outbox
from okap_server.webhooks.secrets import open_secret
from okap_server.webhooks.sender import send
from okap_server.webhooks.url_guard import UrlPolicy

log = logging.getLogger("okap.webhooks")
BATCH = 32
# How long the delivery log keeps an event that ended (delivered or given up).
KEEP = timedelta(days=30)


class Worker:
    def __init__(self, vault: Vault, count: Callable[[str], None] = lambda outcome: None) -> None:
        settings = vault.settings
        self.vault = vault
        self.count = count  # okap_webhook_deliveries_total{outcome}
        self.owner = new_id("wk_")[:40]
        self.policy = UrlPolicy(
            allow_loopback_http=settings.webhook_allow_loopback,
            allow_private=settings.webhook_allow_private,
        )
        self.retry = outbox.RetryPolicy(
            base_seconds=settings.webhook_retry_base_seconds,
            cap_seconds=settings.webhook_retry_cap_seconds,
            max_attempts=settings.webhook_max_attempts,
        )
        self.timeout = settings.webhook_timeout_seconds
        self.lease = timedelta(seconds=self.timeout * 3 + 30)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()

    async def round(self, client: httpx.AsyncClient) -> int:
        """Claim what is due, as many as there is room in flight for, and start sending
        each on its own: a slow receiver holds its own endpoint's queue, not the others'.
        How many were claimed."""
        room = BATCH - len(self._in_flight)
        if room <= 0:
            return 0
        engine = self.vault.engine
        claimed = await asyncio.to_thread(
            outbox.claim, engine, self.owner, utcnow(), self.lease, room
        )
        for item in claimed:
            task = asyncio.create_task(self._deliver(client, item))
            self._in_flight.add(task)
            task.add_done_callback(self._finished)
        return len(claimed)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._wake.set()  # that endpoint's next event may be due now

    async def _deliver(self, client: httpx.AsyncClient, item: outbox.Claimed) -> None:
        try:
            await self._attempt(client, item)
        except SQLAlchemyError as exc:  # its lease runs out and it is tried again
            log.warning("webhook delivery not recorded: %s", type(exc).__name__)

    async def _attempt(self, client: httpx.AsyncClient, item: outbox.Claimed) -> None:
        engine = self.vault.engine
        secret = open_secret(self.vault.keyring, item)
        attempt = await send(
            client, item.url, secret, item.event_id, item.payload, self.policy, self.timeout
        )
        if attempt.ok:
            await asyncio.to_thread(
                outbox.delivered, engine, item, self.owner, attempt.status or 200, utcnow()
            )
            self.count("delivered")
            return
        gave_up = await asyncio.to_thread(
            outbox.failed,
            engine,
            item,
            self.owner,
            attempt.error or "failed",
            attempt.status,
            utcnow(),
            self.retry,
        )
        refused = (attempt.error or "").startswith("refused:")
        self.count("exhausted" if gave_up else "refused" if refused else "failed")
        if gave_up:
            log.warning("webhook endpoint %s disabled after repeated failures", item.endpoint_id)

    def tidy(self) -> None:
        """Now and then: the week-ahead expiry notices, and the outbox's old rows."""
        now = utcnow()
        note_expiring(self.vault.engine, now)
        outbox.purge(self.vault.engine, now, KEEP)

    async def run(self) -> None:
        interval = self.vault.settings.webhook_poll_seconds
        expiring_every = self.vault.settings.housekeeping_seconds
        next_expiring = 0.0
        loop = asyncio.get_running_loop()
        async with httpx.AsyncClient(headers={"accept": "*/*"}) as client:
            try:
                while True:
                    self._wake.clear()
                    try:
                        if loop.time() >= next_expiring:
                            await asyncio.to_thread(self.tidy)
                            next_expiring = loop.time() + expiring_every
                        await self.round(client)
                    except SQLAlchemyError as exc:  # the database is away: try again later
                        log.warning("webhook delivery skipped: %s", type(exc).__name__)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), interval)
            finally:
                for task in list(self._in_flight):
                    task.cancel()


@contextlib.asynccontextmanager
async def running(
    vault: Vault, count: Callable[[str], None] = lambda outcome: None
) -> AsyncIterator[None]:
    """Deliver webhooks for the lifetime of the app (every replica: claims never overlap)."""
    if not vault.settings.webhooks_enabled:
        yield
        return
    async with in_background(Worker(vault, count).run()):
        yield
