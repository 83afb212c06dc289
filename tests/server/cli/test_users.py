"""``okap-server users``: accounts from the command line."""

from __future__ import annotations

import os
import pty
import select as io_select
import sys
import time
from pathlib import Path

from sqlmodel import Session, select

from okap_server.accounts.models import Account
from okap_server.accounts.service import authenticate
from okap_server.db.engine import make_engine
from okap_server.settings import Settings
from tests.server.cli.conftest import CliRunner, clean_env, settings_env

PASSWORD = "a good long password"


def _accounts(settings: Settings) -> dict[str, Account]:
    engine = make_engine(settings.effective_database_url)
    try:
        with Session(engine) as session:
            return {a.username: a for a in session.exec(select(Account)).all()}
    finally:
        engine.dispose()


def test_first_user_is_the_owner(cli: CliRunner, cli_env: Settings) -> None:
    added = cli("users", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    assert added.code == 0, added.err
    assert "created account alice (owner and admin)" in added.out
    second = cli("users", "add", "bob", stdin=PASSWORD + "\n")  # piped stdin is read too
    assert second.code == 0 and "(member)" in second.out
    accounts = _accounts(cli_env)
    assert accounts["alice"].is_admin and not accounts["bob"].is_admin
    assert accounts["alice"].password_hash.startswith("$argon2id$")
    listing = cli("users", "list")
    assert listing.code == 0
    assert [line.split()[:2] for line in listing.out.splitlines()[2:]] == [
        ["alice", "admin"],
        ["bob", "member"],
    ]


def test_bad_input_stores_nothing(cli: CliRunner, cli_env: Settings) -> None:
    short = cli("users", "add", "alice", "--password-stdin", stdin="short\n")
    assert short.code == 2 and "at least 8 characters" in short.err
    assert short.err.count("\n") == 1 and "short" not in short.err.replace("at least", "")
    empty = cli("users", "add", "alice", "--password-stdin", stdin="")
    assert empty.code == 2 and "no password on stdin" in empty.err
    bad_name = cli("users", "add", "bad name!", "--password-stdin", stdin=PASSWORD)
    assert bad_name.code != 0
    assert _accounts(cli_env) == {}
    assert cli("users", "add", "alice", stdin=PASSWORD).code == 0
    dup = cli("users", "add", "alice", stdin=PASSWORD)
    assert dup.code == 2 and "already exists" in dup.err


def test_remove_and_last_admin(cli: CliRunner, cli_env: Settings) -> None:
    assert cli("users", "add", "alice", stdin=PASSWORD).code == 0
    assert cli("users", "add", "bob", stdin=PASSWORD).code == 0
    refused = cli("users", "remove", "alice")
    assert refused.code == 2 and "last admin" in refused.err
    assert set(_accounts(cli_env)) == {"alice", "bob"}
    removed = cli("users", "remove", "bob")
    assert removed.code == 0 and "removed account bob" in removed.out
    assert set(_accounts(cli_env)) == {"alice"}
    missing = cli("users", "remove", "nobody")
    assert missing.code == 2 and "no account named 'nobody'" in missing.err


def test_set_password(cli: CliRunner, cli_env: Settings) -> None:
    assert cli("users", "add", "alice", stdin=PASSWORD).code == 0
    changed = cli("users", "set-password", "alice", stdin="another long password\n")
    assert changed.code == 0
    engine = make_engine(cli_env.effective_database_url)
    try:
        with Session(engine) as session:
            assert authenticate(session, "alice", "another long password") is not None
            assert authenticate(session, "alice", PASSWORD) is None
    finally:
        engine.dispose()


def test_users_add_voids_the_setup_link(cli: CliRunner, cli_env: Settings) -> None:
    from okap_server.accounts.setup import SetupError, check_setup_token, issue_setup_token
    from okap_server.context import open_vault

    vault = open_vault(cli_env)
    try:
        with vault.session() as session:
            token = issue_setup_token(session, 3600)
        assert token
        assert cli("users", "add", "alice", stdin=PASSWORD).code == 0
        with vault.session() as session:
            try:
                check_setup_token(session, token)
                raise AssertionError("the setup link still works")
            except SetupError:
                pass
    finally:
        vault.dispose()


def test_hidden_prompt_on_a_terminal(cli_env: Settings, tmp_path: Path) -> None:
    """On a terminal the password is asked twice, without echo, and never taken from argv."""
    env = clean_env(**settings_env(cli_env))
    pid, fd = pty.fork()
    if pid == 0:  # the child: okap-server on a pseudo-terminal
        os.chdir(tmp_path)
        os.execve(
            sys.executable, [sys.executable, "-m", "okap_server.cli", "users", "add", "alice"], env
        )
    seen = b""

    def expect(text: bytes) -> None:
        nonlocal seen
        deadline = time.monotonic() + 30
        while text not in seen:
            assert time.monotonic() < deadline, seen
            ready, _, _ = io_select.select([fd], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(fd, 1024)
                except OSError:
                    break

    expect(b"Password: ")
    os.write(fd, PASSWORD.encode() + b"\n")
    expect(b"Password (again): ")
    os.write(fd, PASSWORD.encode() + b"\n")
    expect(b"created account alice")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    assert PASSWORD.encode() not in seen  # not echoed
    assert _accounts(cli_env)["alice"].is_admin
