"""Grants made directly in the database, for tests that need a working okap token without
going through consent. The token is returned to the test and never stored: only its hash."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlmodel import select

from okap_server.accounts.models import Account
from okap_server.accounts.service import create_account
from okap_server.clock import new_id, utcnow
from okap_server.context import Vault
from okap_server.grants import lifecycle
from okap_server.grants.models import Grant
from okap_server.grants.tokens import new_access_token, token_hash

# Recognisable fake provider keys: tests assert they reach the upstream and nothing else.
FAKE_KEYS: dict[str, str] = {
    "openai": "sk-proj-REALKEYopenai0123456789abcdefXYZ",
    "anthropic": "sk-ant-api03-REALKEYanthropic0123456789abcXYZ",
    "google": "AIzaSyREALKEYgoogle0123456789abcdefXYZ",
}

# Effectively unlimited: every limit null (none) but a requests_per_day no test reaches.
NO_LIMITS: dict[str, Any] = {
    "monthly_spend": None,
    "daily_spend": None,
    "total_spend": None,
    "requests_per_minute": None,
    "requests_per_day": 1_000_000,
    "tokens_per_request": None,
}


@dataclass(frozen=True)
class IssuedGrant:
    token: str
    grant_id: str
    account_id: str


def ensure_account(vault: Vault, username: str = "grant-owner") -> str:
    with vault.session() as session:
        found = session.exec(select(Account).where(Account.username == username)).first()
        if found is not None:
            return found.id
        account = create_account(session, username, "correct horse battery staple")
        session.commit()
        return account.id


def ensure_key(vault: Vault, account_id: str, provider: str, secret: str | None = None) -> str:
    """The id of the account's key for ``provider``, adding it if missing."""
    with vault.session() as session:
        for info in vault.keys.list(session, account_id, provider):
            return info.id
        added = vault.keys.add(
            session,
            account_id=account_id,
            provider=provider,
            label="test key",
            secret=secret or FAKE_KEYS.get(provider, f"sk-test-{provider}-0123456789"),
        )
        session.commit()
        return added.id


def entry(
    provider: str,
    *,
    models: list[str] | None = None,
    capabilities: list[str] | None = None,
    limits: dict[str, Any] | None = None,
    expires: str | None = None,
) -> dict[str, Any]:
    """One ``ai_model_access`` entry (``key_id`` is filled in by ``make_grant``)."""
    return {
        "type": "ai_model_access",
        "provider": provider,
        "models": models or [],
        "capabilities": capabilities or ["chat", "embeddings"],
        "limits": {**NO_LIMITS, **(limits or {})},
        "expires": expires,
        "reason": "tests",
    }


def make_grant(
    vault: Vault,
    *entries: dict[str, Any],
    username: str = "grant-owner",
    client_name: str = "Test App",
    expires_in: timedelta = timedelta(days=30),
) -> IssuedGrant:
    """An account, a key per provider and a Grant row; returns the (only) copy of the token."""
    account_id = ensure_account(vault, username)
    details = []
    for item in entries or (entry("openai"),):
        provider = vault.providers.canonical(item["provider"]) or item["provider"]
        key_id = ensure_key(vault, account_id, provider)
        details.append({**item, "key_id": key_id})
    token = new_access_token()
    grant = Grant(
        id=new_id("grt_"),
        account_id=account_id,
        token_hash=token_hash(token),
        client_id="https://app.example",
        client_name=client_name,
        flow="okap",
        details=details,
        expires_at=utcnow() + expires_in,
    )
    with vault.session() as session:
        session.add(grant)
        session.commit()
    return IssuedGrant(token=token, grant_id=grant.id, account_id=account_id)


def revoke(vault: Vault, grant_id: str) -> None:
    """Revoke as the vault does (``grants.lifecycle``): the listeners hear of it at the commit."""
    with vault.session() as session:
        grant = session.get(Grant, grant_id)
        assert grant is not None
        lifecycle.revoke(session, grant, by="person")
        session.commit()
