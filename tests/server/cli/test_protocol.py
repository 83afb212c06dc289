"""``okap-server serve`` against slow clients, as a real process: a request whose headers
or body trickle in is cut off with 408, a connection that sends nothing is closed, and an
honest client on a kept-alive connection is unaffected."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from okap_server.context import Vault
from okap_server.settings import Settings
from tests.support.fake_upstream import FakeUpstream
from tests.support.process import server_env, vault_process
from tests.support.raw_http import RawRequest, head

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])  # no storage involved


def trickled(request: RawRequest, data: bytes, seconds: float) -> float | None:
    """Send ``data`` a byte every 0.1 s until the server answers or closes; how long that
    took, None if it did not within ``seconds``."""
    started = time.monotonic()
    for byte in data:
        if time.monotonic() - started > seconds:
            return None
        if request.answered() or not request.send(bytes([byte])):
            return time.monotonic() - started
        time.sleep(0.1)
    return None


def test_slow_clients_are_cut_off_and_honest_ones_are_not(
    settings: Settings, vault: Vault, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    env = {
        **server_env(settings, fake_upstream),
        "OKAP_HEADER_TIMEOUT_SECONDS": "1",
        "OKAP_BODY_TIMEOUT_SECONDS": "1",
    }
    port = settings.port
    with vault_process(env, port, tmp_path / "serve.log"):
        # Headers a byte at a time (slowloris): 408 after the header deadline, then closed.
        with RawRequest(port, b"GET /healthz HTTP/1.1\r\n") as slow_head:
            took = trickled(slow_head, b"Host: 127.0.0.1\r\nX-Slow: " + b"a" * 200, 8)
            assert took is not None and took < 4, took
            answer = slow_head.answer(timeout=2)
            assert answer is not None and answer.status == 408
            assert slow_head.closed(timeout=2)
        # A slow head after an honest request on the same connection: its deadline runs
        # from its own first byte (the connection's timer, set for the first head, fires
        # while it trickles and waits out the rest), then 408.
        with RawRequest(port, head("GET", "/healthz", {})) as later:
            answer = later.answer(timeout=5)
            assert answer is not None and answer.status == 200
            time.sleep(0.6)
            took = trickled(
                later, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200, 8
            )
            assert took is not None and 0.9 < took < 4, took
            answer = later.answer(timeout=2)
            assert answer is not None and answer.status == 408
            assert later.closed(timeout=2)
        # A connection that never sends a byte is closed after the same deadline.
        with RawRequest(port, b"") as silent:
            assert silent.closed(timeout=4)
        # A body a byte at a time: the app's own 408 (web/bodies.py), then closed.
        fields = {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": "500"}
        with RawRequest(port, head("POST", "/signin", fields)) as slow_body:
            took = trickled(slow_body, b"a" * 500, 8)
            assert took is not None and took < 4, took
            answer = slow_body.answer(timeout=2)
            assert answer is not None and answer.status == 408
            assert slow_body.closed(timeout=2)
        # An honest client keeps its connection across requests and pauses.
        with RawRequest(port, head("GET", "/healthz", {})) as honest:
            for _ in range(3):
                answer = honest.answer(timeout=5)
                assert answer is not None and answer.status == 200
                time.sleep(0.6)
                honest.send(head("GET", "/healthz", {}))
            answer = honest.answer(timeout=5)
            assert answer is not None and answer.status == 200
