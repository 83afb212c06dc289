"""A nearly free fake OpenAI upstream: a raw asyncio server (uvloop + httptools).

``POST .../chat/completions`` answers a fixed chat completion with usage; with
``"stream": true`` in the body it answers a server-sent-event stream (chunked), ending with a
usage chunk when ``stream_options.include_usage`` was asked, then ``data: [DONE]``. The
header ``x-bench-stream-bytes: N`` makes the stream about N bytes long (for the memory check),
written with flow control so the fake never buffers it. Everything else answers 404.

Run: ``python -m bench.upstream --port 9100``. It prints ``ready <port>`` once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from typing import cast

import httptools

from bench.loop import run

MODEL = "gpt-4o-mini"

CHAT = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello from the bench upstream."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20},
    },
    separators=(",", ":"),
).encode()


def _event(payload: object) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
    return _event(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
    )


FIRST_EVENT = _chunk({"role": "assistant", "content": ""})
WORDS = [_chunk({"content": w}) for w in ("Hello", " from", " the", " bench", " upstream", ".")]
FINISH_EVENT = _chunk({}, finish="stop")
USAGE_EVENT = _event(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [],
        "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18},
    }
)
DONE_EVENT = b"data: [DONE]\n\n"
FILLER_EVENT = _chunk({"content": "x" * 4000})

JSON_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(CHAT)
)
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
NOT_FOUND = (
    b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
)
HEALTH = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


def chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def stream_tail(include_usage: bool) -> bytes:
    events = [*WORDS, FINISH_EVENT]
    if include_usage:
        events.append(USAGE_EVENT)
    events.append(DONE_EVENT)
    return b"".join(chunked(e) for e in events) + b"0\r\n\r\n"


TAILS = {True: stream_tail(True), False: stream_tail(False)}


class Connection(asyncio.Protocol):
    """One keep-alive client connection; requests are answered in order."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.stream_bytes = 0
        self.writer: asyncio.Future[None] | None = None
        self.can_write: asyncio.Event = asyncio.Event()
        self.can_write.set()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.can_write.set()
        self.transport = None

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url, self.body, self.stream_bytes = b"", [], 0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"x-bench-stream-bytes":
            self.stream_bytes = int(value)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        transport = self.transport
        if transport is None:
            return
        path = self.url.split(b"?", 1)[0]
        if path.endswith(b"/healthz"):
            transport.write(HEALTH)
            return
        if not path.endswith(b"/chat/completions"):
            transport.write(NOT_FOUND)
            return
        body = b"".join(self.body)
        if b'"stream":true' not in body.replace(b" ", b""):
            transport.write(JSON_HEAD + CHAT)
            return
        include_usage = b'"include_usage":true' in body.replace(b" ", b"")
        transport.write(SSE_HEAD + chunked(FIRST_EVENT))
        if self.stream_bytes:
            self.writer = asyncio.ensure_future(self.write_big(self.stream_bytes, include_usage))
        else:
            tail = TAILS[include_usage]
            asyncio.get_running_loop().call_soon(self.write_tail, tail)

    def write_tail(self, tail: bytes) -> None:
        if self.transport is not None:
            self.transport.write(tail)

    async def write_big(self, total: int, include_usage: bool) -> None:
        """About ``total`` bytes of events, honouring the transport's flow control."""
        filler = chunked(FILLER_EVENT) * 16
        sent = 0
        while sent < total:
            await self.can_write.wait()
            if self.transport is None:
                return
            self.transport.write(filler)
            sent += len(filler)
        self.write_tail(TAILS[include_usage])


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Connection, host, port, backlog=4096, reuse_address=True)
    bound = server.sockets[0].getsockname()[1]
    print(f"ready {bound}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
