"""Passwords are stored as Argon2id hashes and checked at the same cost either way."""

from __future__ import annotations

import pytest

from okap_server.accounts.passwords import hash_password, needs_rehash, verify_password
from okap_server.accounts.service import AccountError, authenticate, create_account
from okap_server.context import Vault


def test_hashes_are_argon2id_and_salted() -> None:
    one, two = hash_password("a long password"), hash_password("a long password")
    assert one.startswith("$argon2id$") and one != two
    assert verify_password(one, "a long password")
    assert not verify_password(one, "a long passworD")
    assert not verify_password(None, "a long password")
    assert not verify_password("not a hash", "a long password")
    assert not needs_rehash(one)


def test_short_password_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 8"):
        hash_password("short")


def test_accounts(vault: Vault) -> None:
    with vault.session() as session:
        first = create_account(session, "alice", "alice's password")
        second = create_account(session, "bob", "bob's password!")
        session.commit()
        assert first.is_admin and not second.is_admin  # the first account is the owner
        assert first.password_hash.startswith("$argon2id$")
        assert authenticate(session, "alice", "alice's password") is not None
        assert authenticate(session, "alice", "wrong password") is None
        assert authenticate(session, "nobody", "alice's password") is None
        with pytest.raises(AccountError, match="already exists"):
            create_account(session, "alice", "another password")
        with pytest.raises(AccountError, match="username"):
            create_account(session, "-bad name", "another password")
        second.disabled = True
        session.add(second)
        session.commit()
        assert authenticate(session, "bob", "bob's password!") is None
