"""``okap-server`` as a newcomer meets it: which vault each command uses, read-only commands
that never create one, typos with a suggestion, keys named the way a person remembers them,
a taken port, and a client-only install."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from okap_server.settings import Settings
from tests.server.cli.conftest import CliRunner, clean_env, run_subprocess

PASSWORD = "a good long password"
ROOT = Path(__file__).resolve().parents[3]


def where(settings: Settings) -> str:
    return f"database {settings.effective_database_url.split('://')[0]}"


@pytest.mark.parametrize(
    "argv", [[], ["serve"], ["keys", "list"], ["users", "add"], ["doctor"], ["migrate"]]
)
def test_help_names_the_vault_in_use(
    argv: list[str], cli: CliRunner, cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = cli(*argv, "--help")
    assert shown.code == 0
    assert f"vault: {where(cli_env)}" in shown.out and f"(home {cli_env.home})" in shown.out
    assert "OKAP_HOME or OKAP_DATABASE_URL" in shown.out


@pytest.mark.parametrize("argv", [["keys", "list"], ["users", "list"], ["doctor", "--offline"]])
def test_read_only_commands_never_create_a_vault(
    argv: list[str], cli: CliRunner, cli_env: Settings
) -> None:
    result = cli(*argv)
    said = result.out + result.err
    assert result.code != 0
    assert "there is no vault at" in said or "holds no vault" in said
    assert "OKAP_HOME" in said and "OKAP_DATABASE_URL" in said
    assert not cli_env.home.exists()  # no folder, no database file, no master key
    # ... and still none after it: the next read-only command says the same.
    again = cli(*argv)
    assert again.code != 0 and not cli_env.home.exists()


def test_list_commands_say_which_vault_first(cli: CliRunner, cli_env: Settings) -> None:
    assert cli("users", "add", "alice", stdin=PASSWORD).code == 0
    for argv in (["keys", "list"], ["users", "list"]):
        listing = cli(*argv)
        assert listing.code == 0
        assert listing.out.splitlines()[0].startswith(f"vault: {where(cli_env)}")
    assert cli("keys", "list").out.splitlines()[1] == "no keys stored"


def test_a_typo_d_provider_gets_a_suggestion(cli: CliRunner, cli_env: Settings) -> None:
    assert cli("users", "add", "alice", stdin=PASSWORD).code == 0
    added = cli("keys", "add", "opnai", "--secret-stdin", stdin="sk-proj-0123456789abcdefghij")
    assert added.code == 2
    assert "unknown provider 'opnai'; did you mean openai?" in added.err
    assert "openai, anthropic, google" in added.err and "Nothing was stored" in added.err
    listed = cli("keys", "list", "--provider", "antropic")
    assert listed.code == 2 and "did you mean anthropic?" in listed.err
    assert "stored" not in listed.err  # a list stores nothing, so it does not say so
    far = cli("keys", "list", "--provider", "zzz")
    assert "did you mean" not in far.err and "unknown provider 'zzz'. Known" in far.err


def test_a_duplicate_label_reads_as_english(cli: CliRunner, cli_env: Settings) -> None:
    assert cli("users", "add", "alice", stdin=PASSWORD).code == 0
    secret = "sk-proj-0123456789abcdefghij"
    assert cli("keys", "add", "openai", "--secret-stdin", stdin=secret).code == 0
    again = cli("keys", "add", "openai", "--secret-stdin", stdin=secret)
    assert again.code == 2
    assert "there is already a key labelled 'default' for openai; nothing was stored" in again.err
    assert "a openai" not in again.err


def _ids(cli: CliRunner) -> dict[str, str]:
    """{label: id} from `keys list`."""
    lines = cli("keys", "list").out.splitlines()[2:]
    return {line.split()[3]: line.split()[0] for line in lines}


def test_a_key_is_named_by_a_unique_prefix_or_provider_and_label(
    cli: CliRunner, cli_env: Settings
) -> None:
    assert cli("users", "add", "alice", stdin=PASSWORD).code == 0
    for label in ("work", "home"):
        stored = cli(
            "keys", "add", "openai", "--label", label, "--secret-stdin", stdin=f"sk-{label}-0123456"
        )
        assert stored.code == 0, stored.err
    ids = _ids(cli)
    made = cli("keys", "default", ids["home"][:8])
    assert made.code == 0 and "openai key 'home'" in made.out and "now the default" in made.out
    ambiguous = cli("keys", "remove", "")
    assert ambiguous.code == 2 and "no key with an id starting ''" in ambiguous.err
    wrong = cli("keys", "remove", "openai", "play")
    assert wrong.code == 2 and "no openai key labelled 'play'" in wrong.err
    removed = cli("keys", "remove", "openai", "work")
    assert removed.code == 0 and "removed openai key 'work'" in removed.out
    assert set(_ids(cli)) == {"home"}


def test_a_shared_prefix_changes_nothing(cli: CliRunner, cli_env: Settings) -> None:
    assert cli("users", "add", "alice", stdin=PASSWORD).code == 0
    for label in ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o"):
        assert cli("keys", "add", "openai", "--label", label, stdin=f"sk-{label}-123456").code == 0
    ids = _ids(cli)
    firsts = [i[0] for i in ids.values()]
    shared = next(c for c in firsts if firsts.count(c) > 1)  # 15 ids, 16 hex digits
    refused = cli("keys", "remove", shared)
    assert refused.code == 2 and "more than one key" in refused.err
    assert len(_ids(cli)) == 15


def test_a_taken_port_stops_start_up_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = clean_env(OKAP_HOME=str(tmp_path / "home"))
        result = run_subprocess("serve", "--port", str(port), env=env, timeout=60)
    assert result.code == 2
    assert result.err == (
        f"okap-server: port {port} on 127.0.0.1 is already in use: "
        "stop what uses it, or pass --port\n"
    )
    assert "listening on" not in result.out
    assert result.out == f"vault: home {tmp_path / 'home'}\n"


def test_a_client_only_install_says_what_to_install(tmp_path: Path) -> None:
    """``python -S`` leaves out site-packages, where the server's dependencies live: what a
    client-only install (just okap-vault and httpx) looks like to ``okap-server``."""
    done = subprocess.run(
        [sys.executable, "-S", "-m", "okap_server.cli", "keys", "list"],
        cwd=ROOT,
        env=clean_env(OKAP_HOME=str(tmp_path / "home")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "ModuleNotFoundError" not in done.stderr and "Traceback" not in done.stderr
    assert "Install okap-vault[server]" in done.stderr and "pip install '.[server]'" in done.stderr
    assert not (tmp_path / "home").exists()


def test_a_key_under_the_wrong_provider_is_refused_unless_asked(
    cli: CliRunner, cli_env: Settings
) -> None:
    assert cli("users", "add", "alice", stdin=PASSWORD).code == 0
    secret = "sk-ant-api03-misfiled0123456789"
    refused = cli("keys", "add", "openai", "--secret-stdin", stdin=secret)
    assert refused.code == 2
    assert (
        "this looks like an Anthropic key (it starts with sk-ant-), not an OpenAI key: "
        "run `okap-server keys add anthropic`, or pass --anyway. Nothing was stored"
    ) in refused.err
    assert secret not in refused.err and cli("keys", "list").out.splitlines()[1] == "no keys stored"
    anyway = cli("keys", "add", "openai", "--anyway", "--secret-stdin", stdin=secret)
    assert anyway.code == 0 and "stored openai key" in anyway.out
