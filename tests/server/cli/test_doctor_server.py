"""``okap-server doctor`` looks at the server behind the public URL: nothing there, this
vault, another vault, or something that is not a vault at all."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from okap_server.context import open_vault
from okap_server.settings import Settings
from tests.server.cli.conftest import CliRunner
from tests.support.live import serve_vault

PASSWORD = "a good long password"


def server_line(out: str) -> str:
    return next(line for line in out.splitlines() if " server: " in line)


@pytest.fixture
def stocked(cli: CliRunner) -> None:
    assert cli("users", "add", "alice", stdin=PASSWORD).code == 0
    assert cli("keys", "add", "openai", stdin="sk-proj-doctor00000000000000001").code == 0


def test_nothing_answering_is_a_warning_that_says_how_to_fix_it(
    cli: CliRunner, stocked: None, cli_env: Settings
) -> None:
    result = cli("doctor", "--offline")
    assert result.code == 0
    assert result.out.splitlines()[0].startswith("vault: database ")
    line = server_line(result.out)
    assert line.startswith("warn ") and f"nothing answers at {cli_env.effective_public_url}" in line
    assert "okap-server serve" in line and "OKAP_PUBLIC_URL" in line


def test_this_vault_answering_passes(
    cli: CliRunner, stocked: None, cli_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = open_vault(cli_env)
    try:
        with serve_vault(vault) as url:
            monkeypatch.setenv("OKAP_PUBLIC_URL", url)
            result = cli("doctor", "--offline")
    finally:
        vault.dispose()
    assert result.code == 0, result.out
    assert server_line(result.out) == f"ok    server: a vault answers at {url} (this vault)"


def test_another_vault_answering_fails(
    cli: CliRunner,
    stocked: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    home = tmp_path / "other-home"
    elsewhere = Settings(home=home, database_url=f"sqlite:///{home / 'okap.db'}")
    other = open_vault(elsewhere)  # its own database and master key
    try:
        with serve_vault(other) as url:
            monkeypatch.setenv("OKAP_PUBLIC_URL", url)
            result = cli("doctor", "--offline")
    finally:
        other.dispose()
    assert result.code == 1
    line = server_line(result.out)
    assert line.startswith("FAIL ") and f"a different vault answers at {url}" in line
    assert "runs elsewhere" in line


class _NotAVault(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = b"<html>It works!</html>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def not_a_vault() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotAVault)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_something_else_answering_fails(
    cli: CliRunner, stocked: None, not_a_vault: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OKAP_PUBLIC_URL", not_a_vault)
    result = cli("doctor", "--offline")
    assert result.code == 1
    assert f"{not_a_vault} answers HTTP 200, but not as an okap vault" in server_line(result.out)


class _OldVault(BaseHTTPRequestHandler):
    """A vault of an earlier version: it says ok, and proves nothing."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = b'{"status": "ok", "vault": "0123456789abcdef"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_vault_that_proves_nothing_is_a_warning_not_a_pass(
    cli: CliRunner, stocked: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OldVault)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        monkeypatch.setenv("OKAP_PUBLIC_URL", url)
        result = cli("doctor", "--offline")
    finally:
        server.shutdown()
        server.server_close()
    line = server_line(result.out)
    assert line.startswith("warn ") and "cannot tell whether it is this vault" in line
