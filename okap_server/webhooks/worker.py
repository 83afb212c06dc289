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
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
from sqlalchemy.exc import SQLAlchemyError

from okap_server.clock import new_id, utcnow
from okap_server.context import Vault
from okap_server.webhooks import outbox
from okap_server.webhooks.expiring import note_expiring
from okap_server.webhooks.secrets import open_secret
from okap_server.webhooks.sender import send
from okap_server.webhooks.url_guard import UrlPolicy

log = logging.getLogger("okap.webhooks")
BATCH = 32
# How long the delivery log keeps an event that ended (delivered or given up).
KEEP = timedelta(days=30)


class Worker:
    def __init__(self, vault: Vault) -> None:
        settings = vault.settings
        self.vault = vault
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

    async def round(self, client: httpx.AsyncClient) -> int:
        """Claim and send one batch; how many were attempted."""
        engine = self.vault.engine
        claimed = await asyncio.to_thread(
            outbox.claim, engine, self.owner, utcnow(), self.lease, BATCH
        )
        await asyncio.gather(*(self._deliver(client, item) for item in claimed))
        return len(claimed)

    async def _deliver(self, client: httpx.AsyncClient, item: outbox.Claimed) -> None:
        engine = self.vault.engine
        secret = open_secret(self.vault.keyring, item)
        attempt = await send(
            client, item.url, secret, item.event_id, item.payload, self.policy, self.timeout
        )
        if attempt.ok:
            await asyncio.to_thread(
                outbox.delivered, engine, item, self.owner, attempt.status or 200, utcnow()
            )
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
            while True:
                busy = 0
                try:
                    if loop.time() >= next_expiring:
                        await asyncio.to_thread(self.tidy)
                        next_expiring = loop.time() + expiring_every
                    busy = await self.round(client)
                except SQLAlchemyError as exc:  # the database is away: try again later
                    log.warning("webhook delivery skipped: %s", type(exc).__name__)
                if not busy:
                    await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def running(vault: Vault) -> AsyncIterator[None]:
    """Deliver webhooks for the lifetime of the app (every replica: claims never overlap)."""
    if not vault.settings.webhooks_enabled:
        yield
        return
    task = asyncio.create_task(Worker(vault).run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
