"""The HTTP server settings ``okap-server serve`` gives uvicorn against slow and many clients.

uvicorn times out an idle keep-alive connection (``timeout_keep_alive``) but not a request
whose head arrives a byte at a time: a connection that never finishes its headers is held
for ever (slowloris). :class:`HeadTimeoutProtocol` is uvicorn's httptools protocol with a
deadline on each request's head (``header_timeout_seconds``): past it the vault answers 408
and closes. Bodies have their own deadline, in the app (``web/bodies.py``).

A ``--workers`` child gets ``WORKER_STARTUP_SECONDS`` to start answering its parent's health
check (uvicorn's default, 5 s, is less than a child's import and start-up takes on a busy
two-core machine, and the parent then kills and restarts it, again and again).

``limit_concurrency`` keeps the number of connections under what the process may open
(every proxied call holds a second socket, to the provider): past it uvicorn answers 503
instead of failing to accept.
"""

from __future__ import annotations

import asyncio
import functools
import resource
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # uvicorn[standard]

from okap_server.settings import Settings

WORKER_STARTUP_SECONDS = 60
# Descriptors kept for the database pool, log files and the like.
RESERVED_FILES = 64

_TIMED_OUT_TEXT = b"The request's headers did not arrive in time."
_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\n"
    b"connection: close\r\n"
    b"\r\n%s" % (len(_TIMED_OUT_TEXT), _TIMED_OUT_TEXT)
)


class HeadTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline on every request's head: from the
    connection's first moment for the first request, from the first byte of each
    later one (the keep-alive timeout covers the idle time in between).

    One timer per connection, not one per request: a head only notes when it began, and
    the timer, when it fires, times out the head under way if its deadline has passed,
    else waits out what is left of it; with no head under way it stops, and the next
    head starts it again. Arming and cancelling a timer for every request cost 1.5 to 5
    µs of the event loop's time (bench/notes/2026-12-03-regression.md); the deadlines
    are the same.
    """

    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self.head_timer: asyncio.TimerHandle | None = None
        self.head_since: float | None = None  # when the deadline of the head under way began
        self.head_started = False  # a byte of that head has arrived

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.head_since = self.loop.time()
        self._arm(self.header_timeout)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_started = True
        if self.head_since is None:
            self.head_since = self.loop.time()
        if self.head_timer is None:
            self._arm(self.head_since + self.header_timeout - self.loop.time())

    def on_headers_complete(self) -> None:
        self.head_since = None
        self.head_started = False
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, seconds: float) -> None:
        self.head_timer = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _timed_out(self) -> None:
        self.head_timer = None
        if self.head_since is None or self.transport.is_closing():
            return  # no head under way: the next one starts the timer
        left = self.head_since + self.header_timeout - self.loop.time()
        if left > 0:  # a later head than the one the timer was set for
            self._arm(left)
            return
        if self.head_started:  # RFC 9110 §15.5.9; a connection that sent nothing just ends
            self.transport.write(_TIMED_OUT)
        self.transport.close()


def connection_budget() -> int:
    """How many connections this process can hold: half its open files (a proxied call
    uses two sockets), less a reserve."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 100_000
    return max(64, (soft - RESERVED_FILES) // 2)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The slow- and many-client settings for ``uvicorn.Config``; picklable, so they reach
    ``--workers`` processes too."""
    options: dict[str, Any] = {
        "limit_concurrency": settings.max_connections or connection_budget(),
        "timeout_keep_alive": 5,
        "timeout_worker_healthcheck": WORKER_STARTUP_SECONDS,
        "http": functools.partial(
            HeadTimeoutProtocol, header_timeout=settings.header_timeout_seconds
        ),
    }
    return options
