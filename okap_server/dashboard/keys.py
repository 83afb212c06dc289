"""Provider keys as the dashboard lists them: by hint, with the apps that depend on each.

Adding, making default, removing and testing a key are use cases (``manage/keys.py``,
``manage/key_check.py``) the API calls too. The secret never comes back: pages show the hint.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from okap_server.clock import utcnow
from okap_server.context import Vault
from okap_server.dashboard import formatting as fmt
from okap_server.manage.keys import dependents


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
