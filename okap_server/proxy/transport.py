"""The proxy's default upstream transport: httpx's request/response types over aiohttp's pool.

Chosen by measurement (``bench/RESULTS.md``): under concurrency httpcore's pool polls every
open connection on each request, and a minimal passthrough on aiohttp's pool served 5x the
requests per second of the same passthrough on httpx's at c=32. okap keeps httpx's types
(``httpx.Request``/``httpx.Response``) everywhere and swaps only the sockets, behind the
``httpx.AsyncBaseTransport`` seam, so tests and operators can still inject any transport.

Errors are raised as httpx's own exception types (``ConnectError``, ``ConnectTimeout``,
``WriteError``, ``ReadTimeout``, ``ReadError``, ``RemoteProtocolError``), so retries and error
rendering do not know which transport ran. Which one says whether the request may have been
processed: connect and write errors happen before the whole request was sent. Bodies are
passed through as sent: no re-quoting of the URL, no added ``User-Agent``/``Accept``/
``Content-Type``, no decompression.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import BytesPayload
from multidict import istr
from yarl import URL

# aiohttp adds these when absent; the upstream must see only what the app sent.
_SKIP_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


def _text(value: bytes) -> str:
    """A header value as aiohttp will write it back (UTF-8), so its bytes go out unchanged;
    bytes that are not UTF-8 (obs-text, RFC 9110 §5.5) fall back to latin-1."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _timeouts(request: httpx.Request) -> aiohttp.ClientTimeout:
    timeout: dict[str, float | None] = request.extensions.get("timeout", {})
    return _client_timeout(timeout.get("connect"), timeout.get("read"))


# Both built once per value, not per request: the proxy uses one timeout setting and a
# handful of upstream URLs.
@functools.lru_cache(maxsize=64)
def _client_timeout(connect: float | None, read: float | None) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)


@functools.lru_cache(maxsize=512)
def _aiohttp_url(url: str) -> URL:
    return URL(url, encoded=True)


def _transport_error(
    exc: BaseException, request: httpx.Request, *, sent: bool = True
) -> httpx.TransportError:
    """The httpx exception an aiohttp failure is, before the response or while reading it.

    ``sent``: the whole request was handed to the connection. If it was not, the upstream
    cannot have processed it, and the failure is a ``WriteError`` (safe to retry)."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout("upstream connect timed out", request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError("upstream connection failed", request=request)
    if not sent:
        return httpx.WriteError("upstream connection failed while sending", request=request)
    if isinstance(exc, aiohttp.SocketTimeoutError | TimeoutError):
        return httpx.ReadTimeout("upstream read timed out", request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError("upstream closed the connection", request=request)
    return httpx.ReadError("upstream request failed", request=request)


class _Body(httpx.AsyncByteStream):
    """The response body as it arrives; closing early drops the connection, never reuses it."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _transport_error(exc, self._request) from None

    async def aclose(self) -> None:
        # release() keeps the connection only when the body was read to its end.
        self._response.release()


# A JSON answer of known length up to this size is read in one go by the transport: the
# proxy reads such answers whole anyway (for their usage), and one read skips a chunked
# stream's layers. Anything else (SSE, files, no length) streams as it arrives.
READ_AT_ONCE_BYTES = 1 << 20
_ENCODED = istr("Content-Encoding")


class _CutOff(httpx.AsyncByteStream):
    """A body the transport tried to read whole and that was cut off: the error is raised
    when the body is read, as a streamed body's would be, never as a failed request."""

    def __init__(self, error: httpx.TransportError) -> None:
        self._error = error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        raise self._error
        yield b""  # an async generator, as httpx expects  # pragma: no cover


class _Upload(BytesPayload):
    """The request body, noting when all of it was handed to the connection: a failure
    before that cannot have been processed upstream; one after it may have been."""

    sent = False

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        await super().write_with_length(writer, content_length)
        self.sent = True


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session (one pool for every upstream), made in the serving event loop."""

    def __init__(self, *, max_connections: int = 512, keepalive_seconds: float = 30.0) -> None:
        self._max_connections = max_connections
        self._keepalive_seconds = keepalive_seconds
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._max_connections, keepalive_timeout=self._keepalive_seconds
                ),
                auto_decompress=False,
                skip_auto_headers=_SKIP_AUTO_HEADERS,  # once here, not as a set per request
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        headers = [(name.decode("latin-1"), _text(value)) for name, value in request.headers.raw]
        upload = _Upload(body) if body else None
        options: dict[str, Any] = {
            "headers": headers,
            "data": upload,
            "allow_redirects": False,
            "timeout": _timeouts(request),
        }
        try:
            response = await self._client().request(
                request.method, _aiohttp_url(str(request.url)), **options
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            # A request with no body is sent with its head: taken as sent (never retried).
            sent = upload is None or upload.sent
            raise _transport_error(exc, request, sent=sent) from None
        answer_headers = list(response.raw_headers)
        stream: httpx.AsyncByteStream
        length = response.content_length
        if length is not None and length <= READ_AT_ONCE_BYTES and "json" in response.content_type:
            try:
                content = await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                response.close()
                stream = _CutOff(_transport_error(exc, request))
            else:
                if _ENCODED not in response.headers:
                    # Given as content, the body is taken as read: the caller's ``aread()``
                    # returns it without a pass through httpx's async iterators.
                    return httpx.Response(
                        response.status, headers=answer_headers, content=content, request=request
                    )
                stream = httpx.ByteStream(content)  # decoded (or failing) when read, as before
        else:
            stream = _Body(response, request)
        return httpx.Response(
            response.status, headers=answer_headers, stream=stream, request=request
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
