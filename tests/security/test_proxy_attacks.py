"""Path tricks and SSRF: whatever an app sends, the vault only ever calls its configured
upstreams, under each one's base path, and never its own endpoints or a host the app names.
Asserted on what the fake upstream received and on a canary listener that must stay silent."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import httpx
import openai
import pytest

from okap_server.context import Vault
from tests.security.test_bad_input import raw_status
from tests.server.authorization.conftest import authorize_params, pkce_pair
from tests.support.fake_upstream import FakeUpstream
from tests.support.grants import entry, make_grant
from tests.support.person import Person


class Canary:
    """A loopback port that counts every connection made to it (there must be none)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def canary() -> Iterator[Canary]:
    listener = Canary()
    yield listener
    listener.close()


def path_tricks(canary: Canary) -> list[str]:
    c = f"127.0.0.1:{canary.port}"
    return [
        "/v1/openai/../../oauth/token",
        "/v1/openai/%2e%2e/%2e%2e/oauth/token",
        "/v1/openai/%2E%2E%2F%2E%2E%2Foauth%2Ftoken",
        "/v1/openai/%252e%252e/%252e%252e/oauth/token",
        "/v1/openai/%25252e%25252e/oauth/token",
        "/v1/openai/..%2f..%2fanthropic/v1/messages",
        "/v1/openai/..\\..\\oauth\\token",
        "/v1/openai/%5c..%5c..%5coauth",
        "/v1/openai/%c0%ae%c0%ae/%c0%ae%c0%ae/oauth/token",
        "/v1/openai/%ef%bc%8e%ef%bc%8e/oauth/token",
        f"/v1/openai//{c}/chat/completions",
        f"/v1/openai/http://{c}/chat/completions",
        f"/v1/openai/http:%2F%2F{c}/chat/completions",
        f"/v1/openai/@{c}/chat/completions",
        "/v1/openai/models%3F..%2F..%2Fx",
        "/v1/openai/models%23/../../x",
        "/v1/openai/models;/../../x",
        "/v1/openai/./models",
        "/v1/openai/models/%2e",
        "/v1/openai/models%00",
        "/v1/%2e%2e/oauth/token",
        "/v1/openai%2f..%2f..%2foauth/token",
        "/v1/openai/%0d%0aHost:%20evil/models",
        "/v1/openai/%ff%fe/models",
        "/v1/%ff/models",
        "/v1/google/v1beta/models/..%2f..%2f..%2fopenai%2fv1%2fmodels:generateContent",
        "/v1/anthropic/v1/messages/../../../google/v1beta/models",
    ]


def assert_stayed_in_bounds(fake: FakeUpstream) -> None:
    host = fake.url.removeprefix("http://")
    for received in fake.received:
        lowered = received.path.lower()
        assert received.path.startswith(f"/{received.provider}/"), received.path
        assert ".." not in received.path and "%2e" not in lowered and "\\" not in lowered
        assert "oauth" not in lowered and "okap" not in lowered, received.path
        assert received.headers["host"] == host


@pytest.mark.parametrize("backend", ["sqlite"])
def test_path_tricks_never_leave_the_upstream_base(
    live_url: str, vault: Vault, fake_upstream: FakeUpstream, canary: Canary
) -> None:
    grant = make_grant(vault, entry("openai"), entry("anthropic"), entry("google"))
    port = int(live_url.rsplit(":", 1)[1])
    token = grant.token.encode()
    statuses: dict[str, int | None] = {}
    for path in path_tricks(canary):
        for method in (b"GET", b"POST"):
            raw = (
                method + b" " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Authorization: Bearer " + token + b"\r\nx-api-key: " + token + b"\r\n"
                b"x-goog-api-key: " + token + b"\r\nContent-Type: application/x-www-form-urlencoded"
                b"\r\nContent-Length: 26\r\nConnection: close\r\n\r\n"
                b"grant_type=authorization_c"
            )
            statuses[f"{method.decode()} {path}"] = raw_status(port, raw)
    for name, status in statuses.items():
        assert status is None or status < 500, (name, status)
    assert_stayed_in_bounds(fake_upstream)
    assert canary.connections == 0
    # The same raw request on an honest path does get through (the check above can fail).
    honest = b"GET /v1/openai/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token
    assert raw_status(port, honest + b"\r\nConnection: close\r\n\r\n") == 200
    assert fake_upstream.received[-1].path == "/openai/v1/models"
    assert_stayed_in_bounds(fake_upstream)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_absolute_form_targets_and_host_headers_cannot_pick_the_upstream(
    live_url: str, vault: Vault, fake_upstream: FakeUpstream, canary: Canary
) -> None:
    grant = make_grant(vault, entry("openai"))
    port = int(live_url.rsplit(":", 1)[1])
    token = grant.token.encode()
    evil = canary.url.removeprefix("http://").encode()
    for target in (
        b"http://" + evil + b"/v1/openai/models",
        b"http://" + evil + b"/openai/v1/models",
        b"http://" + evil + b"/",
    ):
        raw = (
            b"GET "
            + target
            + b" HTTP/1.1\r\nHost: "
            + evil
            + b"\r\nAuthorization: Bearer "
            + token
            + b"\r\nConnection: close\r\n\r\n"
        )
        status = raw_status(port, raw)
        assert status is None or status < 500
    spoofing = {
        "host": canary.url.removeprefix("http://"),
        "x-forwarded-host": canary.url.removeprefix("http://"),
        "x-forwarded-proto": "https",
        "forwarded": f"host={canary.url.removeprefix('http://')};proto=http",
        "x-original-url": f"{canary.url}/v1/models",
        "x-rewrite-url": f"{canary.url}/v1/models",
    }
    client = openai.OpenAI(
        base_url=f"{live_url}/v1/openai",
        api_key=grant.token,
        max_retries=0,
        default_headers=spoofing,
    )
    assert client.models.list().data
    with httpx.Client(base_url=live_url, headers=spoofing) as app:
        meta = app.get("/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == live_url  # never taken from Host or X-Forwarded-Host
    assert meta["okap_proxy_base"] == f"{live_url}/v1"
    assert canary.url.removeprefix("http://") not in json.dumps(meta)
    assert_stayed_in_bounds(fake_upstream)
    for received in fake_upstream.received:
        for name in ("x-forwarded-host", "forwarded", "x-forwarded-proto"):
            assert name not in received.headers
    assert canary.connections == 0


def test_no_grant_or_request_makes_the_vault_call_the_apps_host(
    live_url: str, vault: Vault, person: Person, openai_key: str, canary: Canary
) -> None:
    """Callback URLs, client URLs and redirect URIs are shown to the person or handed to
    their browser; the vault itself never connects to them."""
    with httpx.Client(base_url=live_url, timeout=20) as app:
        body = {
            "okap": "1.0",
            "authorization_details": [{"type": "ai_model_access", "provider": "openai"}],
            "client": {"name": "Notes", "url": canary.url, "callback": f"{canary.url}/cb"},
        }
        pending = app.post("/okap/authorize", json=body).json()
        assert pending["status"] == "pending"
        person.approve(pending["consent_url"])
        granted = app.get(pending["poll_url"]).json()
        assert granted["status"] == "granted"
        _, challenge = pkce_pair()
        params = authorize_params(f"{canary.url}/cb", challenge, client_uri=canary.url)
        params["client_id"] = canary.url
        consent = app.get("/oauth/authorize", params=params).headers["location"]
        decision = person.approve(consent)
        assert decision.location is not None and decision.location.startswith(canary.url)
        device = app.post(
            "/oauth/device_authorization",
            data={
                "client_id": canary.url,
                "client_uri": canary.url,
                "authorization_details": json.dumps(body["authorization_details"]),
            },
        )
        assert device.status_code == 200
        # An entry naming where to send requests is refused, not followed.
        bad = dict(body)
        bad["authorization_details"] = [
            {"type": "ai_model_access", "provider": "openai", "base_url": canary.url},
        ]
        assert app.post("/okap/authorize", json=bad).status_code == 400
    token = granted["token"]
    client = openai.OpenAI(base_url=granted["authorization_details"][0]["base_url"], api_key=token)
    assert client.models.list().data
    assert canary.connections == 0


@pytest.mark.parametrize("backend", ["sqlite"])
def test_request_smuggling_does_not_reach_the_upstream(
    live_url: str, vault: Vault, fake_upstream: FakeUpstream
) -> None:
    """Conflicting framing (Content-Length with Transfer-Encoding, obfuscated TE) is refused
    or resolved by the vault's HTTP parser; upstream requests are re-framed by the vault, so
    no smuggled bytes ride along to desynchronise the pooled upstream connection."""
    grant = make_grant(vault, entry("openai"))
    port = int(live_url.rsplit(":", 1)[1])
    token = grant.token.encode()
    smuggled = b"GET /v1/openai/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token
    smuggled += b"\r\n\r\n"
    body = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'
    chunked = b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    head = b"POST /v1/openai/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
    head += token + b"\r\nContent-Type: application/json\r\n"
    for framing in (
        b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % len(chunked + smuggled),
        b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
        b"Transfer-Encoding: xchunked\r\nContent-Length: %d\r\n" % len(chunked),
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
        b"Content-Length: 4\r\nContent-Length: %d\r\n" % len(chunked),
    ):
        status = raw_status(port, head + framing + b"\r\n" + chunked + smuggled)
        assert status is None or status < 500, framing
    for received in fake_upstream.received:
        assert b"HTTP/1.1" not in received.body and b"Authorization" not in received.body
        if received.body:
            json.loads(received.body)  # a whole JSON body, nothing appended
    assert httpx.get(f"{live_url}/healthz").status_code == 200


@pytest.mark.parametrize("backend", ["sqlite"])
def test_an_app_cannot_pick_the_organisation_or_project_its_calls_are_billed_to(
    live_url: str, vault: Vault, fake_upstream: FakeUpstream
) -> None:
    """A key's owner may belong to several organisations and projects; the grant covers the
    key as its owner uses it. Headers that route billing or pick an account never reach the
    upstream, whichever provider; ordinary headers (``OpenAI-Beta``...) still do."""
    grant = make_grant(vault, entry("openai"), entry("anthropic"), entry("google"))
    routing = {
        "x-goog-user-project": "their-project",
        "anthropic-organization-id": "org-theirs",
        "Anthropic-Workspace-Id": "wrkspc_theirs",
        "X-Org-Id": "org-theirs",
        "Together-Organization": "theirs",
    }
    client = openai.OpenAI(
        base_url=f"{live_url}/v1/openai",
        api_key=grant.token,
        organization="org-someone-else",
        project="proj_someone_else",
        max_retries=0,
        default_headers={**routing, "OpenAI-Beta": "assistants=v2"},
    )
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    for provider, path, body in (
        (
            "anthropic",
            "v1/messages",
            {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": []},
        ),
        ("google", "v1beta/models/gemini-2.5-flash:generateContent", {"contents": []}),
    ):
        answer = httpx.post(
            f"{live_url}/v1/{provider}/{path}",
            json=body,
            headers={"authorization": f"Bearer {grant.token}", "anthropic-beta": "x", **routing},
        )
        assert answer.status_code == 200, answer.text
    assert len(fake_upstream.received) == 3
    for received in fake_upstream.received:
        forwarded = {name.lower() for name in received.headers}
        assert "openai-organization" not in forwarded and "openai-project" not in forwarded
        assert forwarded.isdisjoint(name.lower() for name in routing), forwarded
    openai_call, anthropic_call, _ = fake_upstream.received
    assert openai_call.headers["openai-beta"] == "assistants=v2"
    assert anthropic_call.headers["anthropic-beta"] == "x"
