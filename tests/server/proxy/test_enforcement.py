"""Refusals come in the provider's own error shape, so each SDK raises its usual class."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest
from google.genai import errors as genai_errors

from okap_server.context import Vault
from tests.server.proxy.records import wait_for_logs
from tests.server.proxy.test_sdks import anthropic_client, google_client, openai_client
from tests.support.fake_upstream import FakeUpstream
from tests.support.grants import entry, make_grant, revoke

HI = [{"role": "user", "content": "hi"}]


def test_disallowed_model_raises_each_sdks_permission_error(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    grant = make_grant(
        vault,
        entry("openai", models=["gpt-4o-mini"]),
        entry("anthropic", models=["claude-haiku-*"]),
        entry("google", models=["gemini-*-flash*"]),
    )
    with pytest.raises(openai.PermissionDeniedError) as refused:
        openai_client(live_url, grant.token).chat.completions.create(model="gpt-4o", messages=HI)
    assert "gpt-4o" in refused.value.message
    assert refused.value.code == "model_not_allowed"

    with pytest.raises(anthropic.PermissionDeniedError) as refused_a:
        anthropic_client(live_url, grant.token).messages.create(
            model="claude-opus-4-1", max_tokens=5, messages=HI
        )
    assert "claude-opus-4-1" in str(refused_a.value)

    gemini = google_client(live_url, grant.token)
    with pytest.raises(genai_errors.ClientError) as refused_g:
        gemini.models.generate_content(model="gemini-2.5-pro", contents="hi")
    assert refused_g.value.code == 403 and refused_g.value.status == "PERMISSION_DENIED"
    # The glob allows what it names.
    gemini.models.generate_content(model="gemini-2.5-flash-lite", contents="hi")
    assert [r.provider for r in fake_upstream.received] == ["google"]
    logs = wait_for_logs(vault, 4)
    assert sorted(log.error_type or "" for log in logs) == ["", *["model_not_allowed"] * 3]


def test_revoked_token_fails_on_the_very_next_request(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    grant = make_grant(vault, entry("openai"), entry("anthropic"))
    client = openai_client(live_url, grant.token)
    client.chat.completions.create(model="gpt-4o-mini", messages=HI)  # cached now
    anthropic_client(live_url, grant.token).messages.create(
        model="claude-haiku-4-5", max_tokens=5, messages=HI
    )
    revoke(vault, grant.grant_id)
    with pytest.raises(openai.AuthenticationError) as refused:
        client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert refused.value.code == "token_revoked"
    with pytest.raises(anthropic.AuthenticationError):
        anthropic_client(live_url, grant.token).messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=HI
        )
    assert len(fake_upstream.received) == 2


def test_unknown_and_expired_tokens(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    from datetime import timedelta

    from okap_server.grants.tokens import new_access_token

    with pytest.raises(openai.AuthenticationError) as unknown:
        openai_client(live_url, new_access_token()).models.list()
    assert unknown.value.code == "invalid_token"
    expired = make_grant(vault, entry("google"), expires_in=timedelta(seconds=-1))
    gemini = google_client(live_url, expired.token)
    with pytest.raises(genai_errors.ClientError) as refused:
        gemini.models.generate_content(model="gemini-2.0-flash", contents="hi")
    assert refused.value.code == 401
    assert "token_expired" in str(refused.value.details)
    assert fake_upstream.received == []


def test_provider_and_capability_scope(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    grant = make_grant(vault, entry("openai", capabilities=["chat"]))
    with pytest.raises(openai.PermissionDeniedError) as refused:
        openai_client(live_url, grant.token).embeddings.create(
            model="text-embedding-3-small", input="x"
        )
    assert refused.value.code == "capability_not_granted"
    with pytest.raises(anthropic.PermissionDeniedError) as other:
        anthropic_client(live_url, grant.token).messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=HI
        )
    assert "anthropic" in str(other.value)
    # Endpoints no capability names are refused; listing models is always allowed.
    with pytest.raises(openai.PermissionDeniedError) as unnamed:
        openai_client(live_url, grant.token).fine_tuning.jobs.list()
    assert unnamed.value.code == "endpoint_not_allowed"
    assert openai_client(live_url, grant.token).models.list().data[0].id == "gpt-4o-mini"
    limited = make_grant(vault, entry("openai", models=["gpt-4o-mini"]), client_name="Limited")
    assert openai_client(live_url, limited.token).models.retrieve("gpt-4o").id == "gpt-4o"
    assert [r.path for r in fake_upstream.received] == [
        "/openai/v1/models",
        "/openai/v1/models/gpt-4o",
    ]


def test_rate_limit_answers_429_with_headers(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    grant = make_grant(vault, entry("openai", limits={"requests_per_minute": 3}))
    client = openai_client(live_url, grant.token)
    remaining = []
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HI)
        assert raw.headers["x-ratelimit-limit"] == "3"
        assert 1 <= int(raw.headers["x-ratelimit-reset"]) <= 60
        remaining.append(raw.headers["x-ratelimit-remaining"])
    assert remaining == ["2", "1", "0"]
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    headers = refused.value.response.headers
    assert refused.value.code == "rate_limit_exceeded"
    assert 1 <= int(headers["retry-after"]) <= 60
    assert headers["x-ratelimit-limit"] == "3" and headers["x-ratelimit-remaining"] == "0"
    assert len(fake_upstream.received) == 3


def test_bad_bodies_are_refused_and_nothing_is_forwarded(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    grant = make_grant(vault, entry("openai"), entry("anthropic"))
    auth = {"authorization": f"Bearer {grant.token}", "content-type": "application/json"}
    url = f"{live_url}/v1/openai/chat/completions"
    bad = httpx.post(url, content=b'{"model": "gpt-4o-mini", ', headers=auth)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_json"
    limit = vault.settings.proxy_max_body_bytes
    big = httpx.post(url, content=b"{" + b" " * limit + b"}", headers=auth)
    assert big.status_code == 413 and big.json()["error"]["code"] == "request_too_large"
    anthropic_bad = httpx.post(
        f"{live_url}/v1/anthropic/v1/messages",
        content=b"{nope",
        headers={"x-api-key": grant.token, "content-type": "application/json"},
    )
    assert anthropic_bad.status_code == 400
    assert anthropic_bad.json()["error"]["type"] == "invalid_request_error"
    unknown = httpx.get(f"{live_url}/v1/nosuch/models", headers=auth)
    assert unknown.status_code == 404
    assert fake_upstream.received == []


def test_paths_never_escape_the_upstream_base(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    grant = make_grant(vault, entry("openai"))
    with httpx.Client() as client:
        for path in ("../../etc/passwd", "%2e%2e/%2e%2e/admin", "%252e%252e/secret", "..%5cx"):
            request = client.build_request(
                "GET",
                f"{live_url}/v1/openai/models",
                headers={"authorization": f"Bearer {grant.token}"},
            )
            request.url = request.url.copy_with(raw_path=f"/v1/openai/{path}".encode())
            response = client.send(request)
            if response.status_code == 307:  # a dot-segment path left /v1/: a page path,
                # sent to the vault's own pages host (web/page_origin.py), never upstream
                location = response.headers["location"]
                assert location.startswith(vault.settings.effective_page_url + "/"), path
                continue
            assert response.status_code in (400, 404), path
    assert fake_upstream.received == []
