"""The two approval flows as I/O-free generators (the "sans-I/O" style).

A flow yields *actions* (an HTTP call, "start the loopback listener", "open the browser",
"wait for the redirect", "show the device code", "sleep") and receives each action's result.
``OkapClient`` and ``AsyncOkapClient`` only perform the actions, so both share every
protocol decision made here.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from okap_client.errors import AuthorizationExpired, OkapError, VaultUnreachable, error_from_body
from okap_client.metadata import DEVICE_GRANT, ServerMetadata
from okap_client.pkce import Pkce
from okap_client.token import OkapToken

# RFC 8628 §3.5: on slow_down the interval grows by 5 seconds, for this and later polls.
SLOW_DOWN_STEP = 5.0
DEFAULT_INTERVAL = 5.0


@dataclass(frozen=True)
class HttpCall:
    method: str
    url: str
    form: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any  # the decoded JSON body, or None


@dataclass(frozen=True)
class Listen:
    """Start the RFC 8252 loopback listener; the result is its redirect URI."""


@dataclass(frozen=True)
class OpenBrowser:
    url: str  # the result is True if a browser was opened


@dataclass(frozen=True)
class AwaitRedirect:
    timeout: float  # the result is the redirect's query parameters, or None on timeout


@dataclass(frozen=True)
class DeviceCode:
    """What the person needs to approve on another device (RFC 8628 §3.2)."""

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: float
    interval: float

    @property
    def message(self) -> str:
        url = self.verification_uri_complete or self.verification_uri
        return f"Open {url} and enter code {self.user_code}"


@dataclass(frozen=True)
class ShowDeviceCode:
    code: DeviceCode


@dataclass(frozen=True)
class Notice:
    message: str


@dataclass(frozen=True)
class Sleep:
    seconds: float


Action = HttpCall | Listen | OpenBrowser | AwaitRedirect | ShowDeviceCode | Notice | Sleep
Flow = Generator[Action, Any, OkapToken]


@dataclass(frozen=True)
class FlowContext:
    vault_url: str
    metadata: ServerMetadata
    client_id: str
    client_name: str | None
    client_uri: str | None
    details: list[dict[str, Any]]
    authorization_timeout: float
    clock: Callable[[], float]  # monotonic seconds
    now: Callable[[], datetime]  # aware UTC
    can_open_browser: bool = True

    def client_fields(self) -> dict[str, str]:
        fields = {"client_id": self.client_id}
        if self.client_name:
            fields["client_name"] = self.client_name
        if self.client_uri:
            fields["client_uri"] = self.client_uri
        return fields

    @property
    def details_json(self) -> str:
        return json.dumps(self.details, separators=(",", ":"))


def token_from_reply(ctx: FlowContext, reply: Reply) -> OkapToken:
    if reply.status == 200 and isinstance(reply.body, Mapping) and "access_token" in reply.body:
        return OkapToken.from_token_response(reply.body, ctx.vault_url, ctx.now())
    raise error_from_body(reply.status, reply.body)


def browser_flow(ctx: FlowContext) -> Flow:
    """PAR (RFC 9126) + authorization code with PKCE S256 + loopback redirect (RFC 8252)."""
    md = ctx.metadata
    assert md.authorization_endpoint is not None
    redirect_uri: str = yield Listen()
    pkce = Pkce.generate()
    state = secrets.token_urlsafe(24)
    params = {
        **ctx.client_fields(),
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "code_challenge": pkce.challenge,
        "code_challenge_method": pkce.method,
        "state": state,
        "authorization_details": ctx.details_json,
    }
    if md.pushed_authorization_request_endpoint:
        reply: Reply = yield HttpCall("POST", md.pushed_authorization_request_endpoint, params)
        request_uri = reply.body.get("request_uri") if isinstance(reply.body, Mapping) else None
        if reply.status not in (200, 201) or not isinstance(request_uri, str):
            raise error_from_body(reply.status, reply.body)
        query = {"client_id": ctx.client_id, "request_uri": request_uri}
    else:
        query = params
    url = f"{md.authorization_endpoint}?{urlencode(query)}"
    opened: bool = yield OpenBrowser(url)
    if opened:
        yield Notice(f"Approve the request in your browser. If no page opened, visit: {url}")
    else:
        yield Notice(f"Open this page in a browser to approve the request: {url}")
    answer: dict[str, str] | None = yield AwaitRedirect(ctx.authorization_timeout)
    if answer is None:
        raise AuthorizationExpired(
            f"no answer from the consent page within {ctx.authorization_timeout:.0f} seconds"
        )
    if answer.get("state") != state:
        raise OkapError("the redirect's state does not match the request", error="invalid_state")
    # RFC 9207: the redirect names its issuer; refuse a response from anyone else.
    if "iss" in answer and answer["iss"].rstrip("/") != md.issuer.rstrip("/"):
        raise OkapError("the redirect came from a different issuer", error="invalid_issuer")
    if "error" in answer:
        raise error_from_body(400, answer)
    code = answer.get("code")
    if not code:
        raise VaultUnreachable("the redirect carried neither a code nor an error")
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": ctx.client_id,
        "code_verifier": pkce.verifier,
    }
    token_reply: Reply = yield HttpCall("POST", md.token_endpoint, form)
    return token_from_reply(ctx, token_reply)


def _device_code(body: Any) -> DeviceCode:
    if not isinstance(body, Mapping) or not body.get("device_code") or not body.get("user_code"):
        raise VaultUnreachable("the vault's device authorization response is incomplete")
    return DeviceCode(
        device_code=str(body["device_code"]),
        user_code=str(body["user_code"]),
        verification_uri=str(body.get("verification_uri") or ""),
        verification_uri_complete=body.get("verification_uri_complete"),
        expires_in=float(body.get("expires_in") or 600),
        interval=float(body.get("interval") or DEFAULT_INTERVAL),
    )


def device_flow(ctx: FlowContext) -> Flow:
    """The device authorization grant (RFC 8628), polling as §3.4-3.5 say."""
    md = ctx.metadata
    assert md.device_authorization_endpoint is not None
    form = {**ctx.client_fields(), "authorization_details": ctx.details_json}
    reply: Reply = yield HttpCall("POST", md.device_authorization_endpoint, form)
    if reply.status != 200:
        raise error_from_body(reply.status, reply.body)
    device = _device_code(reply.body)
    started = ctx.clock()
    yield ShowDeviceCode(device)
    interval = device.interval
    next_poll = started + interval
    poll = {
        "grant_type": DEVICE_GRANT,
        "device_code": device.device_code,
        "client_id": ctx.client_id,
    }
    while True:
        wait = next_poll - ctx.clock()
        if wait > 0:
            yield Sleep(wait)
        if ctx.clock() - started > device.expires_in:
            raise AuthorizationExpired("the device code expired before the request was approved")
        answer: Reply = yield HttpCall("POST", md.token_endpoint, poll)
        error = answer.body.get("error") if isinstance(answer.body, Mapping) else None
        if error == "authorization_pending":
            pass
        elif error == "slow_down":
            interval += SLOW_DOWN_STEP
        else:
            return token_from_reply(ctx, answer)
        next_poll = ctx.clock() + interval
