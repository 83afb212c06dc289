"""Talking to the providers: one pooled transport for every upstream, and retries.

A request is retried only when the provider cannot have processed it, so a retry never
runs (or bills) a request twice: when the connection failed or timed out, when the request
could not be written in full (``httpx.WriteError``: a provider never acts on part of a
request), and when the provider answered 429 or 503, which say it was not processed. Each
retry waits with exponential backoff and full jitter, honouring ``Retry-After`` (RFC 9110
§10.2.3), bounded in attempts and total time. Once the whole request was sent, a failure
to answer (the connection closed or reset, no answer within the read timeout) is never
retried: the error raised says ``outcome_unknown``, and the request is charged its worst
case (SPEC.md, "Upstream trouble"), as the provider may have billed it. Retries happen only
before any byte reached the app: a response is returned to the caller before its body is
read. Error messages never carry the URL or the request headers.
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
from okap_server.proxy.errors import ProxyError, UpstreamTimeout, UpstreamUnavailable
from okap_server.proxy.transport import AiohttpTransport
from okap_server.settings import Settings

# Answers that say the request was not processed. A 502 or 500 does not say so.
RETRY_STATUSES: frozenset[int] = frozenset({429, 503})
# Failures before the whole request was sent: it cannot have been processed.
UNSENT_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
)


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


def _unanswered(exc: ProxyError) -> ProxyError:
    exc.outcome_unknown = True
    return exc


class UpstreamPool:
    """The vault's upstream transport (aiohttp's pool unless one is injected), and retries.

    Requests go straight to the transport, not through ``httpx.AsyncClient``: the proxy
    needs no cookies, auth flows, redirects or event hooks, only timeouts and the pool.
    """

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None):
        self._transport = transport if transport is not None else AiohttpTransport()
        self._timeout = httpx.Timeout(
            connect=settings.proxy_connect_timeout,
            read=settings.proxy_read_timeout,
            write=settings.proxy_read_timeout,
            pool=settings.proxy_connect_timeout,
        ).as_dict()
        self.policy = RetryPolicy(
            attempts=settings.proxy_retry_attempts,
            max_seconds=settings.proxy_retry_max_seconds,
            base_seconds=settings.proxy_retry_base_seconds,
        )

    async def send(self, request: httpx.Request) -> httpx.Response:
        """The upstream's response with its body not yet read, after any retries."""
        request.extensions["timeout"] = self._timeout
        policy = self.policy
        deadline = time.monotonic() + policy.max_seconds
        for attempt in range(policy.attempts):
            last = attempt == policy.attempts - 1
            try:
                response = await self._transport.handle_async_request(request)
            except UNSENT_ERRORS as exc:  # never processed: free, and safe to send again
                if not last and await self._pause(policy.backoff(attempt), deadline):
                    continue
                if isinstance(exc, httpx.TimeoutException):
                    raise UpstreamTimeout() from None
                raise UpstreamUnavailable() from None
            except httpx.TimeoutException:  # sent, and no answer in time
                raise _unanswered(UpstreamTimeout()) from None
            except httpx.TransportError:  # sent, then the connection broke: maybe processed
                raise _unanswered(UpstreamUnavailable()) from None
            response.request = request
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
        await self._transport.aclose()
