"""Over real HTTP: a disabled account's management tokens are revoked (re-enabling does not
bring them back), and ``metrics:read``, which shows every account's spend and grants, is an
admin's scope like ``admin``: offered and accepted for admins only, and dead once the
account stops being an admin."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import select

from okap_server.accounts.models import Account, ManagementToken
from okap_server.context import Vault
from okap_server.dashboard.api_tokens import offered_scopes
from okap_server.manage.management_tokens import ManagementTokenError, create_token
from tests.server.api.conftest import account, client, mint


def _metrics(live_url: str, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{live_url}/metrics", headers=headers, timeout=10).status_code


def test_disabling_an_account_revokes_its_management_tokens(
    vault: Vault, live_url: str, api: httpx.Client
) -> None:
    bob_id = account(vault, "bob")
    bobs = [mint(vault, "bob", ["grants:read"]), mint(vault, "bob", ["grants:read", "keys:read"])]
    with client(live_url, bobs[0]) as bob:
        assert bob.get("/grants").status_code == 200
    disabled = api.patch(f"/accounts/{bob_id}", json={"disabled": True})
    assert disabled.status_code == 200, disabled.text
    with vault.session() as session:
        rows = session.exec(select(ManagementToken).where(ManagementToken.account_id == bob_id))
        assert all(row.revoked_at is not None for row in rows)
    assert api.patch(f"/accounts/{bob_id}", json={"disabled": False}).status_code == 200
    for token in bobs:
        with client(live_url, token) as bob:
            assert bob.get("/grants").status_code == 401  # re-enabled, the tokens stay dead
    assert api.get("/grants").status_code == 200  # the admin's own token is untouched


def test_metrics_read_is_for_admins_only(vault: Vault, live_url: str) -> None:
    admin_token = mint(vault, "alice", ["metrics:read"], admin=True)
    mint(vault, "bob", ["grants:read"])
    with vault.session() as session:
        alice = session.exec(select(Account).where(Account.username == "alice")).one()
        bob = session.exec(select(Account).where(Account.username == "bob")).one()
        with pytest.raises(ManagementTokenError, match="metrics:read"):
            create_token(session, bob, name="x", scopes=["grants:read", "metrics:read"])
        assert "metrics:read" not in dict(offered_scopes(bob))
        assert "metrics:read" in dict(offered_scopes(alice))
    assert _metrics(live_url, admin_token) == 200
    with vault.session() as session:  # alice stops being an admin: the scope stops working
        alice = session.exec(select(Account).where(Account.username == "alice")).one()
        alice.is_admin = False
        session.add(alice)
        session.commit()
    assert _metrics(live_url, admin_token) == 403
