"""A TCP relay the test controls, between a vault and its PostgreSQL server, to inject the
faults a network or a server really has, without touching the shared server:

- ``cut``/``restore``: drop every connection and refuse new ones, as a restart does;
- ``freeze``/``thaw``: keep every connection open but pass no byte either way, as a paused
  VM, a stuck disk or a silent network does (the relay's kernel still acknowledges what is
  sent, so neither keepalives nor a TCP user timeout notice: only the vault's own bounds);
- ``lose_commit_acks(n)``: let the next ``n`` commits of a transaction that deleted rows (the
  recorder's settlement batches) reach the server, then drop the server's reply and abort
  the vault's connection: the batch is committed, and the vault cannot know it.

The last reads the PostgreSQL wire protocol (frontend/backend protocol 3.0, "Message
Formats"), so the vault must connect with ``sslmode=disable`` (see ``relayed_url``).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.engine import URL, make_url

# A simple-query message ('Q', length 4 + 7) whose text is COMMIT: how psycopg commits.
COMMIT_QUERY = b"Q\x00\x00\x00\x0bCOMMIT\x00"


@dataclass
class _Pair:
    client: socket.socket
    server: socket.socket
    # Set by the server's "DELETE n" command tag; cleared when the transaction ends.
    deleted: bool = False
    # The commit in flight is to be acknowledged to nobody.
    dropping: bool = False
    pending: bytes = field(default=b"", repr=False)


def _abort(sock: socket.socket) -> None:
    """Drop the connection at once (a reset where the kernel can), waking the relay's own
    thread blocked reading it."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class TcpRelay:
    def __init__(self, target: tuple[str, int], *, protocol: bool = False) -> None:
        self.target = target
        self.protocol = protocol  # read PostgreSQL messages (for lose_commit_acks)
        self._lock = threading.Lock()
        self._live: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._cut = threading.Event()
        self._flowing = threading.Event()
        self._flowing.set()
        self._acks_to_lose = 0
        self.acks_lost = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        self.connections = 0

    # -- the test-facing API -------------------------------------------------------------
    def cut(self) -> None:
        """Drop every connection and refuse new ones, as a restarting server does."""
        with self._lock:
            self._cut.set()
            self._listener.close()
            live, self._live = self._live, []
        for sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def restore(self) -> None:
        with self._lock:
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(128)
            self._listener = listener
            self._cut.clear()

    def freeze(self) -> None:
        """Pass nothing on, either way, on every connection, old or new, until ``thaw``."""
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def lose_commit_acks(self, count: int) -> None:
        """The next ``count`` commits of transactions that deleted rows are committed by the
        server, and their acknowledgement never reaches the vault (its connection is reset)."""
        with self._lock:
            self._acks_to_lose += count

    def close(self) -> None:
        self._stop.set()
        self._flowing.set()
        self.cut()
        self._thread.join(timeout=5)

    # -- plumbing ------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                listener = self._listener
            try:
                listener.settimeout(0.1)
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                if self._cut.is_set():
                    self._cut.wait(0.05)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._live += [client, server]
                self.connections += 1
            pair = _Pair(client, server)
            threading.Thread(target=self._upstream, args=(pair,), daemon=True).start()
            threading.Thread(target=self._downstream, args=(pair,), daemon=True).start()

    def _upstream(self, pair: _Pair) -> None:
        """Vault to server; arms the loss of a commit's acknowledgement."""
        src, dst = pair.client, pair.server
        try:
            src.settimeout(None)
            while data := src.recv(65536):
                self._flowing.wait()
                if self.protocol and COMMIT_QUERY in data and pair.deleted:
                    with self._lock:
                        if self._acks_to_lose > 0:
                            self._acks_to_lose -= 1
                            pair.dropping = True
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._end(pair)

    def _downstream(self, pair: _Pair) -> None:
        """Server to vault, message by message when reading the protocol."""
        src, dst = pair.server, pair.client
        try:
            src.settimeout(None)
            while data := src.recv(65536):
                self._flowing.wait()
                if not self.protocol:
                    dst.sendall(data)
                    continue
                passed, dropped = self._read_messages(pair, data)
                if passed:
                    dst.sendall(passed)
                if dropped:
                    with self._lock:
                        self.acks_lost += 1
                    _abort(pair.client)
                    _abort(pair.server)
                    return
        except OSError:
            pass
        finally:
            self._end(pair)

    @staticmethod
    def _read_messages(pair: _Pair, data: bytes) -> tuple[bytes, bool]:
        """The complete messages to pass on, and whether a commit's reply was dropped."""
        buffer = pair.pending + data
        start = 0
        while len(buffer) - start >= 5:
            kind = buffer[start : start + 1]
            (length,) = struct.unpack("!i", buffer[start + 1 : start + 5])
            end = start + 1 + length
            if end > len(buffer):
                break
            body = buffer[start + 5 : end]
            if kind == b"C" and body.startswith(b"DELETE"):
                pair.deleted = True
            elif kind == b"C" and body.startswith(b"COMMIT") and pair.dropping:
                pair.pending = b""
                return buffer[:start], True
            elif kind == b"Z" and body == b"I":  # ready for query, idle: no transaction
                pair.deleted = False
            start = end
        pair.pending = buffer[start:]
        return buffer[:start], False

    @staticmethod
    def _end(pair: _Pair) -> None:
        for sock in (pair.client, pair.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def relayed_url(url: str, relay: TcpRelay) -> str:
    """``url`` through the relay, in clear (so the relay can read the protocol)."""
    parsed: URL = make_url(url)
    relayed = parsed.set(host="127.0.0.1", port=relay.port).update_query_dict(
        {"sslmode": "disable", "gssencmode": "disable"}
    )
    return relayed.render_as_string(hide_password=False)


@contextmanager
def tcp_relay(host: str, port: int, *, protocol: bool = False) -> Iterator[TcpRelay]:
    relay = TcpRelay((host, port), protocol=protocol)
    try:
        yield relay
    finally:
        relay.close()
