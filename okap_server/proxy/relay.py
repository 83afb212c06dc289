"""Passing a streamed answer through as it arrives, reading usage on the way.

Server-sent events are cut at event boundaries (a blank line, WHATWG HTML §9.2.6) so an
event can be inspected, and dropped when it is the usage chunk the vault asked for itself;
everything else is passed on at once, never buffering the whole answer.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

import anyio
import httpx

from okap_server.proxy.providers.base import StreamObserver, sse_data

TAIL_BYTES = 16_384


class StreamInterrupted(Exception):
    """The upstream broke off mid-stream; the app's connection must be cut, not ended."""


def split_events(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Complete events (each with its terminating blank line) and the unfinished rest."""
    events: list[bytes] = []
    start = 0
    while True:
        lf = buffer.find(b"\n\n", start)
        crlf = buffer.find(b"\r\n\r\n", start)
        if lf < 0 and crlf < 0:
            return events, buffer[start:]
        end = crlf + 4 if crlf >= 0 and (lf < 0 or crlf < lf) else lf + 2
        events.append(buffer[start:end])
        start = end


class Relay:
    """The body of a streamed answer: iterate it, then ``aclose`` it (always).

    ``finish(observer, how)`` is called exactly once, however the stream ends: ``complete``,
    ``upstream_broken``, or ``client_gone`` (including a stream that was never started
    because the app left first), and the upstream response is always closed.
    """

    def __init__(
        self,
        response: httpx.Response,
        observer: StreamObserver,
        *,
        sse: bool,
        finish: Callable[[StreamObserver, str], None],
    ) -> None:
        self._response = response
        self._observer = observer
        self._sse = sse
        self._finish = finish
        self._finished = False
        self._started = False
        self._chunks = self._run()

    def __aiter__(self) -> Relay:
        return self

    async def __anext__(self) -> bytes:
        self._started = True
        return await self._chunks.__anext__()

    async def aclose(self) -> None:
        if self._started:
            await self._chunks.aclose()
        else:
            await self._end("client_gone")

    async def _end(self, how: str) -> None:
        if self._finished:
            return
        self._finished = True
        with anyio.CancelScope(shield=True):
            await self._response.aclose()
        self._finish(self._observer, how)

    async def _run(self) -> AsyncGenerator[bytes, None]:
        how = "client_gone"
        buffer = b""
        tail = b""
        observer = self._observer
        try:
            try:
                async for chunk in self._response.aiter_bytes():
                    if not self._sse:
                        tail = (tail + chunk)[-TAIL_BYTES:]
                        yield chunk
                        continue
                    events, buffer = split_events(buffer + chunk)
                    kept = [e for e in events if observer.observe(sse_data(e))]
                    if kept:
                        yield b"".join(kept)
            except httpx.HTTPError:
                how = "upstream_broken"
                raise StreamInterrupted() from None
            if buffer and observer.observe(sse_data(buffer)):
                yield buffer
            if not self._sse:
                observer.observe_tail(tail)
            how = "complete"
        finally:
            await self._end(how)
