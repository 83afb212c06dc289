"""Talking to the providers: one pooled async HTTP client per upstream, and retries.

Retries cover 429, 502, 503 and connection errors, with exponential backoff and full
jitter, honouring ``Retry-After`` (RFC 9110 §10.2.3), bounded in attempts and total time.
They happen only before any byte reached the app: a response is returned to the caller
before its body is read. Error messages never carry the URL or the request headers.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx

from okap_server.clock import utcnow
from okap_server.proxy.errors import UpstreamTimeout, UpstreamUnavailable
from okap_server.settings import Settings

RETRY_STATUSES: frozenset[int] = frozenset({429, 502, 503})


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - utcnow()).total_seconds(), 0.0)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int
    max_seconds: float
    base_seconds: float
    cap_seconds: float = 8.0

    def backoff(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        return float(rand() * min(self.cap_seconds, self.base_seconds * (2**attempt)))


class UpstreamPool:
    """The HTTP clients of one vault, one per provider, created on first use."""

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None):
        self._settings = settings
        self._transport = transport
        self._clients: dict[str, httpx.AsyncClient] = {}
        self.policy = RetryPolicy(
            attempts=settings.proxy_retry_attempts,
            max_seconds=settings.proxy_retry_max_seconds,
            base_seconds=settings.proxy_retry_base_seconds,
        )

    def client(self, provider: str) -> httpx.AsyncClient:
        client = self._clients.get(provider)
        if client is None:
            s = self._settings
            client = httpx.AsyncClient(
                transport=self._transport,
                timeout=httpx.Timeout(
                    connect=s.proxy_connect_timeout,
                    read=s.proxy_read_timeout,
                    write=s.proxy_read_timeout,
                    pool=s.proxy_connect_timeout,
                ),
                limits=httpx.Limits(max_connections=512, max_keepalive_connections=128),
                follow_redirects=False,
                trust_env=False,
            )
            self._clients[provider] = client
        return client

    async def send(self, provider: str, request: httpx.Request) -> httpx.Response:
        """The upstream's response with its body not yet read, after any retries."""
        client = self.client(provider)
        policy = self.policy
        deadline = time.monotonic() + policy.max_seconds
        for attempt in range(policy.attempts):
            last = attempt == policy.attempts - 1
            try:
                response = await client.send(request, stream=True)
            except httpx.TimeoutException as exc:
                if (
                    isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
                    and not last
                    and await self._pause(policy.backoff(attempt), deadline)
                ):
                    continue
                raise UpstreamTimeout() from None
            except httpx.TransportError:
                if last or not await self._pause(policy.backoff(attempt), deadline):
                    raise UpstreamUnavailable() from None
                continue
            if response.status_code not in RETRY_STATUSES or last:
                return response
            delay = retry_after_seconds(response.headers.get("retry-after"))
            if delay is None:
                delay = policy.backoff(attempt)
            if time.monotonic() + delay > deadline:
                return response
            await response.aclose()
            await self._pause(delay, deadline)
        raise UpstreamUnavailable()  # pragma: no cover - the loop returns or raises

    @staticmethod
    async def _pause(delay: float, deadline: float) -> bool:
        """Sleep before the next attempt; False if that would pass the deadline."""
        if time.monotonic() + delay > deadline:
            return False
        await asyncio.sleep(delay)
        return True

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
