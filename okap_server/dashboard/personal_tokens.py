"""The "New token" page's view and form: a personal token for one provider.

The page is the consent page's entry form (``web/consent_form.py``) for a request the
person makes themselves: every model, every capability, no limit named (so each starts
from the person's default limits, and may be raised, lowered or cleared), the vault's
longest expiry (only made earlier). The form is narrowed the consent page's way
(``narrow``), then minted by ``manage.personal.mint_personal``, the one path the
management API and ``okap-server tokens create`` use too.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from okap_client.env import env_row
from okap_server.authorization.defaults import default_limits_for
from okap_server.authorization.details import DETAILS_TYPE, parse_details
from okap_server.authorization.grants import public_details
from okap_server.authorization.narrowing import NarrowingError, narrow
from okap_server.context import Vault
from okap_server.dashboard.formatting import aware
from okap_server.manage.personal import mint_personal
from okap_server.web.consent_form import EntryView, entry_views, parse_choices
from okap_server.web.consent_summary import Summary, summarise, when


@dataclass(frozen=True)
class ProviderChoice:
    id: str
    name: str


@dataclass(frozen=True)
class NewTokenView:
    providers: list[ProviderChoice]  # only those the person has a key for
    provider: str | None  # the one the form is for; None without any key
    entries: list[EntryView]
    summary: Summary | None


@dataclass(frozen=True)
class Minted:
    name: str
    provider_name: str
    token: str
    base_url: str
    expires_at: str
    snippet: str  # ``export OPENAI_BASE_URL=... OPENAI_API_KEY=...``


def asked(vault: Vault, provider: str) -> list[dict[str, Any]]:
    """The widest entry for ``provider``: what the form starts from, and narrows."""
    raw = [{"type": DETAILS_TYPE, "provider": provider}]
    return parse_details(raw, vault.providers, vault.settings)


def _name(vault: Vault, provider: str) -> str:
    row = vault.providers.get(provider)
    return row.name if row is not None else provider


def new_token_view(vault: Vault, account_id: str, provider: str | None) -> NewTokenView:
    """The page for ``provider``, else the first provider the person has a key for."""
    with vault.session() as session:
        keys = vault.keys.list(session, account_id)
        defaults = default_limits_for(session, account_id, vault.settings)
    ids = sorted({k.provider for k in keys if vault.providers.get(k.provider) is not None})
    choices = [ProviderChoice(p, _name(vault, p)) for p in ids]
    chosen = provider if provider in ids else (ids[0] if ids else None)
    if chosen is None:
        return NewTokenView(choices, None, [], None)
    entries = entry_views(asked(vault, chosen), vault.providers, keys, defaults, [False])
    return NewTokenView(choices, chosen, entries, summarise(entries))


def mint_from_form(
    vault: Vault, account_id: str, form: Mapping[str, Sequence[str]], ip: str | None
) -> Minted:
    """Narrow the widest entry by the posted form and mint it. Raises NarrowingError or
    InvalidAuthorizationDetails (nothing stored), whose text is safe to show."""
    provider = (form.get("d0.provider") or [""])[0]
    name = (form.get("name") or [""])[0]
    with vault.session() as session:
        keys = vault.keys.list(session, account_id, provider)
        defaults = default_limits_for(session, account_id, vault.settings)
    if not provider or not keys:
        raise NarrowingError("Choose a provider you have a key for.")
    widest = asked(vault, provider)
    choices = parse_choices(widest, {**form, "d0.include": ["1"]})
    granted = narrow(widest, choices.narrowing, defaults)
    key_id = choices.narrowing[provider].key_id
    grant, token = mint_personal(
        vault,
        account_id,
        name,
        granted,
        ip,
        as_chosen=True,
        key_ids={provider: key_id} if key_id else None,
    )
    base_url = public_details(grant.details, vault.settings.effective_public_url)[0]["base_url"]
    row = env_row(provider)
    variables = [*(f"{v}={shlex.quote(base_url)}" for v in row.base_url_vars)]
    variables += [f"{v}={shlex.quote(token)}" for v in row.key_vars]
    return Minted(
        name=grant.client_name,
        provider_name=_name(vault, provider),
        token=token,
        base_url=base_url,
        expires_at=when(aware(grant.expires_at)),
        snippet="export " + " ".join(variables),
    )
