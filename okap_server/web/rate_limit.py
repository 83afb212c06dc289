"""Rate limits on the front doors that create requests: token buckets per source address
and per client on a source, answered with 429 and ``Retry-After`` (RFC 6585 §4).

A *source* is the caller's address as the vault sees it (``client_ip``: the peer, or the
``X-Forwarded-For`` of a proxy in ``OKAP_TRUSTED_PROXIES``, never a header from anyone
else). An IPv6 address counts by its /64, which one host or subscriber normally holds
whole, so a flood cannot rotate through the addresses of its own subnet. A client id is
self-asserted, so the per-client bucket is keyed by (source, client id): a stranger naming a
real app uses up only its own share, never the app's.

The buckets live in the memory of each server process (``FrontDoorLimits`` is built once
per app and hung on ``app.state``): no database round trip per request. With N replicas or
workers a source gets up to N times the rate; the pending caps (``authorization/capacity.py``)
are counted in the database and hold across all of them.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from fastapi import Request

from okap_server.authorization.capacity import Caller, refusal
from okap_server.settings import Settings
from okap_server.web.sessions import client_ip

UNKNOWN_SOURCE = "unknown"
IPV6_PREFIX = 64
MAX_KEYS = 20_000  # buckets kept per limiter; the least recently used one goes first


def source_of(ip: str | None) -> str:
    """The unit floods are counted in: an IPv4 address, or an IPv6 address's /64."""
    if not ip:
        return UNKNOWN_SOURCE
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)


def request_source(request: Request) -> str:
    return source_of(client_ip(request))


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """``per_minute`` requests per key per minute, in bursts of up to ``per_minute``.

    Thread-safe (sync routes run in a thread pool); memory is bounded by ``max_keys``.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(per_minute)
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Spend one request of ``key``: 0 if allowed, else the seconds until one is."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.pop(key, None)
            if bucket is None:
                bucket = _Bucket(self.burst, now)
            else:
                refill = (now - bucket.stamp) * self.rate
                bucket.tokens = min(self.burst, bucket.tokens + refill)
                bucket.stamp = now
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate


class FrontDoorLimits:
    """The per-source and per-(source, client) limits shared by every front door."""

    def __init__(self, settings: Settings) -> None:
        self.per_source = RateLimiter(settings.front_door_per_minute)
        self.per_client = RateLimiter(settings.front_door_client_per_minute)

    def admit_source(self, flow: str, source: str) -> None:
        """Before the body is read: raise the door's 429 if this source asks too often."""
        wait = self.per_source.take(source)
        if wait:
            raise refusal(flow, "too many requests from this address; slow down", wait)

    def admit_client(self, flow: str, client_id: str, *, source: str) -> None:
        """Once the client id is parsed: raise the door's 429 if this app on this source
        asks too often (other apps on the same source keep their share)."""
        wait = self.per_client.take(f"{source} {client_id[:512]}")
        if wait:
            raise refusal(flow, "too many requests from this app; slow down", wait)


def admit(request: Request, flow: str) -> Caller:
    """A front door's first step: the source's rate check, then the ``Caller`` the protocol
    core checks the client's rate and the pending caps with."""
    limits: FrontDoorLimits = request.app.state.front_door_limits
    source = request_source(request)
    limits.admit_source(flow, source)
    return Caller(source, partial(limits.admit_client, source=source))
