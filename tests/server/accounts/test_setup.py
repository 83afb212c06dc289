"""The one-time setup link: only it (or the CLI) creates the first account."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import httpx
import pytest
from sqlmodel import select

from okap_server.accounts.models import Account
from okap_server.accounts.setup import (
    AlreadySetUp,
    SetupError,
    claim_vault,
    issue_setup_token,
)
from okap_server.clock import utcnow
from okap_server.context import Vault
from okap_server.vault.models import VaultMeta

PASSWORD = "a fine long password"


def _token(vault: Vault) -> str:
    with vault.session() as session:
        token = issue_setup_token(session, 3600)
    assert token is not None
    return token


def _accounts(vault: Vault) -> list[Account]:
    with vault.session() as session:
        return list(session.exec(select(Account)).all())


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def test_setup_link_creates_the_owner_once(vault: Vault, page_url: str) -> None:
    token = _token(vault)
    with httpx.Client(base_url=page_url) as browser:
        form = browser.get("/setup", params={"token": token})
        assert form.status_code == 200
        assert '<label for="username">Username</label>' in form.text
        assert '<label for="password">Password</label>' in form.text
        assert form.headers["cache-control"] == "no-store"
        csrf = _csrf(form.text)
        done = browser.post(
            "/setup",
            data={"token": token, "csrf_token": csrf, "username": "alice", "password": PASSWORD},
        )
        assert done.status_code == 303 and done.headers["location"] == "/signin?created=alice"
        signin = browser.get(done.headers["location"])
        assert "Your account <strong>alice</strong> was created." in signin.text
        assert 'name="username" value="alice"' in signin.text
        [owner] = _accounts(vault)
        assert owner.username == "alice" and owner.is_admin
        # The link is spent: neither the page nor the form works again.
        again = browser.get("/setup", params={"token": token})
        assert again.status_code == 410 and "already set up" in again.text
        replay = browser.post(
            "/setup",
            data={"token": token, "csrf_token": csrf, "username": "mallory", "password": PASSWORD},
        )
        assert replay.status_code in (403, 410)  # the cookie is gone too
    assert [a.username for a in _accounts(vault)] == ["alice"]


def test_nobody_claims_the_vault_without_the_token(vault: Vault, page_url: str) -> None:
    _token(vault)  # a link exists, but the attacker does not have it
    with httpx.Client(base_url=page_url) as attacker:
        assert attacker.get("/setup").status_code == 403
        assert attacker.get("/setup", params={"token": "guessed"}).status_code == 403
        forged = attacker.post(
            "/setup",
            data={"token": "guessed", "csrf_token": "x", "username": "eve", "password": PASSWORD},
        )
        assert forged.status_code == 403
    assert _accounts(vault) == []


def test_the_form_needs_its_csrf_value_and_cookie(vault: Vault, page_url: str) -> None:
    token = _token(vault)
    with httpx.Client(base_url=page_url) as browser:
        csrf = _csrf(browser.get("/setup", params={"token": token}).text)
        wrong = browser.post(
            "/setup",
            data={"token": token, "csrf_token": "0" * 64, "username": "a", "password": PASSWORD},
        )
        assert wrong.status_code == 403
    with httpx.Client(base_url=page_url) as other_site:  # no cookie: a cross-site post
        posted = other_site.post(
            "/setup",
            data={"token": token, "csrf_token": csrf, "username": "a", "password": PASSWORD},
        )
        assert posted.status_code == 403
    assert _accounts(vault) == []


def test_a_bad_password_keeps_the_link_usable(vault: Vault, page_url: str) -> None:
    token = _token(vault)
    with httpx.Client(base_url=page_url) as browser:
        csrf = _csrf(browser.get("/setup", params={"token": token}).text)
        short = browser.post(
            "/setup",
            data={"token": token, "csrf_token": csrf, "username": "alice", "password": "short"},
        )
        assert short.status_code == 400 and "at least 8 characters" in short.text
        assert 'value="alice"' in short.text
        ok = browser.post(
            "/setup",
            data={
                "token": token,
                "csrf_token": _csrf(short.text),
                "username": "alice",
                "password": PASSWORD,
            },
        )
        assert ok.status_code == 303


def test_only_the_hash_of_the_token_is_stored(vault: Vault) -> None:
    token = _token(vault)
    with vault.session() as session:
        rows = session.exec(select(VaultMeta)).all()
    assert all(token not in row.key and token not in row.value for row in rows)
    assert any(row.key.startswith("setup_token:") for row in rows)


def test_no_link_once_the_vault_has_an_account(vault: Vault, owner: tuple[str, str]) -> None:
    with vault.session() as session:
        assert issue_setup_token(session, 3600) is None


def test_every_printed_link_works_until_one_is_used(vault: Vault) -> None:
    """Several replicas (or restarts) each print a link; any one of them claims the vault."""
    first, second = _token(vault), _token(vault)
    with vault.session() as session:
        claim_vault(session, second, "alice", PASSWORD)
    with vault.session() as session, pytest.raises(AlreadySetUp):
        claim_vault(session, first, "mallory", PASSWORD)


def test_an_expired_link_is_refused(vault: Vault) -> None:
    token = _token(vault)
    with vault.session() as session:
        row = next(r for r in session.exec(select(VaultMeta)) if r.key.startswith("setup_token:"))
        row.value = (utcnow() - timedelta(seconds=1)).isoformat()
        session.add(row)
        session.commit()
    with vault.session() as session, pytest.raises(SetupError, match="expired"):
        claim_vault(session, token, "alice", PASSWORD)
    assert _accounts(vault) == []


def test_concurrent_claims_make_exactly_one_owner(vault: Vault) -> None:
    tokens = [_token(vault) for _ in range(4)]
    barrier = threading.Barrier(len(tokens))
    outcomes: list[str] = []

    def claim(index: int) -> None:
        barrier.wait()
        try:
            with vault.session() as session:
                claim_vault(session, tokens[index], f"user{index}", PASSWORD)
            outcomes.append("ok")
        except AlreadySetUp:
            outcomes.append("refused")

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(tokens))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok", "refused", "refused", "refused"]
    assert len(_accounts(vault)) == 1
