"""Personal tokens: a grant a person makes for themselves, without an app flow.

Same validation (``parse_details``, RFC 9396 §2), same defaults (the account's default
limits fill every limit not named, ``defaults.with_defaults``) and same backing keys (the
provider's default key) as "approve as asked" on the consent page and the pending list;
the token is shown once and only its hash is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from okap_server.audit.events import record_event
from okap_server.authorization.defaults import default_limits_for, with_defaults
from okap_server.authorization.details import parse_details
from okap_server.authorization.display_text import hidden_problem
from okap_server.authorization.errors import InvalidAuthorizationDetails
from okap_server.authorization.grants import grant_expiry
from okap_server.context import Vault
from okap_server.grants.details import stored
from okap_server.grants.models import Grant
from okap_server.grants.tokens import new_access_token, token_hash
from okap_server.webhooks import grant_events as webhook_events

PERSONAL_FLOW = "personal"
MAX_NAME = 200


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidAuthorizationDetails(f"name: 1 to {MAX_NAME} characters")
    problem = hidden_problem(name)
    if problem:
        raise InvalidAuthorizationDetails(f"name: {problem}")
    return name


def mint_personal(
    vault: Vault,
    account_id: str,
    name: str,
    raw_details: Any,
    ip: str | None,
    *,
    as_chosen: bool = False,
    key_ids: Mapping[str, str] | None = None,
) -> tuple[Grant, str]:
    """A new personal grant and its token. Raises InvalidAuthorizationDetails naming the
    field (nothing stored), e.g. when the person has no key for a provider yet.

    ``as_chosen``: the details come from the dashboard's form, where the person saw every
    limit filled from their defaults and may have cleared some, so a null limit means no
    limit and nothing is filled in again. ``key_ids``: the key chosen per provider (one
    of the person's keys for it), else the provider's default key."""
    name = check_name(name)
    details = parse_details(raw_details, vault.providers, vault.settings)
    with vault.session() as session:
        filled = (
            details
            if as_chosen
            else with_defaults(details, default_limits_for(session, account_id, vault.settings))
        )
        granted = []
        for index, entry in enumerate(filled):
            provider = entry["provider"]
            chosen = (key_ids or {}).get(provider)
            key = (
                vault.keys.get(session, account_id, chosen)
                if chosen
                else vault.keys.default_for(session, account_id, provider)
            )
            if key is None or key.provider != provider:
                raise InvalidAuthorizationDetails(
                    f"authorization_details[{index}].provider: "
                    + (
                        f"choose one of your {provider} keys"
                        if chosen
                        else f"you have no {provider} key yet; add one first"
                    )
                )
            granted.append({**entry, "key_id": key.id})
        token = new_access_token()
        grant = Grant(
            account_id=account_id,
            token_hash=token_hash(token),
            client_id=f"personal:{name}"[:512],
            client_name=name,
            flow=PERSONAL_FLOW,
            details=stored(granted),
            expires_at=grant_expiry(granted),
        )
        session.add(grant)
        session.flush()
        record_event(
            session,
            "grant_approved",
            account_id=account_id,
            ip=ip,
            grant_id=grant.id,
            client_id=grant.client_id,
            client_name=name,
            flow=PERSONAL_FLOW,
            providers=[d["provider"] for d in granted],
        )
        webhook_events.granted(session, grant)
        session.commit()
    return grant, token
