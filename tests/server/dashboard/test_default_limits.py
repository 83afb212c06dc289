"""Per-account default limits replace the vault's only where the app asked for none."""

from __future__ import annotations

from okap_server.authorization.defaults import with_account_defaults
from okap_server.settings import DefaultLimits

VAULT = DefaultLimits()
MINE = DefaultLimits(
    monthly_spend=0.5, daily_spend=None, requests_per_minute=5, requests_per_day=50
)
NONE = {"total_spend": None, "tokens_per_request": None}


def test_only_entries_that_asked_for_nothing_get_the_accounts_defaults() -> None:
    filled = {
        "type": "ai_model_access",
        "provider": "openai",
        "limits": {**VAULT.model_dump(), **NONE},
    }
    asked = {
        "type": "ai_model_access",
        "provider": "anthropic",
        "limits": {**VAULT.model_dump(), **NONE, "monthly_spend": 3.0},
    }
    first, second = with_account_defaults([filled, asked], MINE, VAULT)
    assert first["limits"] == {**MINE.model_dump(), **NONE}
    assert second == asked  # the app named its own limits: untouched
    assert with_account_defaults([filled], VAULT, VAULT) == [filled]
