"""Testing a provider key with the cheapest call that proves it works: list the models.

The key and the provider's body never reach the result, only the status and a count.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from okap_server.context import Vault

# The cheapest call that proves a key works: list the provider's models.
MODELS_PATH = {"openai": "/models", "anthropic": "/v1/models", "google": "/v1beta/models"}


@dataclass(frozen=True)
class TestResult:
    ok: bool
    message: str


def _describe(status: int) -> str:
    if status in (401, 403):
        return f"the provider refused this key (HTTP {status}). Check it or replace it."
    if status == 429:
        return "the provider says this key is rate limited or out of credit (HTTP 429)."
    return f"the provider answered HTTP {status}."


async def check_key(vault: Vault, account_id: str, key_id: str) -> TestResult | None:
    """List the provider's models with the key, through the configured upstream.

    None if the key is not this account's. The key and the provider's body never reach the
    result: only the status and a count of models."""
    with vault.session() as session:
        key = vault.keys.get(session, account_id, key_id)
        if key is None:
            return None
        secret = vault.keys.reveal(key)
        row = vault.providers.get(key.provider)
    if row is None:
        return TestResult(False, f"{key.provider} is no longer a configured provider.")
    url = row.upstream.rstrip("/") + MODELS_PATH.get(row.family, "/models")
    try:
        async with httpx.AsyncClient(
            transport=vault.proxy_transport,
            timeout=vault.settings.key_test_timeout_seconds,
            follow_redirects=False,
        ) as client:
            response = await client.get(url, headers=row.key_sending.key_test_headers(secret))
    except httpx.HTTPError as exc:
        return TestResult(False, f"Could not reach {row.name} ({type(exc).__name__}).")
    finally:
        del secret
    if response.status_code != 200:
        return TestResult(False, f"{key.label}: {_describe(response.status_code)}")
    try:
        body = response.json()
        listed = body.get("data") or body.get("models") or []
        models = f"{len(listed)} model{'s' if len(listed) != 1 else ''} available"
    except (ValueError, AttributeError):
        models = "the provider answered"
    return TestResult(True, f"{key.label} works: {row.name} answered, {models}.")
