"""``OkapClient``: the synchronous SDK.

with OkapClient("http://127.0.0.1:8400", app_name="Notes summariser") as okap:
    token = okap.request_access(provider="openai", models=["gpt-4o-mini"], monthly_limit=5)
ai = openai.OpenAI(api_key=token.key, base_url=token.base_url)
"""

from __future__ import annotations

import time
from typing import Any, Unpack

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


class OkapClient(BaseOkapClient):
    """Ask an okap vault for scoped access to AI providers; a context manager.

    Two ways to ask: ``get_access`` (use it on every run: it returns the cached token while
    the vault says it is active, and asks the person only when there is none) and
    ``request_access`` (always asks again and yields a new token).

    ``vault_url`` defaults to ``$OKAP_VAULT_URL``, else ``http://127.0.0.1:8400``. Options:
    ``app_name``/``app_url`` (shown on the consent page; ``client_id`` defaults to the URL,
    else a slug of the name), ``flow`` (``"browser"``, ``"device"`` or ``"okap"``; default:
    the browser where one can be opened, else the device grant), ``cache`` (a
    ``TokenCache``; default under ``$XDG_CONFIG_HOME/okap``), ``open_browser(url)`` and
    ``on_device_code(code)``/``notify(message)`` (how the person is reached; defaults:
    ``webbrowser`` and stderr), ``authorization_timeout`` (seconds to wait for the person),
    ``timeout`` (per HTTP request) and ``transport`` (an ``httpx`` transport, for tests).
    """

    def __init__(
        self,
        vault_url: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(vault_url, **options)
        self._transport = transport
        self._http = self._new_http()

    def _new_http(self) -> httpx.Client:
        return httpx.Client(
            transport=self._transport,
            timeout=self.timeout,
            headers={"User-Agent": "okap-client", "Accept": "application/json"},
        )

    # -- I/O -----------------------------------------------------------------------------
    def _send(self, call: HttpCall) -> Reply:
        if self._http.is_closed:  # a token outlived its client: reconnect
            self._http = self._new_http()
        try:
            response = self._http.send(build_request(self._http, call))
        except httpx.TransportError as exc:
            raise VaultUnreachable(
                f"cannot reach the vault at {self.vault_url} ({type(exc).__name__})"
            ) from None
        return reply_from(response)

    def _run(self, flow: Flow) -> OkapToken:
        listener: LoopbackListener | None = None
        try:
            result: Any = None
            while True:
                try:
                    action = flow.send(result)
                except StopIteration as done:
                    token: OkapToken = done.value
                    return token.bind(self)
                if isinstance(action, HttpCall):
                    result = self._send(action)
                elif isinstance(action, Listen):
                    listener = LoopbackListener()
                    result = listener.redirect_uri
                elif isinstance(action, OpenBrowser):
                    result = self.open_browser(action.url)
                elif isinstance(action, AwaitRedirect):
                    assert listener is not None
                    result = listener.wait(action.timeout)
                elif isinstance(action, ShowDeviceCode):
                    self.show_device_code(action.code)
                    result = None
                elif isinstance(action, Notice):
                    self.notify(action.message)
                    result = None
                elif isinstance(action, Sleep):
                    time.sleep(action.seconds)
                    result = None
        finally:
            flow.close()
            if listener is not None:
                listener.close()

    # -- the API ---------------------------------------------------------------------------
    def metadata(self) -> ServerMetadata:
        """The vault's RFC 8414 metadata (fetched once per client)."""
        if self._metadata is None:
            self.read_metadata(self._send(self.metadata_call()))
        assert self._metadata is not None
        return self._metadata

    def request_access(
        self, provider: str | None = None, **options: Unpack[AccessOptions]
    ) -> OkapToken:
        """Always ask the person again, and return a new token (not cached).

        Every call opens a consent page and, once approved, leaves one more grant in the
        vault. Most apps want ``get_access``, which reuses a cached, still-valid token and
        asks only when there is none. Returns the token as granted (maybe narrower)."""
        flow = options.pop("flow", None)
        details = self.build_details(provider, **detail_options(options))
        md = self.metadata()
        return self._run(self.start_flow(md, details, flow))

    def get_access(
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
            if self.still_active(self._send(self.usage_call(cached))):
                return cached.bind(self)
            self.forget(cached)
        token = self._run(self.start_flow(self.metadata(), details, flow))
        self.remember(details, token)
        return token

    def usage(self, token: OkapToken) -> Usage:
        """Spend and requests used and left for ``token`` (``GET /okap/usage``)."""
        return self.read_usage(self._send(self.usage_call(token)))

    def revoke(self, token: OkapToken) -> None:
        """Give the token back (RFC 7009) and forget every cached copy of it."""
        self.read_revoke(self._send(self.revoke_call(token)))
        self.forget(token)

    def delegate(self, token: OkapToken, **options: Unpack[DelegateOptions]) -> OkapToken:
        """A narrower child of ``token`` (RFC 8693 token exchange; see ``OkapToken.delegate``)."""
        self.metadata()
        child = self.read_delegate(self._send(self.delegate_call(token, **options)), token)
        return child.bind(self)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OkapClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
