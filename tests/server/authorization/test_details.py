"""The ai_model_access type: validation (RFC 9396 §5) and narrowing rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import func, select

from okap_server.authorization.details import parse_details, parse_details_json
from okap_server.authorization.errors import InvalidAuthorizationDetails
from okap_server.authorization.models import AuthorizationRequest
from okap_server.authorization.narrowing import Narrowing, NarrowingError, is_narrower, narrow
from okap_server.catalog import ProviderCatalog
from okap_server.context import Vault
from okap_server.settings import Settings
from tests.server.authorization.conftest import authorize_params, pkce_pair


@pytest.fixture
def plain_settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path)


def parse(raw: Any, settings: Settings) -> list[dict[str, Any]]:
    return parse_details(raw, ProviderCatalog.from_settings(settings), settings)


def e(**fields: Any) -> dict[str, Any]:
    return {"type": "ai_model_access", "provider": "openai", **fields}


PAST = (datetime.now(UTC) - timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    ("raw", "field", "reason"),
    [
        ({"type": "ai_model_access"}, "authorization_details", "array"),
        ([], "authorization_details", "at least one"),
        ([e(type="payment_initiation")], "authorization_details[0].type", "unknown type"),
        ([e(colour="red")], "authorization_details[0].colour", "unknown field"),
        ([e(provider=7)], "authorization_details[0].provider", "must be a string"),
        ([e(provider="nope")], "authorization_details[0].provider", "unknown provider"),
        ([e(models="gpt-4o")], "authorization_details[0].models", "array"),
        ([e(models=["gpt 4o; drop"])], "authorization_details[0].models[0]", "not a model name"),
        ([e(models=[""])], "authorization_details[0].models[0]", "not a model name"),
        (
            [e(capabilities=["teleport"])],
            "authorization_details[0].capabilities[0]",
            "unknown capability",
        ),
        ([e(capabilities=[])], "authorization_details[0].capabilities", "non-empty"),
        (
            [e(limits={"daily_spend": -1})],
            "authorization_details[0].limits.daily_spend",
            "negative",
        ),
        ([e(limits={"daily_spend": float("inf")})], "limits.daily_spend", "finite"),
        ([e(limits={"daily_spend": 1e12})], "limits.daily_spend", "more than"),
        ([e(limits={"daily_spend": "5"})], "limits.daily_spend", "must be a number"),
        ([e(limits={"daily_spend": True})], "limits.daily_spend", "must be a number"),
        ([e(limits={"requests_per_minute": 0})], "limits.requests_per_minute", "at least 1"),
        ([e(limits={"requests_per_minute": 1.5})], "limits.requests_per_minute", "whole number"),
        ([e(limits={"forever": 1})], "limits.forever", "unknown limit"),
        ([e(limits=[1])], "authorization_details[0].limits", "object"),
        ([e(expires=PAST)], "authorization_details[0].expires", "in the past"),
        ([e(expires="tomorrow")], "authorization_details[0].expires", "RFC 3339"),
        ([e(expires="2999-01-01T00:00:00Z")], "authorization_details[0].expires", "days away"),
        ([e(reason="x" * 501)], "authorization_details[0].reason", "longer than"),
        ([e(reason="a\x00b")], "authorization_details[0].reason", "control characters"),
        ([e(), e(provider="gemini"), e()], "authorization_details[2].provider", "appears twice"),
        ([e(provider=f"p{i}") for i in range(17)], "authorization_details", "more than 16"),
        (
            [e(models=[f"m{i}" for i in range(65)])],
            "authorization_details[0].models",
            "more than 64",
        ),
        (["openai"], "authorization_details[0]", "JSON object"),
    ],
)
def test_invalid_details_name_the_field_and_reason(
    raw: Any, field: str, reason: str, plain_settings: Settings
) -> None:
    with pytest.raises(InvalidAuthorizationDetails) as err:
        parse(raw, plain_settings)
    assert err.value.error == "invalid_authorization_details"
    assert field in err.value.description
    assert reason in err.value.description


def test_oversized_and_nan_json(plain_settings: Settings) -> None:
    catalog = ProviderCatalog.from_settings(plain_settings)
    huge = json.dumps([e(reason="x" * 400) for _ in range(60)])
    with pytest.raises(InvalidAuthorizationDetails, match="larger than"):
        parse_details_json(huge, catalog, plain_settings)
    with pytest.raises(InvalidAuthorizationDetails, match="not valid JSON"):
        parse_details_json(
            '[{"type":"ai_model_access","provider":"openai","limits":{"daily_spend":NaN}}]',
            catalog,
            plain_settings,
        )


def test_normalised_entry_keeps_only_the_limits_the_app_named(plain_settings: Settings) -> None:
    [entry] = parse([e(provider="Gemini", models=["gemini-2.5-*", "gemini-2.5-*"])], plain_settings)
    assert entry["provider"] == "google"
    assert entry["models"] == ["gemini-2.5-*"]
    assert entry["capabilities"] == ["chat"]
    # Nothing named: nothing stored; the defaults fill in when a person decides.
    assert entry["limits"] == dict.fromkeys(
        [
            "monthly_spend",
            "weekly_spend",
            "daily_spend",
            "total_spend",
            "requests_per_minute",
            "requests_per_day",
            "tokens_per_request",
        ]
    )
    assert entry["expires"].endswith("Z")
    asked = parse([e(limits={"monthly_spend": 10, "daily_spend": None})], plain_settings)
    assert asked[0]["limits"]["monthly_spend"] == 10.0
    assert asked[0]["limits"]["daily_spend"] is None


def test_narrowing_rules(plain_settings: Settings) -> None:
    defaults = plain_settings.default_limits
    [asked] = parse(
        [e(models=["a", "b*"], capabilities=["chat", "embeddings"], limits={"daily_spend": 2})],
        plain_settings,
    )
    [granted] = narrow(
        [asked],
        {
            "openai": Narrowing(
                models=["a"],
                capabilities=["chat"],
                limits={"daily_spend": 1, "requests_per_day": 5},
            )
        },
        defaults,
    )
    assert is_narrower(granted, asked)
    assert not is_narrower(asked, granted)
    assert granted["limits"]["requests_per_day"] == 5
    # The limits neither the app nor the person named are the defaults.
    assert granted["limits"]["monthly_spend"] == defaults.monthly_spend
    assert granted["limits"]["requests_per_minute"] == defaults.requests_per_minute
    widen = {**granted, "limits": {**granted["limits"], "daily_spend": None}}
    assert not is_narrower(widen, asked)
    everything = {**granted, "models": []}
    assert not is_narrower(everything, asked)
    with pytest.raises(NarrowingError):
        narrow([asked], {"openai": Narrowing(capabilities=["images"])}, defaults)
    # A default may be cleared or raised; what the app asked for may not be removed.
    [cleared] = narrow(
        [asked],
        {"openai": Narrowing(limits={"monthly_spend": None, "requests_per_day": 99_999})},
        defaults,
    )
    assert cleared["limits"]["monthly_spend"] is None
    assert cleared["limits"]["requests_per_day"] == 99_999
    assert cleared["limits"]["daily_spend"] == 2.0
    with pytest.raises(NarrowingError, match="not remove it"):
        narrow([asked], {"openai": Narrowing(limits={"daily_spend": None})}, defaults)
    [all_models] = parse([e()], plain_settings)
    [some] = narrow([all_models], {"openai": Narrowing(models=["gpt-4o-mini"])}, defaults)
    assert some["models"] == ["gpt-4o-mini"] and is_narrower(some, all_models)


BAD_OVER_HTTP = [
    "not json",
    json.dumps([e(provider="nope")]),
    json.dumps([e(limits={"daily_spend": -5})]),
    json.dumps([e(extra=1)]),
    "",
]


def test_invalid_details_over_http_store_nothing(live_url: str, vault: Vault) -> None:
    _, challenge = pkce_pair()
    for details in BAD_OVER_HTTP:
        params = authorize_params("http://127.0.0.1:9/cb", challenge, authorization_details=details)
        with httpx.Client(base_url=live_url) as app:
            pushed = app.post("/oauth/par", data=params)
            device = app.post(
                "/oauth/device_authorization",
                data={"client_id": "cli", "authorization_details": details},
            )
            redirected = app.get("/oauth/authorize", params=params)
        assert pushed.status_code == 400, details
        assert pushed.json()["error"] == "invalid_authorization_details"
        assert device.json()["error"] == "invalid_authorization_details"
        assert "error=invalid_authorization_details" in redirected.headers["location"]
    with vault.session() as session:
        assert session.exec(select(func.count()).select_from(AuthorizationRequest)).one() == 0
