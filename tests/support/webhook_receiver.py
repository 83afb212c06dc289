"""A webhook receiver on loopback: records what arrives, answers what the test says
(200, 500, nothing for a while), and verifies signatures with the ``standardwebhooks``
library, as a real receiver would."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    def verified(self, secret: str) -> dict[str, Any]:
        """The payload, once the library has checked the signature (raises if it fails)."""
        result: dict[str, Any] = Webhook(secret).verify(self.body, self.headers)
        return result


class Receiver:
    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.status = 200
        self.delay = 0.0
        self.lock = threading.Lock()
        self.url = ""
        self.hits = 0

    def accepted(self) -> list[Delivery]:
        with self.lock:
            return list(self.deliveries)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.accepted()
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError(f"{len(self.accepted())} deliveries arrived, wanted {count}")

    def types(self) -> list[str]:
        return [json.loads(d.body)["type"] for d in self.accepted()]


@contextmanager
def running_receiver(path: str = "/hooks/okap") -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with receiver.lock:
                receiver.hits += 1
                status, delay = receiver.status, receiver.delay
            if delay:
                time.sleep(delay)
            if status == 200 and self.path == path:
                with receiver.lock:
                    receiver.deliveries.append(
                        Delivery({k.lower(): v for k, v in self.headers.items()}, body)
                    )
            self.send_response(status if self.path == path else 404)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
