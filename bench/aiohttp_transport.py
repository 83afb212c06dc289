"""An experiment: okap's upstream client with httpx's API on top and aiohttp's pool beneath.

okap's ``UpstreamPool`` takes an injectable ``httpx.AsyncBaseTransport`` (``Vault.
proxy_transport``). Plugging this one in keeps every line of okap as it is and replaces only
httpcore's connection pool and HTTP/1.1 machinery, which is what the minimal passthroughs
show to dominate under concurrency. ``python -m bench.run --experiments`` runs okap with it
as ``okap-aiohttp-transport`` (via the ``app_with_aiohttp_transport`` factory).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp  # the [bench] extra; only imported when the experiment runs
import httpx

from bench.okap_target import open_vault_from_env


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: Any) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except aiohttp.ClientError as exc:
            raise httpx.ReadError("upstream read failed") from exc

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(self, limit: int = 512) -> None:
        self._limit = limit
        self._session: Any = None

    def _client(self) -> Any:
        if self._session is None:  # created inside the serving loop
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit),
                auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        try:
            response = await self._client().request(
                request.method,
                str(request.url),
                headers=[
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
                ],
                data=body or None,
                allow_redirects=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            )
        except aiohttp.ClientConnectionError as exc:
            raise httpx.ConnectError("upstream connection failed") from exc
        return httpx.Response(
            response.status,
            headers=[(k, v) for k, v in response.raw_headers],
            stream=_Body(response),
            request=request,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def app_with_aiohttp_transport() -> Any:
    """``uvicorn --factory bench.aiohttp_transport:app_with_aiohttp_transport``."""
    from okap_server.app import create_app

    vault = open_vault_from_env()
    vault.proxy_transport = AiohttpTransport()
    return create_app(vault)
