from datetime import UTC, datetime, timedelta

import pytest

from okap_client import OkapToken, VaultUnreachable

NOW = datetime(2026, 1, 1, tzinfo=UTC)
VAULT = "http://127.0.0.1:8400"
KEY = "okap_" + "a" * 43


def granted(**overrides):
    body = {
        "access_token": KEY,
        "token_type": "Bearer",
        "expires_in": 3600,
        "authorization_details": [
            {
                "type": "ai_model_access",
                "provider": "openai",
                "models": ["gpt-4o-mini"],
                "capabilities": ["chat"],
                "limits": {"monthly_spend": 5.0},
                "base_url": f"{VAULT}/v1/openai",
                "expires": "2026-01-01T01:00:00Z",
            },
            {
                "type": "ai_model_access",
                "provider": "anthropic",
                "models": [],
                "capabilities": ["chat"],
                "limits": {},
                "base_url": f"{VAULT}/v1/anthropic",
            },
            {
                "type": "ai_model_access",
                "provider": "google",
                "models": [],
                "capabilities": ["chat"],
                "base_url": f"{VAULT}/v1/google",
            },
        ],
    }
    body.update(overrides)
    return OkapToken.from_token_response(body, VAULT, NOW)


def test_reads_the_token_response():
    token = granted()
    assert token.key == token.token == KEY
    assert token.provider == "openai"
    assert token.base_url == f"{VAULT}/v1/openai"
    assert token.models == ["gpt-4o-mini"]
    assert token.capabilities == ["chat"]
    assert token.limits == {"monthly_spend": 5.0}
    assert token.expires_at == NOW + timedelta(hours=1)
    assert token.base_url_for("anthropic") == f"{VAULT}/v1/anthropic"
    assert token.base_url_for("gemini") == f"{VAULT}/v1/google"


def test_expiry_falls_back_to_the_details():
    token = granted(expires_in=None)
    assert token.expires_at == datetime(2026, 1, 1, 1, tzinfo=UTC)
    assert token.is_valid(NOW)
    assert not token.is_valid(NOW + timedelta(minutes=59, seconds=30))


def test_asking_for_a_provider_not_granted_says_which_are():
    with pytest.raises(KeyError, match="granted: openai, anthropic, google"):
        granted().base_url_for("mistral")


def test_env_sets_what_each_sdk_reads():
    env = granted().env()
    assert env == {
        "OPENAI_API_KEY": KEY,
        "OPENAI_BASE_URL": f"{VAULT}/v1/openai",
        "ANTHROPIC_API_KEY": KEY,
        "ANTHROPIC_BASE_URL": f"{VAULT}/v1/anthropic",
        "GOOGLE_API_KEY": KEY,  # only this one: google-genai warns when both are set
        "GOOGLE_GEMINI_BASE_URL": f"{VAULT}/v1/google",
    }


def test_unknown_providers_get_conventional_names():
    token = OkapToken(KEY, VAULT, [{"provider": "my-llm", "base_url": f"{VAULT}/v1/my-llm"}])
    assert token.env() == {"MY_LLM_API_KEY": KEY, "MY_LLM_BASE_URL": f"{VAULT}/v1/my-llm"}


def test_the_key_never_shows_in_repr_or_str():
    token = granted()
    assert KEY not in repr(token)
    assert KEY not in str(token)
    assert KEY not in f"{token}"


def test_round_trips_through_the_cache_format():
    token = granted()
    again = OkapToken.from_dict(token.to_dict())
    assert again.key == token.key
    assert again.expires_at == token.expires_at
    assert again.authorization_details == token.authorization_details


def test_a_response_without_a_token_is_not_a_grant():
    with pytest.raises(VaultUnreachable):
        OkapToken.from_token_response({"token_type": "Bearer"}, VAULT, NOW)
