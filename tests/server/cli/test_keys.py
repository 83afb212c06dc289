"""``okap-server keys``: keys come from stdin or a prompt, never argv; output shows hints only."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from okap_server.db.engine import make_engine
from okap_server.settings import Settings
from okap_server.vault.models import ProviderKey
from tests.server.cli.conftest import CliRunner, clean_env

SECRET = "sk-proj-cliKEYsecret0123456789abcdEFGH"
PASSWORD = "a good long password"


def _rows(settings: Settings) -> list[tuple[str, str, str, bytes, bool]]:
    engine = make_engine(settings.effective_database_url)
    try:
        with Session(engine) as session:
            keys = session.exec(select(ProviderKey).order_by(ProviderKey.label)).all()
            return [(k.provider, k.label, k.hint, k.ciphertext, k.is_default) for k in keys]
    finally:
        engine.dispose()


@pytest.fixture
def alice(cli: CliRunner) -> Iterator[None]:
    assert cli("users", "add", "alice", stdin=PASSWORD).code == 0
    yield


def test_add_list_default_remove(cli: CliRunner, cli_env: Settings, alice: None) -> None:
    added = cli("keys", "add", "openai", "--label", "personal", "--secret-stdin", stdin=SECRET)
    assert added.code == 0, added.err
    assert "sk-...EFGH" in added.out and SECRET not in added.out + added.err
    work = cli("keys", "add", "OpenAI", "--label", "work", stdin="sk-proj-work000000000000001\n")
    assert work.code == 0
    gemini = cli("keys", "add", "gemini", stdin="AIzaSyGeminiKey0000000000000001")
    assert gemini.code == 0 and "stored google key" in gemini.out  # alias resolved
    listing = cli("keys", "list")
    assert listing.code == 0 and SECRET not in listing.out and "sk-...EFGH" in listing.out
    lines = {line.split()[3]: line for line in listing.out.splitlines()[2:]}
    assert "yes" in lines["personal"].split() and "yes" not in lines["work"].split()
    work_id = lines["work"].split()[0]
    assert cli("keys", "default", work_id).code == 0
    defaults = {label: default for _, label, _, _, default in _rows(cli_env)}
    assert defaults == {"personal": False, "work": True, "default": True}
    removed = cli("keys", "remove", work_id)
    assert removed.code == 0 and "removed openai key 'work'" in removed.out
    assert [r[1] for r in _rows(cli_env)] == ["default", "personal"]
    assert {label: d for _, label, _, _, d in _rows(cli_env)}["personal"] is True
    only_google = cli("keys", "list", "--provider", "google")
    assert "AIz...0001" in only_google.out and "openai" not in only_google.out


def test_duplicate_label_changes_nothing(cli: CliRunner, cli_env: Settings, alice: None) -> None:
    assert cli("keys", "add", "openai", "--label", "work", stdin=SECRET).code == 0
    before = _rows(cli_env)
    dup = cli("keys", "add", "openai", "--label", "work", stdin="sk-proj-other0000000000000002")
    assert dup.code == 2 and "already" in dup.err and dup.err.count("\n") == 1
    assert _rows(cli_env) == before


def test_unknown_provider_changes_nothing(cli: CliRunner, cli_env: Settings, alice: None) -> None:
    unknown = cli("keys", "add", "openia", stdin=SECRET)
    assert unknown.code == 2
    assert "unknown provider 'openia'" in unknown.err and "openai" in unknown.err
    assert SECRET not in unknown.err
    assert _rows(cli_env) == []


def test_bad_secrets_are_refused(cli: CliRunner, cli_env: Settings, alice: None) -> None:
    assert cli("keys", "add", "openai", stdin="").code == 2
    spaced = cli("keys", "add", "openai", stdin="sk-proj with spaces\n")
    assert spaced.code == 2 and "whitespace" in spaced.err and "with spaces" not in spaced.err
    assert _rows(cli_env) == []


def test_no_account_yet(cli: CliRunner, cli_env: Settings) -> None:
    result = cli("keys", "add", "openai", stdin=SECRET)
    assert result.code == 2 and "no account yet" in result.err
    assert cli("keys", "add", "openai", "--user", "bob", stdin=SECRET).code == 2


def test_secret_on_argv_is_refused_and_not_echoed(tmp_path: Path) -> None:
    """Real processes, as a person would type it: refused before anything is opened or
    stored, and the secret is not echoed back."""
    home = tmp_path / "home"
    env = clean_env(OKAP_HOME=str(home))
    cases = (
        ["keys", "add", "openai", SECRET],
        ["keys", "add", "openai", "--label", "work", "hunter2"],  # not key-shaped, still refused
        ["keys", "add", SECRET],
        ["keys", "add", "openai", f"--secret={SECRET}"],
        ["users", "add", "bob", "--password", "hunter2hunter2"],
        ["export", "backup.okap", "--passphrase", "my passphrase words"],
    )
    running = [
        subprocess.Popen(
            [sys.executable, "-m", "okap_server.cli", *argv],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv in cases
    ]
    for argv, process in zip(cases, running):
        out, err = process.communicate(timeout=60)
        assert process.returncode == 2, argv
        assert "refusing a secret on the command line" in err, err
        assert SECRET not in err + out and "hunter2" not in err and "passphrase words" not in err
        assert err.count("\n") == 1, err
    assert not home.exists()  # nothing was opened, let alone stored
