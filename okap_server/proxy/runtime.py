"""The proxy's long-lived state for one vault, built at start-up and closed at shutdown:
the grant cache, the price table, the upstream clients, admission, the recorder, and the
app's metrics and tracer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import anyio.to_thread

from okap_server.grants.view import GrantView, load_grant
from okap_server.proxy.accounting.admission import Admission, AdmissionRequest, Admitted
from okap_server.proxy.accounting.admission_queue import AdmissionQueue
from okap_server.proxy.accounting.lone import LoneAdmission
from okap_server.proxy.grant_cache import GrantCache
from okap_server.proxy.journal import SettlementJournal
from okap_server.proxy.notify import GrantChangeChannel
from okap_server.proxy.ownership import OwnedObjects
from okap_server.proxy.providers.base import Adapter
from okap_server.proxy.providers.registry import adapter_for
from okap_server.proxy.recorder import Outcome, Recorder
from okap_server.proxy.upstream import UpstreamPool
from okap_server.telemetry.metrics import VaultMetrics
from okap_server.telemetry.tracing import NO_TRACE, ProxyTracer

if TYPE_CHECKING:
    from okap_server.context import Vault


class ProxyRuntime:
    def __init__(
        self,
        vault: Vault,
        metrics: VaultMetrics | None = None,
        tracer: ProxyTracer = NO_TRACE,
    ) -> None:
        settings = vault.settings
        self.vault = vault
        # The app's metrics and tracer (okap_server/telemetry); a runtime of its own (a
        # benchmark, a test) gets metrics nobody scrapes.
        self.metrics = metrics if metrics is not None else VaultMetrics()
        self.tracer = tracer
        self.settings = settings
        self.catalog = vault.providers
        self.keys = vault.keys
        self.prices = vault.prices
        self.adapters: dict[str, Adapter] = {
            row.id: adapter_for(row) for row in self.catalog.rows()
        }
        wait = settings.database_wait_seconds
        self.grants = GrantCache(
            self._load_grant, ttl_seconds=settings.proxy_grant_cache_seconds, wait_seconds=wait
        )
        self.recorder = Recorder(
            vault.engine,
            flush_seconds=settings.proxy_audit_flush_seconds,
            sweep_seconds=settings.proxy_sweep_seconds,
            journal=SettlementJournal(settings.home / "journal"),
            defaults=settings.default_limits,
        )
        self.admission = Admission(
            vault.engine,
            reservation_ttl=timedelta(seconds=settings.proxy_reservation_seconds),
            settle=self.recorder.settle_now,
        )
        lone = LoneAdmission(self.admission) if LoneAdmission.supported(vault.engine) else None
        self.admissions = AdmissionQueue(
            self.admission, on_orphan=self._release_orphan, lone=lone, wait_seconds=wait
        )
        # Proxied requests being handled now: one alone is admitted without a thread hop.
        self.in_flight = 0
        self.upstreams = UpstreamPool(settings, transport=vault.proxy_transport)
        # A miss waits for another process's audit flush once before it is refused.
        self.objects = OwnedObjects(
            vault.engine, settle_seconds=2 * settings.proxy_audit_flush_seconds + 0.1
        )
        self.channel: GrantChangeChannel | None = None

    def adapter(self, provider: str) -> Adapter:
        return self.adapters[provider]

    def _load_grant(self, hashed: str) -> GrantView | None:
        with self.vault.session() as session:
            return load_grant(session, hashed, self.catalog, self.settings.default_limits)

    def _release_orphan(self, request: AdmissionRequest, admitted: Admitted) -> None:
        """A hold taken for a request that was cancelled while it waited: never forwarded,
        so released by the recorder (no request, no spend) rather than swept later."""
        self.recorder.submit(
            Outcome.abandoned_hold(
                request.grant_id,
                request.provider,
                admitted.reservation_id,
                admitted.reserved_micros,
                admitted.reserved_periods,
                request.ceilings.account_id,
                request.ceilings.key_id,
                request.ceilings.lineage,
            )
        )

    def start(self) -> None:
        """In the serving event loop: start the recorder, listen for grant changes (here,
        and on PostgreSQL from every replica)."""
        self.vault.grant_listeners.append(self.grants.invalidate)
        if self.settings.proxy_grant_notify and GrantChangeChannel.supported(self.vault.engine):
            loop = asyncio.get_running_loop()

            def soon(callback: Callable[..., None], *args: str) -> None:
                with contextlib.suppress(RuntimeError):  # the loop is closing
                    loop.call_soon_threadsafe(callback, *args)

            self.channel = GrantChangeChannel(
                self.vault.engine,
                on_change=lambda grant_id: soon(self.grants.invalidate, grant_id),
                on_reset=lambda: soon(self.grants.clear),
            )
            self.vault.grant_listeners.append(self.channel.publish)
            self.channel.start()
        self.recorder.start()
        self.admissions.start()

    async def aclose(self) -> None:
        """Flush every record and close the upstream clients."""
        if self.grants.invalidate in self.vault.grant_listeners:
            self.vault.grant_listeners.remove(self.grants.invalidate)
        if self.channel is not None:
            if self.channel.publish in self.vault.grant_listeners:
                self.vault.grant_listeners.remove(self.channel.publish)
            await anyio.to_thread.run_sync(self.channel.stop)
            self.channel = None
        await self.admissions.aclose()
        await self.recorder.aclose()
        await self.upstreams.aclose()
