"""Token exchange (RFC 8693) over real HTTP, as an app calls it."""

from __future__ import annotations

import json
from typing import Any

import httpx

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"


def exchange(
    live_url: str,
    subject_token: str,
    details: list[dict[str, Any]] | None,
    **extra: str,
) -> httpx.Response:
    """``POST /oauth/token`` with the token-exchange grant."""
    data = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": subject_token,
        "subject_token_type": ACCESS_TOKEN,
        **extra,
    }
    if details is not None:
        data["authorization_details"] = json.dumps(details)
    return httpx.post(f"{live_url}/oauth/token", data=data, timeout=10)


def child_token(live_url: str, subject_token: str, details: list[dict[str, Any]]) -> str:
    """A child token, asserting the exchange succeeded."""
    answer = exchange(live_url, subject_token, details)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def openai_entry(**fields: Any) -> dict[str, Any]:
    return {"type": "ai_model_access", "provider": "openai", **fields}
