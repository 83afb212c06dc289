from datetime import UTC, datetime, timedelta

import pytest

from okap_client import InvalidRequest, OkapClient
from okap_client.request import covers, normalize_expires

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def details(client: OkapClient, provider=None, **kw):
    keys = [
        "models",
        "capabilities",
        "limits",
        "expires",
        "reason",
        "monthly_limit",
        "daily_limit",
        "requests_per_minute",
        "authorization_details",
    ]
    return client.build_details(provider, **{k: kw.get(k) for k in keys})


@pytest.fixture
def client():
    with OkapClient("http://127.0.0.1:9", app_name="Test App") as c:
        yield c


def test_friendly_keywords_become_one_ai_model_access_entry(client):
    [entry] = details(
        client,
        "OpenAI",
        models=["gpt-4o-mini"],
        limits={"requests_per_day": 100},
        monthly_limit=5,
        daily_limit=1.5,
        requests_per_minute=10,
        reason="Summarise notes",
    )
    assert entry == {
        "type": "ai_model_access",
        "provider": "openai",
        "models": ["gpt-4o-mini"],
        "capabilities": ["chat"],
        "limits": {
            "requests_per_day": 100,
            "monthly_spend": 5,
            "daily_spend": 1.5,
            "requests_per_minute": 10,
        },
        "reason": "Summarise notes",
    }


def test_several_providers_at_once(client):
    got = details(
        client,
        authorization_details=[
            {"provider": "openai", "models": ["gpt-4o-mini"]},
            {"type": "ai_model_access", "provider": "anthropic", "capabilities": ["chat"]},
        ],
        reason="Compare",
    )
    assert [e["provider"] for e in got] == ["openai", "anthropic"]
    assert all(e["reason"] == "Compare" for e in got)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "provider"),
        ({"limits": {"weekly_spend": 3}}, "unknown limit 'weekly_spend'"),
        ({"limits": {"monthly_spend": -1}}, "non-negative"),
        ({"expires": "next tuesday"}, "ISO 8601"),
    ],
)
def test_bad_requests_fail_before_contacting_the_vault(client, kwargs, message):
    provider = None if not kwargs else "openai"
    with pytest.raises(InvalidRequest, match=message) as info:
        details(client, provider, **kwargs)
    assert info.value.error == "invalid_request"


def test_other_details_types_are_refused(client):
    with pytest.raises(InvalidRequest, match="unsupported"):
        details(client, authorization_details=[{"type": "payment_initiation"}])


def test_expires_accepts_dates_durations_and_deltas():
    assert normalize_expires("2026-12-31", NOW) == "2026-12-31T00:00:00Z"
    assert normalize_expires("2026-12-31T10:00:00+02:00", NOW) == "2026-12-31T08:00:00Z"
    assert normalize_expires("30d", NOW) == "2026-01-31T00:00:00Z"
    assert normalize_expires("12h", NOW) == "2026-01-01T12:00:00Z"
    assert normalize_expires(timedelta(days=1), NOW) == "2026-01-02T00:00:00Z"
    assert normalize_expires(None, NOW) is None


GRANT = [
    {
        "provider": "openai",
        "models": ["gpt-4o-mini", "gpt-4.1*"],
        "capabilities": ["chat", "embeddings"],
        "limits": {"monthly_spend": 10.0, "requests_per_minute": 60},
    },
    {"provider": "google", "models": [], "capabilities": ["chat"], "limits": {}},
]


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        ([{"provider": "openai", "models": ["gpt-4.1-mini"], "capabilities": ["chat"]}], True),
        ([{"provider": "openai", "models": ["gpt-4o"], "capabilities": ["chat"]}], False),
        ([{"provider": "openai", "models": [], "capabilities": ["chat"]}], False),
        ([{"provider": "openai", "models": ["gpt-4o-mini"], "capabilities": ["images"]}], False),
        ([{"provider": "openai", "models": ["gpt-4o-mini"], "limits": {"monthly_spend": 5}}], True),
        (
            [{"provider": "openai", "models": ["gpt-4o-mini"], "limits": {"monthly_spend": 50}}],
            False,
        ),
        ([{"provider": "gemini", "models": ["gemini-2.5-flash"], "capabilities": ["chat"]}], True),
        ([{"provider": "anthropic", "models": [], "capabilities": ["chat"]}], False),
    ],
)
def test_covers(request_, expected):
    assert covers(GRANT, request_) is expected


def test_expires_beside_authorization_details_applies_to_every_entry(client):
    """It was dropped: the grant then ran the vault's default 90 days."""
    now = datetime.now(UTC)
    got = details(
        client,
        authorization_details=[
            {"provider": "openai"},
            {"provider": "anthropic", "expires": "2d"},
        ],
        expires="30d",
    )
    first, second = (datetime.fromisoformat(e["expires"].replace("Z", "+00:00")) for e in got)
    assert abs(first - (now + timedelta(days=30))) < timedelta(minutes=1)
    assert abs(second - (now + timedelta(days=2))) < timedelta(minutes=1)  # its own wins
