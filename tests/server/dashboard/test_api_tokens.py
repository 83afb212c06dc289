"""The "API tokens" and "New token" pages over real HTTP: a token made on the page works
against /api/v1 once and is never shown again; revoking it cuts it off; ``admin`` is
offered to admins only, and another account's token is not found."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from sqlmodel import select

from okap_server.accounts.models import ManagementToken
from okap_server.context import Vault
from tests.server.dashboard.conftest import Visitor, csrf_of


@pytest.fixture
def backend() -> str:
    return "sqlite"


def _create(visitor: Visitor, name: str, *scopes: str, expires: str = "30") -> httpx.Response:
    csrf = csrf_of(visitor.page("/api-tokens/new").text)
    fields = {"csrf_token": csrf, "name": name, "expires_in": expires, "scope": list(scopes)}
    return visitor.client.post("/api-tokens", data=fields)


def _token_in(html: str) -> str:
    match = re.search(r'value="(okapm_[A-Za-z0-9_]+)"', html)
    assert match, "the page shows no token"
    return match.group(1)


def test_a_token_made_on_the_page_works_once_shown_and_is_revoked_there(
    live_url: str, vault: Vault, people: Callable[..., Visitor]
) -> None:
    alice = people("alice")
    assert "No API token yet" in alice.page("/api-tokens").text
    created = _create(alice, "ci job", "grants:read", "usage:read")
    assert created.status_code == 200 and created.headers["cache-control"] == "no-store"
    token = _token_in(created.text)
    assert "shown this once" in created.text

    bearer = {"Authorization": f"Bearer {token}"}
    grants = httpx.get(f"{live_url}/api/v1/grants", headers=bearer)
    assert grants.status_code == 200 and grants.json()["data"] == []
    assert httpx.get(f"{live_url}/api/v1/provider-keys", headers=bearer).status_code == 403

    listing = " ".join(alice.page("/api-tokens").text.split())
    assert "ci job" in listing and "grants:read" in listing and "usage:read" in listing
    assert "last used just now" in listing and "expires in" in listing
    assert token not in listing  # shown once, never again
    with vault.session() as session:
        [row] = session.exec(select(ManagementToken)).all()
    assert token not in str(row.model_dump())  # only its hash is stored

    revoked = alice.post(f"/api-tokens/{row.id}/revoke")
    assert revoked.status_code == 303 and revoked.headers["location"].endswith("revoked")
    assert httpx.get(f"{live_url}/api/v1/grants", headers=bearer).status_code == 401
    after = alice.page("/api-tokens").text
    assert "revoked" in after and f"/api-tokens/{row.id}/revoke" not in after


def test_admin_scope_is_offered_to_admins_only(people: Callable[..., Visitor]) -> None:
    root, alice = people("root", admin=True), people("alice")  # the first account is an admin
    assert 'value="admin"' not in alice.page("/api-tokens/new").text
    assert 'value="admin"' in root.page("/api-tokens/new").text
    forged = _create(alice, "sneaky", "admin")
    assert forged.status_code == 422 and "only an admin" in forged.text
    assert "Nothing was stored" in forged.text
    assert _token_in(_create(root, "accounts", "admin").text).startswith("okapm_")


def test_bad_forms_store_nothing(vault: Vault, people: Callable[..., Visitor]) -> None:
    alice = people("alice")
    assert _create(alice, "no scopes").status_code == 422
    assert _create(alice, "", "grants:read").status_code == 422
    assert _create(alice, "x", "grants:read", expires="soon").status_code == 422
    assert _create(alice, "x", "grants:read", expires="99999").status_code == 422
    assert _create(alice, "x", "no:such").status_code == 422
    with vault.session() as session:
        assert session.exec(select(ManagementToken)).all() == []


def test_never_expiring_token_and_csrf(people: Callable[..., Visitor]) -> None:
    alice = people("alice")
    assert _create(alice, "forever", "keys:read", expires="").status_code == 200
    assert "never expires" in alice.page("/api-tokens").text
    no_csrf = alice.client.post("/api-tokens", data={"name": "x", "scope": "keys:read"})
    assert no_csrf.status_code == 403


def test_another_accounts_token_is_not_found(
    vault: Vault, live_url: str, people: Callable[..., Visitor]
) -> None:
    alice, bob = people("alice"), people("bob")
    token = _token_in(_create(alice, "mine", "grants:read").text)
    with vault.session() as session:
        [row] = session.exec(select(ManagementToken)).all()
    assert "mine" not in bob.page("/api-tokens").text
    assert bob.post(f"/api-tokens/{row.id}/revoke").status_code == 404
    ok = httpx.get(f"{live_url}/api/v1/grants", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
