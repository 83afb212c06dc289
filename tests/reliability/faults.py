"""An upstream that misbehaves on purpose, at the socket level.

``FaultyUpstream`` listens on a loopback port and serves the same prefixes as the fake
upstream (``/openai/v1``, ``/anthropic``, ``/google``). Each request takes the next scripted
``Fault`` (or the default); ``Fault.PASS`` relays the request byte for byte to the real fake
upstream, so a test can break some requests and let others succeed::

    with faulty_upstream(fake_upstream) as faulty:
        faulty.script(Fault.RESET, Fault.PASS)
        settings = Settings(upstreams=faulty.upstreams(), ...)

Faults: reset (RST) or close (FIN) the connection after reading the whole request, without
answering; hang past the vault's read timeout, or answer for real only after it; answer 200
with JSON that does not parse, stream a few events and then reset,
stream events whose data is garbage, or answer an error status in the provider's shape.
Every response says ``Connection: close``, so one connection is one request.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum

from tests.support.fake_upstream import FakeUpstream


class Fault(Enum):
    PASS = "pass"
    RESET = "reset"  # read the request, then RST
    CLOSE = "close"  # read the request, then close (FIN) without answering
    HANG = "hang"  # read the request, answer nothing for ``hang_seconds``
    LATE = "late"  # read the request, answer it for real after ``hang_seconds``
    INVALID_JSON = "invalid_json"  # 200 application/json, body that does not parse
    RESET_MID_STREAM = "reset_mid_stream"  # 200 text/event-stream, two events, then RST
    GARBAGE_SSE = "garbage_sse"  # 200 text/event-stream whose events are not JSON
    CUT_JSON = "cut_json"  # 200 application/json, half its content-length, then RST
    STATUS_429 = "429"
    STATUS_500 = "500"
    STATUS_502 = "502"
    STATUS_503 = "503"


ERROR_BODIES = {
    "openai": {"error": {"message": "busy", "type": "server_error", "code": None}},
    "anthropic": {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}},
    "google": {"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}},
}

# The first events of a real stream of each provider: enough for usage to start being seen.
FIRST_EVENTS = {
    "openai": [
        b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini",'
        b'"choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},'
        b'"finish_reason":null}]}\n\n',
        b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini",'
        b'"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]}\n\n',
    ],
    "anthropic": [
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"m1",'
        b'"type":"message","role":"assistant","model":"claude-haiku-4-5","content":[],'
        b'"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,'
        b'"output_tokens":1}}}\n\n',
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
        b'"content_block":{"type":"text","text":""}}\n\n',
    ],
    "google": [
        b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Hel"}]},'
        b'"index":0}],"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":1}}\n\n',
        b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"lo"}]},'
        b'"index":0}],"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":2}}\n\n',
    ],
}

GARBAGE_EVENTS = [
    b"data: {this is not json\n\n",
    b"event: \xff\xfe\ndata: \x00\x01\n\n",
    b": a comment\n\ndata: [DONE\n\n",
]


@dataclass
class Seen:
    provider: str
    fault: Fault
    request_line: str
    head: bytes = field(repr=False, default=b"")


def _provider_of(path: str) -> str:
    for provider in ("openai", "anthropic", "google"):
        if path.startswith(f"/{provider}/"):
            return provider
    return "openai"


def _read_request(conn: socket.socket) -> tuple[bytes, bytes] | None:
    """The head (up to the blank line) and the body (by Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head, body


def _reset(conn: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer sees a connection reset, not an orderly end."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def _response(status: str, content_type: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n{extra}\r\n"
    ).encode() + body


def _stream_head() -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    )


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class FaultyUpstream:
    def __init__(self, fake: FakeUpstream, *, hang_seconds: float = 5.0) -> None:
        self.fake = fake
        self.hang_seconds = hang_seconds
        self.default: Fault | Callable[[], Fault] = Fault.PASS
        self.seen: list[Seen] = []
        self._script: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    # -- the test-facing API -------------------------------------------------------------
    def upstreams(self) -> dict[str, str]:
        return {
            "openai": f"{self.url}/openai/v1",
            "anthropic": f"{self.url}/anthropic",
            "google": f"{self.url}/google",
        }

    def script(self, *faults: Fault) -> None:
        with self._lock:
            self._script.extend(faults)

    def storm(self, *faults: Fault, seed: int = 9) -> None:
        """From now on, every request gets one of ``faults`` at random (seeded)."""
        rng = random.Random(seed)
        lock = threading.Lock()

        def pick() -> Fault:
            with lock:
                return rng.choice(faults)

        self.default = pick

    def down(self) -> None:
        """Stop listening: connections are refused until ``up``. Shut down first: a close
        alone leaves the socket listening until the serving thread's ``accept`` returns,
        and a connection queued meanwhile would be reset after its request was sent."""
        with self._lock:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()

    def up(self) -> None:
        """Listen again on the same port."""
        with self._lock:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self.port))
            sock.listen(128)
            sock.settimeout(0.2)
            self._sock = sock

    def count(self, fault: Fault) -> int:
        with self._lock:
            return sum(1 for s in self.seen if s.fault is fault)

    # -- plumbing ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def _next(self) -> Fault:
        with self._lock:
            if self._script:
                return self._script.popleft()
        default = self.default
        return default if isinstance(default, Fault) else default()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:  # closed by ``down``: wait for ``up``
                time.sleep(0.05)
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(30)
            request = _read_request(conn)
            if request is None:
                conn.close()
                return
            head, body = request
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            provider = _provider_of(line.split(" ")[1] if " " in line else "/")
            fault = self._next()
            with self._lock:
                self.seen.append(Seen(provider, fault, line, head))
            self._act(conn, fault, provider, head, body)
        except OSError:
            conn.close()

    def _act(
        self, conn: socket.socket, fault: Fault, provider: str, head: bytes, body: bytes
    ) -> None:
        if fault is Fault.PASS:
            self._relay(conn, head, body)
        elif fault is Fault.RESET:
            _reset(conn)
        elif fault is Fault.CLOSE:
            conn.close()
        elif fault is Fault.HANG:
            time.sleep(self.hang_seconds)
            conn.close()
        elif fault is Fault.LATE:
            time.sleep(self.hang_seconds)
            self._relay(conn, head, body)
        elif fault is Fault.INVALID_JSON:
            conn.sendall(
                _response("200 OK", "application/json", b'{"id": "chatcmpl-1", "choices": [{"ind')
            )
            conn.close()
        elif fault is Fault.RESET_MID_STREAM:
            conn.sendall(_stream_head() + b"".join(_chunk(e) for e in FIRST_EVENTS[provider]))
            time.sleep(0.05)
            _reset(conn)
        elif fault is Fault.CUT_JSON:
            whole = _response("200 OK", "application/json", b'{"id": "chatcmpl-1"' + b" " * 200)
            conn.sendall(whole[: len(whole) - 150])
            time.sleep(0.05)
            _reset(conn)
        elif fault is Fault.GARBAGE_SSE:
            events = b"".join(_chunk(e) for e in GARBAGE_EVENTS)
            conn.sendall(_stream_head() + events + b"0\r\n\r\n")
            conn.close()
        else:
            status = int(fault.value)
            reason = {429: "Too Many Requests", 500: "Internal Server Error"}.get(status, "Error")
            retry = "retry-after: 0\r\n" if status == 429 else ""
            data = json.dumps(ERROR_BODIES[provider]).encode()
            conn.sendall(_response(f"{status} {reason}", "application/json", data, retry))
            conn.close()

    def _relay(self, conn: socket.socket, head: bytes, body: bytes) -> None:
        """Forward to the real fake upstream with ``Connection: close`` and pipe back."""
        lines = [
            line
            for line in head.split(b"\r\n")
            if not line.lower().startswith((b"connection:", b"keep-alive:"))
        ]
        lines.append(b"connection: close")
        host, port = self.fake.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as upstream:
            upstream.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                conn.sendall(data)
        conn.close()


@contextmanager
def faulty_upstream(fake: FakeUpstream, *, hang_seconds: float = 5.0) -> Iterator[FaultyUpstream]:
    server = FaultyUpstream(fake, hang_seconds=hang_seconds)
    server.start()
    try:
        yield server
    finally:
        server.close()
