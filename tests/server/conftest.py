"""Helpers for the vault and backup tests: an owner id and stored keys."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from okap_server.accounts.service import find_account
from okap_server.context import Vault


@pytest.fixture
def owner_id(vault: Vault, owner: tuple[str, str]) -> str:
    with vault.session() as session:
        account = find_account(session, owner[0])
        assert account is not None
        return account.id


@pytest.fixture
def add_key(vault: Vault, owner_id: str) -> Callable[..., str]:
    def add(provider: str, label: str, secret: str) -> str:
        with vault.session() as session:
            shown = vault.keys.add(
                session, account_id=owner_id, provider=provider, label=label, secret=secret
            )
            session.commit()
        return shown.id

    return add
