"""The SDK against a live vault over real HTTP, the person's side through the real pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest

from okap_client import (
    AccessDenied,
    AsyncOkapClient,
    AuthorizationExpired,
    InvalidRequest,
    OkapClient,
    TokenCache,
    TokenRevoked,
    VaultUnreachable,
)
from okap_client._base import detail_options
from tests.client.conftest import browser_played_by, browser_that_denies, device_approver
from tests.support.live import free_port


def test_browser_flow_returns_what_the_person_granted_not_what_was_asked(okap, person, live_url):
    opened: list[str] = []
    client = okap(
        open_browser=browser_played_by(
            person, opened, models=["gpt-4o-mini"], limits={"monthly_spend": 2}
        )
    )
    token = client.request_access(
        provider="openai",
        models=["gpt-4o-mini", "gpt-4.1"],
        capabilities=["chat", "embeddings"],
        monthly_limit=10,
        requests_per_minute=30,
        reason="Summarise my notes",
    )
    assert opened[0].startswith(f"{live_url}/oauth/authorize?")
    assert "request_uri=" in opened[0]  # PAR: the details never travel in the URL
    assert "authorization_details" not in opened[0]
    assert token.key.startswith("okap_")
    assert token.token == token.key
    assert token.provider == "openai"
    assert token.base_url == f"{live_url}/v1/openai"
    assert token.models == ["gpt-4o-mini"]
    assert token.limits["monthly_spend"] == 2
    assert token.limits["requests_per_minute"] == 30
    assert token.authorization_details[0]["capabilities"] == ["chat", "embeddings"]
    assert "key_id" not in token.authorization_details[0]
    assert token.expires_at is not None and token.is_valid()
    usage = token.usage()
    assert usage.active


def test_device_flow_prints_the_code_and_polls_until_approved(okap, person, live_url):
    client = okap(flow="device", notify=device_approver(person, models=["claude-haiku-4-5*"]))
    token = client.request_access(
        provider="anthropic", models=["claude-haiku-4-5*", "claude-sonnet-4*"]
    )
    assert token.provider == "anthropic"
    assert token.base_url == f"{live_url}/v1/anthropic"
    assert token.models == ["claude-haiku-4-5*"]


def test_several_providers_in_one_token(okap, person, live_url):
    client = okap(open_browser=browser_played_by(person))
    token = client.request_access(
        authorization_details=[
            {"provider": "openai", "models": ["gpt-4o-mini"]},
            {"provider": "anthropic", "models": ["claude-haiku-4-5"]},
            {"provider": "gemini", "models": ["gemini-2.5-flash"]},
        ]
    )
    assert token.base_url_for("anthropic") == f"{live_url}/v1/anthropic"
    assert token.base_url_for("gemini") == f"{live_url}/v1/google"
    env = token.env()
    assert env["OPENAI_BASE_URL"] == f"{live_url}/v1/openai"
    assert env["ANTHROPIC_API_KEY"] == token.key
    assert env["GOOGLE_GEMINI_BASE_URL"] == f"{live_url}/v1/google"


def test_get_access_asks_the_person_once(okap, person, live_url, cache):
    opened: list[str] = []
    first = okap(open_browser=browser_played_by(person, opened)).get_access(
        provider="openai", models=["gpt-4o-mini"]
    )
    # A second run of the same script: a new client, same cache file.
    second = okap(open_browser=browser_played_by(person, opened)).get_access(
        provider="openai", models=["gpt-4o-mini"]
    )
    assert len(opened) == 1
    assert second.key == first.key
    # Another app, or a wider request, is a new question for the person.
    okap(app_name="Other App", open_browser=browser_played_by(person, opened)).get_access(
        provider="openai", models=["gpt-4o-mini"]
    )
    assert len(opened) == 2


def test_revocation_gives_the_token_back_and_forgets_it(okap, person, cache):
    opened: list[str] = []
    client = okap(open_browser=browser_played_by(person, opened))
    token = client.get_access(provider="openai")
    assert len(cache.entries()) == 1
    token.revoke()
    assert cache.entries() == []
    with pytest.raises(TokenRevoked) as info:
        client.usage(token)
    assert info.value.error == "invalid_token"
    assert token.key not in str(info.value)
    again = client.get_access(provider="openai")
    assert again.key != token.key and len(opened) == 2


def test_a_token_revoked_elsewhere_is_not_served_from_the_cache(okap, person, cache, tmp_path):
    opened: list[str] = []
    first = okap(open_browser=browser_played_by(person, opened)).get_access(provider="openai")
    # Revoked by another tool with its own cache: this cache still holds the token.
    with OkapClient(first.vault_url, cache=TokenCache(tmp_path / "other.json")) as elsewhere:
        elsewhere.revoke(first)
    assert [e.token.key for e in cache.entries()] == [first.key]
    second = okap(open_browser=browser_played_by(person, opened)).get_access(provider="openai")
    assert second.key != first.key


def test_denial_in_the_browser_raises_access_denied(okap, person):
    client = okap(open_browser=browser_that_denies(person))
    with pytest.raises(AccessDenied) as info:
        client.request_access(provider="openai")
    assert info.value.error == "access_denied"


def test_denial_of_a_device_code_raises_access_denied(okap, person):
    def deny(message: str) -> None:
        person.deny_device(message.rsplit(" ", 1)[-1])

    with pytest.raises(AccessDenied):
        okap(flow="device", notify=deny).request_access(provider="openai")


def test_no_answer_in_time_raises_authorization_expired(okap, person):
    client = okap(open_browser=lambda url: True, authorization_timeout=0.3)
    with pytest.raises(AuthorizationExpired):
        client.request_access(provider="openai")


def test_an_unknown_provider_is_an_invalid_request(okap, person):
    client = okap(open_browser=browser_played_by(person))
    with pytest.raises(InvalidRequest) as info:
        client.request_access(provider="no-such-provider")
    assert info.value.description


def test_an_unreachable_vault_raises_vault_unreachable(cache):
    with (
        OkapClient(f"http://127.0.0.1:{free_port()}", cache=cache) as client,
        pytest.raises(VaultUnreachable),
    ):
        client.get_access(provider="openai")


def test_async_client_device_flow_and_usage(live_url, person, cache):
    async def main():
        async with AsyncOkapClient(
            live_url,
            app_name="Async App",
            flow="device",
            notify=device_approver(person),
            cache=cache,
        ) as client:
            token = await client.get_access(provider="google", models=["gemini-2.5-flash"])
            again = await client.get_access(provider="google", models=["gemini-2.5-flash"])
            usage = await client.usage(token)
            await client.revoke(token)
            with pytest.raises(TokenRevoked):
                await client.usage(token)
        return token, again, usage

    token, again, usage = anyio.run(main)
    assert token.base_url == f"{live_url}/v1/google"
    assert again.key == token.key
    assert usage.active


def test_okap_binding_flow_with_the_person_on_the_consent_page(okap, person, live_url, page_url):
    opened: list[str] = []

    def open_browser(url: str) -> bool:
        opened.append(url)
        person.approve(url, limits={"daily_spend": 0.5})
        return True

    token = okap(flow="okap", open_browser=open_browser).request_access(
        provider="openai", models=["gpt-4o-mini"], daily_limit=2
    )
    assert opened[0].startswith(f"{page_url}/consent/")  # pages on localhost, API on the IP
    assert token.base_url == f"{live_url}/v1/openai"
    assert token.limits["daily_spend"] == 0.5
    assert token.usage().active


def test_okap_binding_denial(okap, person):
    client = okap(flow="okap", open_browser=lambda url: bool(person.deny(url)))
    with pytest.raises(AccessDenied):
        client.request_access(provider="openai")


def test_expires_with_authorization_details_reaches_the_grant(okap, person):
    token = okap(open_browser=browser_played_by(person)).request_access(
        authorization_details=[{"provider": "openai", "models": ["gpt-4o-mini"]}], expires="30d"
    )
    assert token.expires_at is not None
    left = token.expires_at - datetime.now(UTC)
    assert timedelta(days=29) < left <= timedelta(days=30)


def test_async_tokens_are_as_usable_as_sync_ones(live_url, person, cache):
    models = {"models": ["gemini-2.5-flash"]}

    def in_cache(client):
        return client.cached(client.build_details("google", **detail_options(models)))

    async def main():
        async with AsyncOkapClient(
            live_url,
            app_name="Async App",
            flow="device",
            notify=device_approver(person),
            cache=cache,
        ) as client:
            token = await client.get_access("google", **models)
            assert (await token.ausage()).active  # awaitable, through this client
            assert (await anyio.to_thread.run_sync(token.usage)).active  # and sync
            cached = await client.get_access("google", **models)
            assert cached.key == token.key and (await cached.ausage()).active
            await cached.arevoke()
            assert in_cache(client) is None  # the revoke forgot the cached copy
            with pytest.raises(TokenRevoked):
                await cached.ausage()
            again = await client.get_access("google", **models)  # asks anew
            assert again.key != token.key
            await anyio.to_thread.run_sync(again.revoke)  # the sync revoke forgets it too
            return again, in_cache(client)

    again, left = anyio.run(main)
    assert left is None
    with pytest.raises(TokenRevoked):
        again.usage()
