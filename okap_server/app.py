"""The ASGI application: thin FastAPI routes over the framework-free protocol core."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from okap_server import __version__, housekeeping
from okap_server.api import routes as api_routes
from okap_server.context import Vault
from okap_server.dashboard import routes as dashboard_routes
from okap_server.deliveries import worker as webhook_worker
from okap_server.heap import frozen_heap
from okap_server.telemetry.collectors import DatabaseGauges
from okap_server.telemetry.metrics import VaultMetrics
from okap_server.telemetry.tracing import tracer_for
from okap_server.web import (
    consent_routes,
    device_routes,
    error_handlers,
    health,
    metrics_routes,
    oauth_routes,
    okap_routes,
    proxy_routes,
    setup_routes,
    signin_routes,
    unavailable,
    usage_routes,
)
from okap_server.web.bodies import BodyLimits
from okap_server.web.headers import SecurityHeadersMiddleware
from okap_server.web.long_poll import DecisionWatch
from okap_server.web.page_origin import PageOrigin, PageOriginMiddleware
from okap_server.web.rate_limit import FrontDoorLimits
from okap_server.web.sessions import forget_session
from okap_server.web.templating import static_dir


class VaultApp(FastAPI):
    """FastAPI with the proxy's front door in front of all of it (its error and telemetry
    layers included): every request of every app passes there, so it skips them all."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._front_door = proxy_routes.ProxyFrontDoor(partial(FastAPI.__call__, self), self.state)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._front_door(scope, receive, send)


def create_app(vault: Vault) -> FastAPI:
    """An app serving one opened vault. Start-up work that can fail is done by ``open_vault``."""

    metrics = VaultMetrics(multiprocess_dir=vault.settings.prometheus_multiproc_dir)
    metrics.registry.register(DatabaseGauges(vault.engine))
    tracer = tracer_for(vault.settings)  # imports OpenTelemetry only when it is on

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with (
            proxy_routes.running(app, vault, metrics, tracer),
            housekeeping.running(vault),
            webhook_worker.running(vault, metrics.webhook_delivery),
        ):
            with frozen_heap():  # what start-up built is never walked by the collector
                yield

    app = VaultApp(
        title="okap vault",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.vault = vault
    app.state.metrics = metrics  # GET /metrics (web/metrics_routes.py)
    app.state.decisions = DecisionWatch(vault)  # where long-polls wait (web/long_poll.py)
    # Inside the security headers (its refusals are pages too), outside every route.
    app.add_middleware(BodyLimits, vault=vault)
    app.state.front_door_limits = FrontDoorLimits(vault.settings)
    # Cookies only on the pages' host, page forms only from their own origin (SPEC.md,
    # threat model); inside the security headers, so its answers carry them too.
    app.add_middleware(
        PageOriginMiddleware,
        origin=PageOrigin.from_settings(vault.settings),
        templates=vault.templates,
        revoke_session=partial(forget_session, vault),
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.mount("/static", StaticFiles(directory=static_dir()), name="static")
    app.include_router(health.router)
    app.include_router(metrics_routes.router)
    app.include_router(setup_routes.router)
    error_handlers.install(app)
    unavailable.install(app)
    app.include_router(signin_routes.router)
    app.include_router(consent_routes.router)
    app.include_router(device_routes.router)
    app.include_router(oauth_routes.router)
    app.include_router(okap_routes.router)
    app.include_router(usage_routes.router)
    app.include_router(dashboard_routes.router)
    api_routes.install(app, vault.settings.api_per_minute)
    if vault.settings.trusted_proxy_list:
        # Outermost, so every handler (and the sign-in throttle's per-IP key) sees the real
        # client address, and only when the peer is one of OKAP_TRUSTED_PROXIES.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=vault.settings.trusted_proxy_list)
    return app


def app_from_env() -> FastAPI:
    """The app of a worker process (``okap-server serve --workers N``): each worker opens
    the vault from the same settings (environment, ``OKAP_CONFIG``) as the parent did."""
    from okap_server.context import open_vault
    from okap_server.settings import load_settings

    return create_app(open_vault(load_settings(), create_key=False))
