"""The loopback redirect listener for native apps (RFC 8252 §7.3).

Listens on ``127.0.0.1`` and a port the OS picks, accepts exactly one redirect on
``/callback`` and shows the person a small page saying they can close the tab. The
authorization code in the query is never logged.
"""

from __future__ import annotations

import html
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

CALLBACK_PATH = "/callback"

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>okap</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;
padding:0 1rem;color:#222}}h1{{font-size:1.4rem}}</style></head>
<body><h1>{title}</h1><p>{body}</p></body></html>
"""


def _page(answer: dict[str, str]) -> bytes:
    if "code" in answer:
        title, body = "Access approved", "You can close this tab and return to the app."
    else:
        title = "Access not granted"
        body = (answer.get("error_description") or answer.get("error") or "") + (
            " You can close this tab."
        )
    return _PAGE.format(title=html.escape(title), body=html.escape(body)).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    listener: LoopbackListener


class _Handler(BaseHTTPRequestHandler):
    server_version = "okap"
    sys_version = ""

    def do_GET(self) -> None:
        listener = cast(_Server, self.server).listener
        parts = urlsplit(self.path)
        answer = dict(parse_qsl(parts.query))
        if parts.path != CALLBACK_PATH or not ({"code", "error"} & answer.keys()):
            self.send_error(404)
            return
        listener.deliver(answer)
        body = _page(answer)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request line carries the authorization code."""


class LoopbackListener:
    """One redirect listener; use as a context manager or call ``close()``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._server = _Server((host, 0), _Handler)
        self._server.listener = self
        self._answer: dict[str, str] | None = None
        self._received = threading.Event()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="okap-loopback",
            daemon=True,
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}{CALLBACK_PATH}"

    def deliver(self, answer: dict[str, str]) -> None:
        if not self._received.is_set():
            self._answer = answer
            self._received.set()

    @property
    def answer(self) -> dict[str, str] | None:
        return self._answer if self._received.is_set() else None

    def wait(self, timeout: float) -> dict[str, str] | None:
        """The redirect's query parameters, or None if none came within ``timeout``."""
        self._received.wait(timeout)
        return self.answer

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
