"""Sending one delivery: sign it (Standard Webhooks, with the ``standardwebhooks``
library), check its URL again, connect to the address that was checked, never follow a
redirect, and give up after a bounded time. Any 2xx is a delivery; anything else, or no
answer, is a failure to retry."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import httpx
from standardwebhooks.webhooks import Webhook

from okap_server.webhooks.url_guard import UnsafeUrl, UrlPolicy, check_url

USER_AGENT = "okap-webhooks/1"


@dataclass(frozen=True)
class Attempt:
    ok: bool
    status: int | None = None
    error: str | None = None


def signed_headers(secret: str, msg_id: str, body: str, when: datetime) -> dict[str, str]:
    """The three Standard Webhooks headers: ``webhook-signature`` is ``v1,`` and the base64
    HMAC-SHA256 of ``id.timestamp.body`` under the endpoint's secret."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, when, body),
    }


def encode(payload: dict[str, object]) -> str:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)


def _pinned(url: str, address: str) -> str:
    """The URL with its host replaced by the checked address (the Host header and TLS
    server name still say the host, so virtual hosts and certificates work)."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


async def send(
    client: httpx.AsyncClient,
    url: str,
    secret: str,
    msg_id: str,
    payload: dict[str, object],
    policy: UrlPolicy,
    timeout: float,
) -> Attempt:
    try:
        target = await asyncio.to_thread(check_url, url, policy)
    except UnsafeUrl as exc:
        return Attempt(False, None, f"refused: {exc}")
    body = encode(payload)
    headers = signed_headers(secret, msg_id, body, datetime.now(UTC))
    headers.update({"content-type": "application/json", "user-agent": USER_AGENT})
    headers["host"] = urlsplit(url).netloc.rpartition("@")[2]
    try:
        answer = await client.post(
            _pinned(url, target.address),
            content=body.encode(),
            headers=headers,
            timeout=timeout,
            follow_redirects=False,
            extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
        )
    except httpx.TimeoutException:
        return Attempt(False, None, f"no answer within {timeout:g} s")
    except httpx.HTTPError as exc:
        return Attempt(False, None, f"could not connect: {type(exc).__name__}")
    if 200 <= answer.status_code < 300:
        return Attempt(True, answer.status_code)
    if 300 <= answer.status_code < 400:
        return Attempt(False, answer.status_code, "answered a redirect (never followed)")
    return Attempt(False, answer.status_code, f"answered HTTP {answer.status_code}")
