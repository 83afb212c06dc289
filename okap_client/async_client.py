"""``AsyncOkapClient``: the asyncio/trio twin of ``OkapClient`` (same protocol core).

async with AsyncOkapClient(app_name="Notes") as okap:
    token = await okap.get_access(provider="anthropic")   # cached; asks only the first time
    print((await token.ausage()).active)
"""

from __future__ import annotations

import time
from typing import Any, Unpack

import anyio
import httpx

from okap_client._base import BaseOkapClient, build_request, detail_options, reply_from
from okap_client.delegation import DelegateOptions
from okap_client.errors import VaultUnreachable
from okap_client.flows import (
    AwaitRedirect,
    Flow,
    HttpCall,
    Listen,
    Notice,
    OpenBrowser,
    Reply,
    ShowDeviceCode,
    Sleep,
)
from okap_client.loopback import LoopbackListener
from okap_client.metadata import ServerMetadata
from okap_client.options import AccessOptions, ClientOptions
from okap_client.token import OkapToken
from okap_client.usage import Usage

_REDIRECT_POLL_SECONDS = 0.05


class AsyncOkapClient(BaseOkapClient):
    """Ask an okap vault for scoped access; an async context manager.

    Takes the same options as ``OkapClient`` (``transport`` is an async ``httpx``
    transport). ``usage`` and ``revoke`` are awaitable here: ``await client.usage(token)``.
    """

    def __init__(
        self,
        vault_url: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(vault_url, **options)
        self._transport = transport
        self._http = self._new_http()

    def _new_http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=self._transport,
            timeout=self.timeout,
            headers={"User-Agent": "okap-client", "Accept": "application/json"},
        )

    # -- I/O -----------------------------------------------------------------------------
    async def _send(self, call: HttpCall) -> Reply:
        if self._http.is_closed:
            self._http = self._new_http()
        try:
            response = await self._http.send(build_request(self._http, call))
        except httpx.TransportError as exc:
            raise VaultUnreachable(
                f"cannot reach the vault at {self.vault_url} ({type(exc).__name__})"
            ) from None
        return reply_from(response)

    async def _await_redirect(
        self, listener: LoopbackListener, timeout: float
    ) -> dict[str, str] | None:
        deadline = time.monotonic() + timeout
        while listener.answer is None and time.monotonic() < deadline:
            await anyio.sleep(_REDIRECT_POLL_SECONDS)
        return listener.answer

    async def _run(self, flow: Flow) -> OkapToken:
        listener: LoopbackListener | None = None
        try:
            result: Any = None
            while True:
                try:
                    action = flow.send(result)
                except StopIteration as done:
                    token: OkapToken = done.value
                    return self._bound(token)
                if isinstance(action, HttpCall):
                    result = await self._send(action)
                elif isinstance(action, Listen):
                    listener = LoopbackListener()
                    result = listener.redirect_uri
                elif isinstance(action, OpenBrowser):
                    result = self.open_browser(action.url)
                elif isinstance(action, AwaitRedirect):
                    assert listener is not None
                    result = await self._await_redirect(listener, action.timeout)
                elif isinstance(action, ShowDeviceCode):
                    self.show_device_code(action.code)
                    result = None
                elif isinstance(action, Notice):
                    self.notify(action.message)
                    result = None
                elif isinstance(action, Sleep):
                    await anyio.sleep(action.seconds)
                    result = None
        finally:
            flow.close()
            if listener is not None:
                listener.close()

    def _bound(self, token: OkapToken) -> OkapToken:
        """A token bound to this client: ``await token.ausage()``/``arevoke()`` go through
        it, and so do the sync ``usage()``/``revoke()`` (``OkapToken._blocking``), with this
        client's transport, cache and timeout."""
        return token.bind(None, self)

    # -- the API ---------------------------------------------------------------------------
    async def metadata(self) -> ServerMetadata:
        """The vault's RFC 8414 metadata (fetched once per client)."""
        if self._metadata is None:
            self.read_metadata(await self._send(self.metadata_call()))
        assert self._metadata is not None
        return self._metadata

    async def request_access(
        self, provider: str | None = None, **options: Unpack[AccessOptions]
    ) -> OkapToken:
        """Always ask the person again, and return a new token (not cached).

        Every call opens a consent page and, once approved, leaves one more grant in the
        vault. Most apps want ``get_access``, which reuses a cached, still-valid token and
        asks only when there is none. Returns the token as granted (maybe narrower)."""
        flow = options.pop("flow", None)
        details = self.build_details(provider, **detail_options(options))
        md = await self.metadata()
        return await self._run(self.start_flow(md, details, flow))

    async def get_access(
        self,
        provider: str | None = None,
        *,
        refresh: bool = False,
        **options: Unpack[AccessOptions],
    ) -> OkapToken:
        """The token to use on every run: a cached one that still works, else ask once.

        Reuses the cached token for this app and request while the vault says it is
        active (checked with ``/okap/usage``); only when there is none, or it expired or was
        revoked, does it ask the person (as ``request_access``) and cache the answer.
        ``refresh=True`` asks again and replaces the cached answer.
        """
        flow = options.pop("flow", None)
        details = self.build_details(provider, **detail_options(options))
        cached = None if refresh else self.cached(details)
        if cached is not None:
            if self.still_active(await self._send(self.usage_call(cached))):
                return self._bound(cached)
            self.forget(cached)
        token = await self._run(self.start_flow(await self.metadata(), details, flow))
        self.remember(details, token)
        return token

    async def usage(self, token: OkapToken) -> Usage:
        """Spend and requests used and left for ``token`` (``GET /okap/usage``)."""
        return self.read_usage(await self._send(self.usage_call(token)))

    async def revoke(self, token: OkapToken) -> None:
        """Give the token back (RFC 7009) and forget every cached copy of it."""
        self.read_revoke(await self._send(self.revoke_call(token)))
        self.forget(token)

    async def delegate(self, token: OkapToken, **options: Unpack[DelegateOptions]) -> OkapToken:
        """A narrower child of ``token`` (RFC 8693 token exchange; see ``OkapToken.delegate``)."""
        await self.metadata()
        reply = await self._send(self.delegate_call(token, **options))
        return self._bound(self.read_delegate(reply, token))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncOkapClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
