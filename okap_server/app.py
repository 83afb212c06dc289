"""The ASGI application: thin FastAPI routes over the framework-free protocol core."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from okap_server import __version__
from okap_server.context import Vault
from okap_server.web import health
from okap_server.web.headers import SecurityHeadersMiddleware
from okap_server.web.templating import static_dir


def create_app(vault: Vault) -> FastAPI:
    """An app serving one opened vault. Start-up work that can fail is done by ``open_vault``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield

    app = FastAPI(
        title="okap vault",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.vault = vault
    app.add_middleware(SecurityHeadersMiddleware)
    app.mount("/static", StaticFiles(directory=static_dir()), name="static")
    app.include_router(health.router)
    return app
