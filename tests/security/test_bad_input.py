"""Garbage in: malformed authorization_details, oversized bodies and headers, invalid UTF-8,
CRLF in anything that could be forwarded. Always a clear 4xx in the RFC (or the provider's)
error shape, never a 5xx, nothing stored, and the vault keeps serving."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest
from sqlmodel import func, select

from okap_server.authorization.models import AuthorizationRequest
from okap_server.context import Vault
from okap_server.settings import Settings
from tests.security.conftest import sqlite_only
from tests.server.authorization.conftest import authorize_params, pkce_pair
from tests.support.fake_upstream import FakeUpstream
from tests.support.grants import entry, make_grant
from tests.support.person import Person

OK_ENTRY = {"type": "ai_model_access", "provider": "openai"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Every malformed body must reach the validators: the front doors' rate limits (their
    own tests are in test_floods.py) are raised out of the way."""
    return settings.model_copy(
        update={"front_door_per_minute": 100_000, "front_door_client_per_minute": 100_000}
    )


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def entry_with(**fields: Any) -> str:
    return json.dumps([{**OK_ENTRY, **fields}], ensure_ascii=False)


MALFORMED_DETAILS: list[tuple[str, str]] = [
    ("deep nesting", nested(100_000)),
    ("deep nesting in a field", json.dumps([{**OK_ENTRY, "models": []}])[:-2] + nested(5000)),
    ("huge array", json.dumps([OK_ENTRY] * 5000)),
    ("huge models array", entry_with(models=[f"m{i}" for i in range(5000)])),
    ("duplicate keys", '[{"type": "ai_model_access", "provider": "openai", "provider": "xai"}]'),
    (
        "duplicate limit",
        '[{"type": "ai_model_access", "provider": "openai", "limits": '
        '{"daily_spend": 1, "daily_spend": 1000000}}]',
    ),
    ("RTL override in provider", entry_with(provider="open\u202eai")),
    ("zero-width in provider", entry_with(provider="open\u200bai")),
    ("homoglyph provider", entry_with(provider="\u043epenai")),  # Cyrillic o
    ("fullwidth provider", entry_with(provider="\uff4f\uff50\uff45\uff4e\uff41\uff49")),
    ("RTL override in model", entry_with(models=["gpt-4o\u202e-mini"])),
    ("RTL override in reason", entry_with(reason="Summarise \u202eseton ym")),
    ("zero-width in reason", entry_with(reason="harm\u200bless")),
    ("NUL in reason", entry_with(reason="a\u0000b")),
    ("lone surrogate", '[{"type": "ai_model_access", "provider": "openai", "reason": "\\ud800"}]'),
    (
        "NaN limit",
        '[{"type": "ai_model_access", "provider": "openai", "limits": {"daily_spend": NaN}}]',
    ),
    (
        "huge number",
        '[{"type": "ai_model_access", "provider": "openai", "limits": {"daily_spend": 1e400}}]',
    ),
    (
        "big integer",
        '[{"type": "ai_model_access", "provider": "openai", "limits": '
        '{"requests_per_day": ' + "9" * 5000 + "}}]",
    ),
    ("not JSON", "{'type': 'ai_model_access'}"),
    ("an object", json.dumps(OK_ENTRY)),
    ("type as a list", entry_with(type=["ai_model_access"])),
    ("prototype keys", entry_with(__proto__={"admin": True})),
    ("a base_url the vault should call", entry_with(base_url="http://127.0.0.1:9/v1")),
    ("a key_id the app should not choose", entry_with(key_id="key_someone_elses")),
]


def stored_requests(vault: Vault) -> int:
    with vault.session() as session:
        return int(session.exec(select(func.count()).select_from(AuthorizationRequest)).one())


def rfc_refusal_problem(response: httpx.Response, name: str) -> str | None:
    """What is wrong with this answer to garbage, or None if it is a proper refusal."""
    if not 400 <= response.status_code < 500:
        return f"{name}: {response.status_code} {response.text[:120]}"
    try:
        body = response.json()
    except ValueError:
        return f"{name}: not JSON: {response.text[:120]}"
    if body.get("error") not in ("invalid_authorization_details", "invalid_request"):
        return f"{name}: {body}"
    if not isinstance(body.get("error_description"), str) or not body["error_description"]:
        return f"{name}: no error_description"
    return None


@sqlite_only
def test_malformed_authorization_details_are_refused_everywhere_and_store_nothing(
    live_url: str, vault: Vault
) -> None:
    _, challenge = pkce_pair()
    answers: list[tuple[httpx.Response, str]] = []
    with httpx.Client(base_url=live_url, timeout=30) as app:
        for name, details in MALFORMED_DETAILS:
            form = authorize_params("https://notes.example/cb", challenge)
            form["authorization_details"] = details
            answers.append((app.post("/oauth/par", data=form), f"par: {name}"))
            device = {"client_id": "cli", "authorization_details": details}
            answers.append(
                (app.post("/oauth/device_authorization", data=device), f"device: {name}")
            )
            body = (
                '{"okap": "1.0", "client": {"name": "Notes"}, "authorization_details": '
                + details
                + "}"
            )
            okap = app.post(
                "/okap/authorize", content=body, headers={"content-type": "application/json"}
            )
            answers.append((okap, f"okap: {name}"))
        # Still serving.
        assert app.get("/.well-known/oauth-authorization-server").status_code == 200
    problems = [p for p in (rfc_refusal_problem(r, n) for r, n in answers) if p]
    assert problems == [], "\n".join(problems)
    assert stored_requests(vault) == 0  # nothing half-stored


@sqlite_only
def test_app_supplied_names_cannot_spoof_the_consent_page(
    live_url: str, person: Person, openai_key: str
) -> None:
    """Bidi overrides and invisible characters in what the app calls itself never reach the
    page raw (RFC 9700 §4.7: the person must see who is asking)."""
    _, challenge = pkce_pair()
    params = authorize_params(
        "https://notes.example/cb",
        challenge,
        client_name="Notes\u202eelgooG",
        client_uri="https://notes.example/\u200b",
    )
    with httpx.Client(base_url=live_url) as app:
        response = app.get("/oauth/authorize", params=params)
        device = app.post(
            "/oauth/device_authorization",
            data={
                "client_id": "cli",
                "client_name": "Notes\u2066\u200belgooG",
                "client_uri": "javascript:alert(1)\u202e",
                "authorization_details": json.dumps([OK_ENTRY]),
            },
        )
    pages = []
    if response.status_code == 303:
        pages.append(person.open(response.headers["location"]).text)
    else:
        assert response.status_code == 400
    if device.status_code == 200:
        pages.append(person.open(person.enter_user_code(device.json()["user_code"])).text)
    else:
        assert device.status_code == 400
    for page in pages:
        for ch in ("\u202e", "\u200b", "\u2066"):
            assert ch not in page
        assert "javascript:" not in page


@sqlite_only
def test_oversized_bodies_headers_and_invalid_utf8(
    live_url: str, vault: Vault, fake_upstream: FakeUpstream
) -> None:
    grant = make_grant(vault, entry("openai"))
    auth = {"authorization": f"Bearer {grant.token}"}
    big = b"x" * (2 * 1024 * 1024)
    with httpx.Client(base_url=live_url, timeout=30) as app:
        answers = {
            "par, 2 MiB": app.post(
                "/oauth/par",
                content=b"authorization_details=" + big,
                headers={"content-type": "application/x-www-form-urlencoded"},
            ),
            "okap, 2 MiB": app.post(
                "/okap/authorize", content=big, headers={"content-type": "application/json"}
            ),
            "token, 2 MiB": app.post(
                "/oauth/token",
                content=b"grant_type=" + big,
                headers={"content-type": "application/x-www-form-urlencoded"},
            ),
            "proxy, 2 MiB": app.post(
                "/v1/openai/chat/completions",
                content=b'{"model": "gpt-4o-mini", "x": "' + big + b'"}',
                headers={**auth, "content-type": "application/json"},
            ),
            "par, invalid UTF-8": app.post(
                "/oauth/par",
                content=b"client_id=\xff\xfe&authorization_details=\xc3\x28",
                headers={"content-type": "application/x-www-form-urlencoded"},
            ),
            "okap, invalid UTF-8": app.post(
                "/okap/authorize",
                content=b'{"okap": "1.0", "client": {"name": "\xff"}}',
                headers={"content-type": "application/json"},
            ),
            "proxy, invalid UTF-8": app.post(
                "/v1/openai/chat/completions",
                content=b'{"model": "gpt-4o-\xff", "messages": []}',
                headers={**auth, "content-type": "application/json"},
            ),
            "signin, invalid UTF-8": app.post(
                "/signin",
                content=b"username=\xff&password=\xfe&csrf_token=x",
                headers={"content-type": "application/x-www-form-urlencoded"},
            ),
        }
        for name, response in answers.items():
            assert 400 <= response.status_code < 500, (name, response.status_code)
        assert answers["proxy, 2 MiB"].status_code == 413
        assert answers["proxy, 2 MiB"].json()["error"]["type"]  # OpenAI's shape
        assert "error" in answers["proxy, invalid UTF-8"].json()
    assert fake_upstream.received == []
    # Headers: 64 KiB in one header, and 200 headers, over a raw socket.
    port = int(live_url.rsplit(":", 1)[1])
    for head in (
        b"X-Big: " + b"a" * 65536 + b"\r\n",
        b"".join(b"X-H%d: v\r\n" % i for i in range(2000)),
    ):
        status = raw_status(port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + head + b"\r\n")
        assert status is None or 400 <= status < 500 or status == 200, status
    assert httpx.get(f"{live_url}/healthz").status_code == 200
    assert stored_requests(vault) == 0


def raw_status(port: int, request: bytes) -> int | None:
    """Send raw bytes; the status the server answered, or None if it just closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(request)
            data = sock.recv(65536)
        except OSError:
            return None
    if not data.startswith(b"HTTP/1."):
        return None
    return int(data.split(b" ", 2)[1])


@sqlite_only
def test_crlf_never_splits_what_is_forwarded_or_redirected(
    live_url: str, vault: Vault, fake_upstream: FakeUpstream, person: Person, openai_key: str
) -> None:
    grant = make_grant(vault, entry("openai"), entry("google"))
    port = int(live_url.rsplit(":", 1)[1])
    token = grant.token.encode()
    attempts = [
        # A header value with a bare CR, LF or an obs-fold continuation.
        b"POST /v1/openai/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + token
        + b"\r\nX-Note: a\rX-Injected: 1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\n\r\n{}",
        b"POST /v1/openai/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + token
        + b"\r\nX-Note: a\r\n X-Injected: 1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\n\r\n{}",
        # CRLF in the query and in a Gemini model name (which is part of the path).
        b"GET /v1/openai/models?x=%0d%0aX-Injected:%201 HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + token + b"\r\n\r\n",
        b"POST /v1/google/v1beta/models/gemini%0d%0aX-Injected:%201:generateContent HTTP/1.1"
        b"\r\nHost: x\r\nx-goog-api-key: " + token + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\n\r\n{}",
        # Bytes that are not UTF-8 in a forwarded header and in the credential.
        b"POST /v1/openai/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + token
        + b"\r\nX-Note: \xff\xfe\xc3\x28\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\n\r\n{}",
        b"GET /v1/openai/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff"
        + token
        + b"\r\n\r\n",
    ]
    for raw in attempts:
        status = raw_status(port, raw)
        assert status is None or status < 500, (raw[:60], status)
    # A model name with CRLF stays inside the JSON body.
    answer = httpx.post(
        f"{live_url}/v1/openai/chat/completions",
        headers={"authorization": f"Bearer {grant.token}"},
        json={"model": "gpt-4o-mini\r\nX-Injected: 1", "messages": []},
    )
    assert answer.status_code < 500
    for received in fake_upstream.received:
        assert "x-injected" not in received.headers
        assert all("\r" not in v and "\n" not in v for v in received.headers.values())
        # (A CRLF in a query value is forwarded percent-encoded: it is data, not a line.)
    # state with CRLF comes back percent-encoded in the redirect, never as a header.
    _, challenge = pkce_pair()
    params = authorize_params(
        "https://notes.example/cb", challenge, state="s\r\nSet-Cookie: okap_session=evil"
    )
    with httpx.Client(base_url=live_url) as app:
        consent = app.get("/oauth/authorize", params=params).headers["location"]
    decision = person.approve(consent)
    assert decision.location is not None
    assert "\r" not in decision.location and "\n" not in decision.location
    assert "Set-Cookie" not in decision.location or "%0D%0A" in decision.location
