"""HTTP/1.1 over a raw loopback socket, for what a client library will not do: send the
head of a request and hold its body back, trickle a body, or keep a thousand requests open.

``RawRequest(port, head)`` connects and sends the head; ``answer(timeout)`` reads one
response (``None`` if none arrives in time), ``closed(timeout)`` says whether the server
then closed the connection.
"""

from __future__ import annotations

import select
import socket
import time
from dataclasses import dataclass


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


def head(method: str, target: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"{method} {target} HTTP/1.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class RawRequest:
    def __init__(self, port: int, request_head: bytes) -> None:
        # The pages' own host (web/page_origin.py): a page asked for on the IP literal is
        # redirected or refused before its body limits are reached; the API answers on both.
        line, _, rest = request_head.partition(b"\r\n")
        request_head = line + f"\r\nHost: localhost:{port}\r\n".encode() + rest
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(request_head)
        self._buffer = b""

    def send(self, data: bytes) -> bool:
        """Send part of the body; False once the server stopped taking it."""
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        return True

    def answered(self) -> bool:
        """Whether the server has written something back (without waiting)."""
        poller = select.poll()  # not select(): a test may hold more than 1,024 sockets
        poller.register(self.sock, select.POLLIN)
        return bool(poller.poll(0))

    def _fill(self, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except (TimeoutError, OSError):
            return False
        self._buffer += data
        return bool(data)

    def answer(self, timeout: float) -> RawAnswer | None:
        """The response, read within ``timeout`` seconds; None if it did not come."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self._buffer:
            if not self._fill(deadline):
                return None
        raw_head, _, rest = self._buffer.partition(b"\r\n\r\n")
        status_line, *header_lines = raw_head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        self._buffer = rest
        while len(self._buffer) < length:
            if not self._fill(deadline):
                return None
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return RawAnswer(int(status_line.split()[1]), headers, body)

    def closed(self, timeout: float) -> bool:
        """Whether the server closes the connection within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if self.sock.recv(65536) == b"":
                    return True
            except TimeoutError:
                return False
            except OSError:
                return True
        return False

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawRequest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
