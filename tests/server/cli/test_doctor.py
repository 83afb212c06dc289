"""``okap-server doctor``: one pass/fail line per check, non-zero when one fails."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlmodel import select

from okap_server.context import Vault
from okap_server.proxy.providers.catalog import BUILTIN_PROVIDERS
from okap_server.settings import Settings
from okap_server.vault.models import ProviderKey
from tests.server.cli.conftest import CliRunner
from tests.support.live import free_port

PASSWORD = "a good long password"


class _Upstream(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(404)  # any answer means "reachable"
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _lines(out: str) -> dict[str, str]:
    """{check name: status} from doctor's output."""
    found = {}
    for line in out.splitlines():
        status, _, rest = line.partition(" ")
        if status in ("ok", "FAIL", "skip", "warn"):
            found[rest.strip().split(":")[0]] = status
    return found


@pytest.fixture
def stocked(cli: CliRunner) -> None:
    assert cli("users", "add", "alice", stdin=PASSWORD).code == 0
    assert cli("keys", "add", "openai", stdin="sk-proj-doctor00000000000000001").code == 0
    assert cli("keys", "add", "anthropic", stdin="sk-ant-api03-doctor000000000002").code == 0


def test_healthy_vault_passes(
    cli: CliRunner, stocked: None, upstream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for row in BUILTIN_PROVIDERS:
        monkeypatch.setenv(f"OKAP_UPSTREAM_{row.id.upper()}", upstream)
    result = cli("doctor")
    assert result.code == 0, result.out
    lines = _lines(result.out)
    assert lines["database"] == lines["master key"] == lines["stored keys"] == "ok"
    assert lines["clock"] == "ok" and lines["home"] == "ok"
    assert all(lines[f"upstream {row.id}"] == "ok" for row in BUILTIN_PROVIDERS)
    assert "all 2 decrypt" in result.out and "sk-proj-doctor" not in result.out
    assert result.out.strip().endswith("all checks passed")


def test_unreachable_upstream_fails_and_offline_skips(
    cli: CliRunner, stocked: None, upstream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for row in BUILTIN_PROVIDERS:
        monkeypatch.setenv(f"OKAP_UPSTREAM_{row.id.upper()}", upstream)
    monkeypatch.setenv("OKAP_UPSTREAM_GROQ", f"http://127.0.0.1:{free_port()}/openai/v1")
    result = cli("doctor")
    assert result.code == 1
    lines = _lines(result.out)
    assert lines["upstream groq"] == "FAIL" and lines["upstream openai"] == "ok"
    assert "1 check(s) failed" in result.out
    offline = cli("doctor", "--offline")
    assert offline.code == 0 and _lines(offline.out)["upstreams"] == "skip"


def test_a_key_that_does_not_decrypt_fails(
    cli: CliRunner, stocked: None, cli_env: Settings
) -> None:
    from okap_server.context import open_vault

    vault: Vault = open_vault(cli_env)
    try:
        with vault.session() as session:
            row = session.exec(select(ProviderKey).where(ProviderKey.provider == "openai")).one()
            row.ciphertext = bytes(len(row.ciphertext))
            session.add(row)
            session.commit()
    finally:
        vault.dispose()
    result = cli("doctor", "--offline")
    assert result.code == 1
    assert _lines(result.out)["stored keys"] == "FAIL"
    assert "1 of 2 do not decrypt" in result.out and "openai" in result.out


def test_wrong_master_key_fails(
    cli: CliRunner, stocked: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from okap_server.vault.crypto import generate_master_key
    from okap_server.vault.masterkey import encode_master_key

    monkeypatch.setenv("OKAP_MASTER_KEY", encode_master_key(generate_master_key()))
    result = cli("doctor", "--offline")
    assert result.code == 1 and _lines(result.out)["master key"] == "FAIL"
    assert "does not match" in result.out


def test_unmigrated_or_unreachable_database_fails(
    cli: CliRunner, cli_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = cli("doctor", "--offline")  # no vault was ever created here
    assert result.code == 1
    assert "no vault" in result.out and "OKAP_DATABASE_URL" in result.out
    monkeypatch.setenv(
        "OKAP_DATABASE_URL", f"postgresql+psycopg://postgres:hidden@127.0.0.1:{free_port()}/x"
    )
    down = cli("doctor", "--offline")
    assert down.code == 1 and _lines(down.out)["database"] == "FAIL"
    assert "hidden" not in down.out


def test_a_corrupt_row_is_one_line_everywhere(
    cli: CliRunner, stocked: None, cli_env: Settings, backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("PostgreSQL's typed columns cannot hold this kind of damage")
    import sqlite3

    db = sqlite3.connect(str(cli_env.home / "okap.db"))
    db.execute("UPDATE provider_key SET created_at = 'garbage' WHERE provider = 'openai'")
    db.commit()
    db.close()
    listing = cli("keys", "list")
    assert listing.code != 0 and listing.err.count("\n") == 1
    assert "Traceback" not in listing.err and "garbage" in listing.err
    doctor = cli("doctor", "--offline")
    assert doctor.code == 1 and _lines(doctor.out)["rows"] == "FAIL"
    assert "table provider_key" in doctor.out


def test_plain_http_public_url_is_a_warning(
    cli: CliRunner, stocked: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _lines(cli("doctor", "--offline").out)["public url"] == "ok"
    monkeypatch.setenv("OKAP_PUBLIC_URL", "http://vault.example.com")
    result = cli("doctor", "--offline")
    assert result.code == 0 and _lines(result.out)["public url"] == "warn"
    assert "TLS" in result.out
