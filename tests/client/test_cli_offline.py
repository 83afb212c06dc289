"""The ``okap`` command line where no vault is needed: help, usage errors, a dead vault."""

import shutil
import subprocess
import sys

import pytest

from okap_client import OkapToken, TokenCache
from okap_client.cli import main
from tests.support.live import free_port


@pytest.fixture
def cache(tmp_path):
    return TokenCache(tmp_path / "tokens.json")


@pytest.mark.parametrize(
    "argv", [["--help"], *[[c, "--help"] for c in ("request", "env", "run", "status", "revoke")]]
)
def test_help_everywhere(argv, capsys, cache):
    with pytest.raises(SystemExit) as done:
        main(argv, cache)
    assert done.value.code == 0
    assert "usage: okap" in capsys.readouterr().out


def test_the_console_script_is_installed():
    okap = shutil.which("okap") or str(__import__("pathlib").Path(sys.executable).with_name("okap"))
    result = subprocess.run([okap, "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert "okap run" not in result.stderr
    for command in ("request", "env", "run", "status", "revoke"):
        assert command in result.stdout


def test_an_unreachable_vault_says_so_and_how_to_fix_it(capsys, cache):
    url = f"http://127.0.0.1:{free_port()}"
    code = main(["env", "openai", "--vault", url], cache)
    err = capsys.readouterr().err
    assert code == 3
    assert f"cannot reach the vault at {url}" in err
    assert "OKAP_VAULT_URL" in err


def test_run_without_a_command_is_a_usage_error(capsys, cache):
    assert main(["run", "openai", "--vault", "http://127.0.0.1:9"], cache) == 2
    assert "nothing to run" in capsys.readouterr().err


def test_bad_limits_are_refused_before_asking(capsys, cache):
    code = main(
        ["request", "openai", "--monthly-limit", "-3", "--vault", "http://127.0.0.1:9"], cache
    )
    assert code == 1
    assert "non-negative" in capsys.readouterr().err


def test_status_with_nothing_cached(capsys, cache):
    assert main(["status"], cache) == 0
    assert "No cached tokens" in capsys.readouterr().out


def test_status_offline_lists_without_showing_the_token(capsys, cache):
    token = OkapToken(
        "okap_secretsecret",
        "http://127.0.0.1:9",
        [
            {
                "provider": "openai",
                "models": ["gpt-4o-mini"],
                "capabilities": ["chat"],
                "limits": {"monthly_spend": 5},
            }
        ],
    )
    key = cache.put("http://127.0.0.1:9", "okap-cli", [{"provider": "openai"}], token)
    assert main(["status", "--offline"], cache) == 0
    out = capsys.readouterr().out
    assert key[:10] in out
    assert "gpt-4o-mini" in out and "monthly spend $5.00" in out
    assert "okap_secretsecret" not in out
    assert main(["status"], cache) == 0
    assert "vault unreachable" in capsys.readouterr().out


def test_revoke_needs_to_be_told_what(capsys, cache):
    assert main(["revoke"], cache) == 2
    assert main(["revoke", "nosuchid"], cache) == 2
    assert "no cached token with id nosuchid" in capsys.readouterr().err


def test_revoke_reports_a_vault_it_cannot_reach_and_keeps_the_entry(capsys, cache):
    token = OkapToken("okap_secretsecret", "http://127.0.0.1:9", [{"provider": "openai"}])
    cache.put("http://127.0.0.1:9", "okap-cli", [{"provider": "openai"}], token)
    assert main(["revoke", "--all"], cache) == 1
    err = capsys.readouterr().err
    assert "could not revoke" in err and "cannot reach the vault" in err
    assert "okap_secretsecret" not in err
    assert len(cache.entries()) == 1


def test_every_limit_and_the_shell_option_are_explained(capsys, cache):
    with pytest.raises(SystemExit):
        main(["env", "--help"], cache)
    shown = " ".join(capsys.readouterr().out.split())  # argparse wraps help text
    assert "--requests-per-minute N, --rpm N requests per minute" in shown
    assert "--requests-per-day N requests per day" in shown
    assert "--shell {sh,fish,powershell,dotenv} syntax of the lines printed" in shown


def test_an_expired_device_code_says_expired_once():
    from okap_client.cli import _explain
    from okap_client.errors import AuthorizationExpired

    said = str(_explain(AuthorizationExpired("the device code expired before approval"), "v"))
    assert said == "the device code expired before approval"
    plain = str(_explain(AuthorizationExpired("nobody decided in time"), "v"))
    assert plain == "the request expired before it was approved: nobody decided in time"


def test_a_typo_d_provider_gets_a_suggestion_from_the_vault(capsys, cache, live_url):
    code = main(["env", "opnai", "--vault", live_url], cache)
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown provider 'opnai'; did you mean openai?" in err
    assert "This vault has: openai, anthropic, google" in err
    assert main(["env", "openai,antrhopic", "--vault", live_url], cache) == 2
    assert "did you mean anthropic?" in capsys.readouterr().err
    assert cache.entries() == []  # nobody was asked anything
