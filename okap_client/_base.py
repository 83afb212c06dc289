"""``BaseOkapClient``: everything both clients share that does no I/O.

Like httpx's ``BaseClient``, this holds configuration and makes the protocol decisions
(which flow, which request, how to read each answer). ``OkapClient`` and
``AsyncOkapClient`` add only the sending, sleeping and waiting.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Unpack

import httpx

from okap_client.binding import okap_binding_flow
from okap_client.browser import browser_available, open_in_browser
from okap_client.cache import TokenCache
from okap_client.delegation import (
    DelegateOptions,
    delegate_call,
    delegation_details,
    read_delegated,
)
from okap_client.errors import InvalidRequest, TokenRevoked, error_from_body
from okap_client.flows import (
    DeviceCode,
    Flow,
    FlowContext,
    HttpCall,
    Reply,
    browser_flow,
    device_flow,
)
from okap_client.metadata import WELL_KNOWN_PATH, ServerMetadata
from okap_client.options import AccessOptions
from okap_client.request import build_entry, build_limits, normalize_details, normalize_expires
from okap_client.token import OkapToken
from okap_client.usage import Usage

DEFAULT_VAULT_URL = "http://127.0.0.1:8400"
FlowName = Literal["browser", "device", "okap"]
FLOWS: tuple[str, ...] = ("browser", "device", "okap")


def _print_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "okap-client"


class BaseOkapClient:
    """Configuration and protocol logic shared by the sync and async clients."""

    def __init__(
        self,
        vault_url: str | None = None,
        *,
        app_name: str | None = None,
        app_url: str | None = None,
        client_id: str | None = None,
        flow: FlowName | None = None,
        cache: TokenCache | None = None,
        open_browser: Callable[[str], bool | None] | None = None,
        on_device_code: Callable[[DeviceCode], None] | None = None,
        notify: Callable[[str], None] | None = None,
        authorization_timeout: float = 600.0,
        timeout: float = 30.0,
    ) -> None:
        url = vault_url or os.environ.get("OKAP_VAULT_URL") or DEFAULT_VAULT_URL
        if not url.startswith(("http://", "https://")):
            raise InvalidRequest(f"the vault URL must start with http:// or https://, not {url!r}")
        if flow is not None and flow not in FLOWS:
            raise InvalidRequest(f"flow must be 'browser', 'device' or 'okap', not {flow!r}")
        self.vault_url = url.rstrip("/")
        self.app_name = app_name
        self.app_url = app_url
        self.client_id = client_id or app_url or _slug(app_name or "okap-client")
        self.flow = flow
        self._cache = cache
        self._open_browser = open_browser
        self._notify = notify or _print_to_stderr
        self._on_device_code = on_device_code
        self.authorization_timeout = authorization_timeout
        self.timeout = timeout
        self._metadata: ServerMetadata | None = None

    # -- configuration ---------------------------------------------------------------------
    @property
    def cache(self) -> TokenCache:
        if self._cache is None:
            self._cache = TokenCache.default()
        return self._cache

    @property
    def app(self) -> str:
        """The app identity the cache is keyed by."""
        return self.client_id

    def now(self) -> datetime:
        return datetime.now(UTC)

    # -- building the request ------------------------------------------------------------
    def build_details(
        self,
        provider: str | None,
        *,
        models: Sequence[str] | None,
        capabilities: Sequence[str] | None,
        limits: Mapping[str, float | int | None] | None,
        expires: str | datetime | timedelta | None,
        reason: str | None,
        monthly_limit: float | None,
        daily_limit: float | None,
        requests_per_minute: int | None,
        authorization_details: Sequence[Mapping[str, Any]] | None,
    ) -> list[dict[str, Any]]:
        now = self.now()
        if authorization_details is not None:
            if provider is not None:
                raise InvalidRequest("pass either provider=... or authorization_details=[...]")
            return normalize_details(authorization_details, now, reason, expires)
        if provider is None:
            raise InvalidRequest("request_access needs provider=... or authorization_details")
        entry = build_entry(
            getattr(provider, "value", provider),
            models=models,
            capabilities=capabilities,
            limits=build_limits(
                limits,
                monthly_limit=monthly_limit,
                daily_limit=daily_limit,
                requests_per_minute=requests_per_minute,
            ),
            expires=normalize_expires(expires, now),
            reason=reason,
        )
        return [entry]

    # -- choosing and running a flow -------------------------------------------------------
    def metadata_call(self) -> HttpCall:
        return HttpCall("GET", f"{self.vault_url}{WELL_KNOWN_PATH}")

    def read_metadata(self, reply: Reply) -> ServerMetadata:
        if reply.status == 404:
            # No RFC 8414 document: a vault that speaks only the OKAP v1.0 binding.
            self._metadata = ServerMetadata.okap_only(self.vault_url)
            return self._metadata
        if reply.status != 200:
            raise error_from_body(reply.status, reply.body)
        self._metadata = ServerMetadata.from_body(reply.body, self.vault_url)
        return self._metadata

    def can_open_browser(self) -> bool:
        return self._open_browser is not None or browser_available()

    def choose_flow(self, md: ServerMetadata, forced: FlowName | None) -> FlowName:
        """Browser where one can be opened, else the device grant; ``forced`` wins."""
        wanted = forced or self.flow
        if wanted is not None and wanted not in FLOWS:
            raise InvalidRequest(f"flow must be 'browser', 'device' or 'okap', not {wanted!r}")
        if wanted == "browser" and not md.supports_browser:
            raise InvalidRequest("this vault does not offer the authorization code flow")
        if wanted == "device" and not md.supports_device:
            raise InvalidRequest("this vault does not offer the device authorization grant")
        if wanted == "okap" and not md.okap_authorize_endpoint:
            raise InvalidRequest("this vault does not offer the OKAP v1.0 binding")
        if wanted is not None:
            return wanted
        if md.supports_browser and self.can_open_browser():
            return "browser"
        if md.supports_device:
            return "device"
        if md.supports_browser:
            return "browser"
        if md.okap_authorize_endpoint:
            return "okap"
        raise InvalidRequest("this vault offers no approval flow this client can use")

    def start_flow(
        self, md: ServerMetadata, details: list[dict[str, Any]], flow: FlowName | None
    ) -> Flow:
        ctx = FlowContext(
            vault_url=self.vault_url,
            metadata=md,
            client_id=self.client_id,
            client_name=self.app_name,
            client_uri=self.app_url,
            details=details,
            authorization_timeout=self.authorization_timeout,
            clock=time.monotonic,
            now=self.now,
            can_open_browser=self.can_open_browser(),
        )
        flows = {"browser": browser_flow, "device": device_flow, "okap": okap_binding_flow}
        return flows[self.choose_flow(md, flow)](ctx)

    def open_browser(self, url: str) -> bool:
        opener = self._open_browser or open_in_browser
        result = opener(url)
        return True if result is None else bool(result)

    def show_device_code(self, code: DeviceCode) -> None:
        if self._on_device_code is not None:
            self._on_device_code(code)
        else:
            self._notify(code.message)

    def notify(self, message: str) -> None:
        self._notify(message)

    # -- token management --------------------------------------------------------------------
    def usage_call(self, token: OkapToken) -> HttpCall:
        md = self._metadata
        url = (md.okap_usage_endpoint if md else None) or f"{token.vault_url}/okap/usage"
        return HttpCall("GET", url, headers={"Authorization": f"Bearer {token.key}"})

    def read_usage(self, reply: Reply) -> Usage:
        if reply.status == 200 and isinstance(reply.body, Mapping):
            usage = Usage.from_body(reply.body)
            if not usage.active:
                raise TokenRevoked("the token is no longer active")
            return usage
        if reply.status == 401:
            body = reply.body if isinstance(reply.body, Mapping) else {}
            raise TokenRevoked(str(body.get("error_description") or "the token is not active"))
        raise error_from_body(reply.status, reply.body)

    def revoke_call(self, token: OkapToken) -> HttpCall:
        md = self._metadata
        url = (md.revocation_endpoint if md else None) or f"{token.vault_url}/oauth/revoke"
        form = {"token": token.key, "token_type_hint": "access_token", "client_id": self.client_id}
        return HttpCall("POST", url, form)

    def read_revoke(self, reply: Reply) -> None:
        # RFC 7009 §2.2: 200 even for unknown tokens; anything else is an error.
        if reply.status != 200:
            raise error_from_body(reply.status, reply.body)

    def delegate_call(self, token: OkapToken, **options: Unpack[DelegateOptions]) -> HttpCall:
        """The token-exchange call for a child of ``token`` (``delegation.py``)."""
        md = self._metadata
        endpoint = (md.token_endpoint if md else "") or f"{token.vault_url}/oauth/token"
        details = delegation_details(
            token,
            provider=options.get("provider"),
            models=options.get("models"),
            capabilities=options.get("capabilities"),
            limits=options.get("limits"),
            expires_in=options.get("expires_in"),
            now=self.now(),
        )
        return delegate_call(token, endpoint, details, options.get("client_name"))

    def read_delegate(self, reply: Reply, token: OkapToken) -> OkapToken:
        return read_delegated(reply, token.vault_url, self.now())

    def cached(self, details: list[dict[str, Any]]) -> OkapToken | None:
        return self.cache.find(self.vault_url, self.app, details, self.now())

    def remember(self, details: list[dict[str, Any]], token: OkapToken) -> None:
        self.cache.put(self.vault_url, self.app, details, token)

    def forget(self, token: OkapToken) -> None:
        cache = self._cache or TokenCache.default()
        cache.forget(token.key)

    @staticmethod
    def still_active(reply: Reply) -> bool:
        """Whether a cached token is still good, judged from a ``/okap/usage`` answer.

        Only a clear "no" (401, or ``active: false``) drops it: a vault that does not serve
        usage must not cost the person a second consent.
        """
        if reply.status == 401:
            return False
        body = reply.body
        return not (
            reply.status == 200 and isinstance(body, Mapping) and body.get("active") is False
        )


def reply_from(response: httpx.Response) -> Reply:
    try:
        body = response.json()
    except ValueError:
        body = None
    return Reply(status=response.status_code, body=body)


def build_request(client: httpx.Client | httpx.AsyncClient, call: HttpCall) -> httpx.Request:
    return client.build_request(
        call.method, call.url, data=call.form, json=call.json, headers=call.headers
    )


def detail_options(options: AccessOptions) -> dict[str, Any]:
    keys = (
        "models",
        "capabilities",
        "limits",
        "expires",
        "reason",
        "monthly_limit",
        "daily_limit",
        "requests_per_minute",
        "authorization_details",
    )
    return {key: options.get(key) for key in keys}
