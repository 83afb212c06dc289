"""When a live grant already answers a request: same providers, models and capabilities,
and every limit the app named at the value it named (defaults filled in do not count)."""

from __future__ import annotations

from typing import Any

from okap_server.authorization.reuse import same_access


def entry(provider: str = "openai", **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "ai_model_access",
        "provider": provider,
        "models": ["gpt-4o-mini"],
        "capabilities": ["chat"],
        "limits": {"monthly_spend": 10, "daily_spend": None},
    }
    return {**base, **changes}


def granted(**changes: Any) -> dict[str, Any]:
    """The stored grant entry: the unnamed limits filled from the defaults, a key chosen."""
    limits = {"monthly_spend": 10, "daily_spend": 1.0, "requests_per_minute": 60}
    return {**entry(limits=limits), "key_id": "key_1", **changes}


def test_the_same_ask_is_answered() -> None:
    assert same_access([granted()], [entry()])


def test_a_different_ask_is_not() -> None:
    assert not same_access([granted()], [entry(models=["gpt-4o"])])
    assert not same_access([granted()], [entry(capabilities=["chat", "embeddings"])])
    assert not same_access([granted()], [entry(limits={"monthly_spend": 20})])
    assert not same_access([granted()], [entry(), entry("anthropic")])
    assert not same_access([granted(), granted(provider="anthropic")], [entry()])


def test_a_narrowed_grant_is_not_the_same_access() -> None:
    assert not same_access([granted(limits={"monthly_spend": 2})], [entry()])
