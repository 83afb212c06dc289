"""Default limits fill each limit the app did not name, field by field (SPEC "Limits")."""

from __future__ import annotations

from okap_server.authorization.defaults import effective_limits, with_defaults
from okap_server.settings import DefaultLimits

VAULT = DefaultLimits()
MINE = DefaultLimits(
    monthly_spend=0.5, daily_spend=None, requests_per_minute=5, requests_per_day=50
)
UNNAMED = {
    "monthly_spend": None,
    "weekly_spend": None,
    "daily_spend": None,
    "total_spend": None,
    "requests_per_minute": None,
    "requests_per_day": None,
    "tokens_per_request": None,
}


def test_naming_one_limit_keeps_the_defaults_of_the_others() -> None:
    asked = {**UNNAMED, "requests_per_minute": 1000}
    assert effective_limits(asked, VAULT) == {
        "monthly_spend": 5.0,
        "weekly_spend": None,
        "daily_spend": 1.0,
        "total_spend": None,
        "requests_per_minute": 1000,  # what the app named wins, even above the default
        "requests_per_day": 1000,
        "tokens_per_request": None,
    }


def test_the_deciding_accounts_defaults_fill_in_place_of_the_vaults() -> None:
    nothing = {"type": "ai_model_access", "provider": "openai", "limits": dict(UNNAMED)}
    some = {
        "type": "ai_model_access",
        "provider": "anthropic",
        "limits": {**UNNAMED, "monthly_spend": 3.0, "total_spend": 9.0},
    }
    first, second = with_defaults([nothing, some], MINE)
    assert first["limits"] == {**UNNAMED, **MINE.model_dump()}
    assert second["limits"] == {
        **UNNAMED,
        **MINE.model_dump(),
        "monthly_spend": 3.0,
        "total_spend": 9.0,
    }
    assert nothing["limits"] == UNNAMED  # the stored request is left as asked
