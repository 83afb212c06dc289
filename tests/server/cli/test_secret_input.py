"""What the CLI takes for a secret on argv: keys and tokens yes, ids, names and paths no."""

from __future__ import annotations

import io

import pytest

from okap_server.cli.common import CliError
from okap_server.cli.secret_input import looks_like_secret, read_secret


@pytest.mark.parametrize(
    "arg",
    [
        "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
        "sk-ant-api03-abcdefghijklmnopqrstuvwx",
        "AIzaSyA1234567890abcdefghijklmnopqrs",
        "gsk_abcdefghijklmnopqrstuvwxyz012345",
        "okap_0123456789abcdefghijklmnopqrstuvwxyz",
        "Ab3dEf6hIj9lMn2pQr5tUv8xYz1bCd4f",  # 32 mixed characters, as Mistral's keys
        "--password",
        "--secret=abc",
        "--passphrase",
    ],
)
def test_secrets_are_recognised(arg: str) -> None:
    assert looks_like_secret(arg)


@pytest.mark.parametrize(
    "arg",
    [
        "key_0123456789abcdef0123456789abcdef",
        "openai",
        "alice.smith@example.com",
        "/var/backups/okap-2026-11-23.okap",
        "personal-work-2024-key-abcdefgh12345",
        "--password-stdin",
        "--secret-stdin",
        "--passphrase-stdin",
        "--new-key-file",
        "rotate-master-key",
    ],
)
def test_ordinary_arguments_are_not(arg: str) -> None:
    assert not looks_like_secret(arg)


def test_reading_from_a_pipe() -> None:
    assert read_secret(io.StringIO("pa ss word \nnext"), "password", from_stdin=False) == (
        "pa ss word "
    )
    with pytest.raises(CliError, match="no password on stdin"):
        read_secret(io.StringIO("\n"), "password", from_stdin=True)
