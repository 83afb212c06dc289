"""OpenTelemetry traces (``OKAP_OTEL=true``): a span per proxied request and one for its
upstream call, sent over OTLP/HTTP to a real receiver on loopback; and nothing of
OpenTelemetry imported when it is off."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from okap_server.context import Vault
from okap_server.settings import Settings
from tests.support.fake_upstream import FakeUpstream
from tests.support.grants import FAKE_KEYS, entry, make_grant
from tests.support.process import server_env, vault_process

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"

IMPORTS = """
import sys
from pathlib import Path
from okap_server.app import create_app
from okap_server.context import open_vault
from okap_server.settings import load_settings
vault = open_vault(load_settings(home=Path(sys.argv[1])))
create_app(vault)
heavy = ("opentelemetry.sdk", "opentelemetry.exporter", "okap_server.telemetry.otel")
print(sorted({m for m in sys.modules if m.startswith(heavy) and m.count(".") < 3}))
"""


def imported_otel(home: Path, otel: str) -> str:
    env = {"PATH": "/usr/bin:/bin", "OKAP_OTEL": otel, "OTEL_TRACES_EXPORTER": "none"}
    done = subprocess.run(
        [sys.executable, "-c", IMPORTS, str(home)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_nothing_of_opentelemetry_is_imported_when_it_is_off(tmp_path: Path) -> None:
    """Neither the SDK nor an exporter (FastAPI itself imports ``opentelemetry-api``, its
    own dependency, whose calls do nothing without an SDK)."""
    assert imported_otel(tmp_path / "off", "false") == "[]"
    on = imported_otel(tmp_path / "on", "true")
    assert "opentelemetry.sdk" in on and "okap_server.telemetry.otel" in on


class Receiver:
    """An OTLP/HTTP trace receiver (``POST /v1/traces``, protobuf)."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.raw: list[bytes] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                parsed = ExportTraceServiceRequest()
                parsed.ParseFromString(body)
                receiver.raw.append(body)
                receiver.requests.append(parsed)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def spans(self) -> list[Any]:
        return [
            span
            for request in self.requests
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def attributes(span: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in span.attributes:
        value = item.value
        found[item.key] = getattr(value, value.WhichOneof("value"))
    return found


@pytest.mark.slow
def test_a_span_per_request_and_its_upstream_call(
    settings: Settings, vault: Vault, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    grant = make_grant(vault, entry("openai"))
    url = f"http://127.0.0.1:{settings.port}"
    with receiving() as receiver:
        env = {
            **server_env(settings, fake_upstream),
            "OKAP_OTEL": "true",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_SERVICE_NAME": "vault-under-test",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        with vault_process(env, settings.port, tmp_path / "serve.log"):
            client = openai.OpenAI(
                base_url=f"{url}/v1/openai",
                api_key=grant.token,
                max_retries=0,
                default_headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
            )
            client.chat.completions.create(**CHAT)
            stream = client.chat.completions.create(**CHAT, stream=True)
            assert list(stream)
            wrong = openai.OpenAI(
                base_url=f"{url}/v1/openai", api_key="okap_" + "x" * 40, max_retries=0
            )
            with pytest.raises(openai.AuthenticationError):
                wrong.chat.completions.create(**CHAT)
        # The clean shutdown sent what was buffered.
        spans = receiver.spans()
        resource = receiver.requests[0].resource_spans[0].resource
        raw = b"".join(receiver.raw)

    names = {a.key: a.value.string_value for a in resource.attributes}
    assert names["service.name"] == "vault-under-test"
    server = [s for s in spans if s.name == "POST /v1/openai"]
    upstream = [s for s in spans if s.name == "POST upstream"]
    assert len(server) == 3 and len(upstream) == 2, [s.name for s in spans]
    by_id = {s.span_id: s for s in server}
    for span in upstream:  # each upstream call is a child of its request's span
        parent = by_id[span.parent_span_id]
        assert span.trace_id == parent.trace_id
        assert attributes(span)["http.response.status_code"] == 200
        assert parent.start_time_unix_nano <= span.start_time_unix_nano
        assert span.end_time_unix_nano <= parent.end_time_unix_nano
    statuses = sorted(attributes(s)["http.response.status_code"] for s in server)
    assert statuses == [200, 200, 401]
    app_traced = [s for s in server if s.trace_id.hex() == TRACE_ID]
    assert app_traced and all(s.parent_span_id.hex() == PARENT_ID for s in app_traced)
    streamed = [s for s in server if attributes(s).get("okap.streamed")]
    assert len(streamed) == 1
    assert attributes(streamed[0])["okap.capability"] == "chat"
    assert attributes(streamed[0])["gen_ai.request.model"] == "gpt-4o-mini"
    for secret in (grant.token, grant.grant_id, grant.account_id, FAKE_KEYS["openai"]):
        assert secret.encode() not in raw
    assert b"okap_x" not in raw and b"Test App" not in raw


def test_a_bad_exporter_stops_serve_in_one_line(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "OKAP_HOME": str(tmp_path / "home"),
        "OKAP_OTEL": "true",
        "OTEL_TRACES_EXPORTER": "zipkin",
    }
    done = subprocess.run(
        [sys.executable, "-m", "okap_server.cli", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "okap-server: OTEL_TRACES_EXPORTER: 'zipkin' is not otlp, console or none"
    )
    assert "listening" not in done.stdout
