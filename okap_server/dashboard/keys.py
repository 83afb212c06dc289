"""Provider keys on the dashboard: add, list by hint, make default, remove with a warning
naming the grants that depend on the key, and test one with a cheap upstream call.

The secret goes into the key store and never comes back: pages show the hint only.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from sqlmodel import Session, col, select

from okap_server.audit.events import record_event
from okap_server.authorization.models import Grant
from okap_server.clock import utcnow
from okap_server.context import Vault
from okap_server.dashboard import formatting as fmt
from okap_server.proxy.providers.catalog import ProviderRow
from okap_server.vault.key_shapes import misfiled, with_article
from okap_server.vault.keys import KeyInfo, KeyStoreError
from okap_server.vault.models import ProviderKey

# The cheapest call that proves a key works: list the provider's models.
MODELS_PATH = {"openai": "/models", "anthropic": "/v1/models", "google": "/v1beta/models"}


@dataclass(frozen=True)
class KeyView:
    id: str
    provider: str
    provider_name: str
    label: str
    hint: str
    is_default: bool
    added: str
    last_used: str
    used_by: list[str]


@dataclass(frozen=True)
class TestResult:
    ok: bool
    message: str


def dependents(session: Session, account_id: str, key_id: str) -> list[Grant]:
    """Active grants of this account backed by this key (by id, or by default)."""
    key = session.get(ProviderKey, key_id)
    grants = session.exec(
        select(Grant).where(
            Grant.account_id == account_id,
            col(Grant.revoked_at).is_(None),
            col(Grant.expires_at) > utcnow(),
        )
    ).all()
    found = []
    for grant in grants:
        for entry in grant.details:
            backing = entry.get("key_id")
            by_default = (
                backing is None
                and key is not None
                and key.is_default
                and entry.get("provider") == key.provider
            )
            if backing == key_id or by_default:
                found.append(grant)
                break
    return found


def list_keys(vault: Vault, session: Session, account_id: str) -> list[KeyView]:
    now = utcnow()
    views = []
    for info in vault.keys.list(session, account_id):
        row = vault.providers.get(info.provider)
        views.append(
            KeyView(
                id=info.id,
                provider=info.provider,
                provider_name=row.name if row else info.provider,
                label=info.label,
                hint=info.hint,
                is_default=info.is_default,
                added=fmt.timestamp(info.created_at),
                last_used=fmt.ago(info.last_used_at, now),
                used_by=[g.client_name for g in dependents(session, account_id, info.id)],
            )
        )
    return views


class LooksMisfiled(KeyStoreError):
    """The key's prefix belongs to another provider than the one chosen."""


def refuse_misfiled(vault: Vault, provider: str, secret: str) -> None:
    """Raise LooksMisfiled if ``secret`` has the prefix of another provider's keys than
    ``provider`` (canonical): stored there, every call with it would fail upstream."""
    suspicion = misfiled(provider, secret)
    if suspicion is None:
        return
    owner, prefix = suspicion
    row, chosen = vault.providers.get(owner), vault.providers.get(provider)
    looks = with_article(row.name if row else owner)
    picked = with_article(chosen.name if chosen else provider)
    raise LooksMisfiled(
        f"this looks like {looks} key (it starts with {prefix}), not {picked} key. "
        "Choose the right provider, or tick the box below and paste it again if it is one"
    )


def add_key(
    vault: Vault,
    account_id: str,
    *,
    provider: str,
    label: str,
    secret: str,
    make_default: bool,
    ip: str | None,
    misfiled_ok: bool = False,
) -> KeyInfo:
    """Encrypt and store; raises KeyStoreError with a message safe to show, and
    LooksMisfiled for a key that looks like another provider's (unless ``misfiled_ok``)."""
    canonical = vault.providers.canonical(provider)
    if canonical is None:
        raise KeyStoreError("choose a provider from the list")
    if not misfiled_ok:
        refuse_misfiled(vault, canonical, secret)
    with vault.session() as session:
        info = vault.keys.add(
            session,
            account_id=account_id,
            provider=canonical,
            label=label,
            secret=secret,
            make_default=make_default,
        )
        record_event(
            session,
            "key_added",
            account_id=account_id,
            ip=ip,
            key_id=info.id,
            provider=canonical,
            label=info.label,
            hint=info.hint,
        )
        session.commit()
    return info


def set_default(vault: Vault, account_id: str, key_id: str, ip: str | None) -> KeyInfo | None:
    """Make a key its provider's default; the grants that follow the default are told."""
    with vault.session() as session:
        key = vault.keys.get(session, account_id, key_id)
        if key is None:
            return None
        vault.keys.set_default(session, account_id, key_id)
        record_event(
            session,
            "key_default_changed",
            account_id=account_id,
            ip=ip,
            key_id=key.id,
            provider=key.provider,
            label=key.label,
        )
        session.commit()
        # Grants that name no key follow the default: their cached views hold the old one.
        affected = [g.id for g in dependents(session, account_id, key.id)]
        shown = next(
            k for k in vault.keys.list(session, account_id, key.provider) if k.id == key.id
        )
    for grant_id in affected:
        vault.grant_changed(grant_id)
    return shown


def _auth_headers(row: ProviderRow, secret: str) -> dict[str, str]:
    if row.auth_style == "x-api-key":
        return {"x-api-key": secret, "anthropic-version": "2023-06-01"}
    if row.auth_style == "x-goog-api-key":
        return {"x-goog-api-key": secret}
    if row.auth_style == "none":
        return {}
    return {"authorization": f"Bearer {secret}"}


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
            response = await client.get(url, headers=_auth_headers(row, secret))
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
