"""A real vault served by uvicorn on a loopback port, in a background thread."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from okap_server.app import create_app
from okap_server.context import Vault


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve_app(app: Any, port: int) -> Iterator[str]:
    """Run an ASGI app on 127.0.0.1:port until the block ends."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def serve_vault(vault: Vault) -> Iterator[str]:
    with serve_app(create_app(vault), vault.settings.port) as url:
        yield url


def client_from(address: str, base_url: str, **options: Any) -> httpx.Client:
    """An HTTP client whose connections come from another loopback address (any 127.x.y.z
    on Linux), so the vault sees a second machine: per-address limits can be tested."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=base_url, transport=transport, **options)


@contextmanager
def secret_in_url() -> Iterator[None]:
    """Quiet the test's own ``httpx`` logger while a test puts a credential in a URL on
    purpose (to check the vault refuses or redacts it): its "HTTP Request: GET ..." line
    would otherwise be the log sentinel's hit, though it is the client's log, not the vault's."""
    logger = logging.getLogger("httpx")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
