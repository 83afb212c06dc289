"""``okap-server doctor``: one pass/fail line per check, non-zero when one fails."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlmodel import select

from okap_server.catalog import BUILTIN_PROVIDERS
from okap_server.context import Vault
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
    # Only the providers it holds keys for are probed; the others are not used.
    assert lines["upstream openai"] == lines["upstream anthropic"] == "ok"
    unused = [row.id for row in BUILTIN_PROVIDERS if row.id not in ("openai", "anthropic")]
    assert all(lines[f"upstream {name}"] == "skip" for name in unused)
    assert lines["prices"] == "ok" and "genai-prices" in result.out
    assert "all 2 decrypt" in result.out and "sk-proj-doctor" not in result.out
    assert result.out.strip().endswith("all checks passed")


def test_unreachable_upstream_fails_and_offline_skips(
    cli: CliRunner, stocked: None, upstream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for row in BUILTIN_PROVIDERS:
        monkeypatch.setenv(f"OKAP_UPSTREAM_{row.id.upper()}", upstream)
    monkeypatch.setenv("OKAP_UPSTREAM_ANTHROPIC", f"http://127.0.0.1:{free_port()}")
    result = cli("doctor")
    assert result.code == 1
    lines = _lines(result.out)
    assert lines["upstream anthropic"] == "FAIL" and lines["upstream openai"] == "ok"
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


def test_one_key_and_no_network_passes(
    cli: CliRunner, upstream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16: a vault with only an OpenAI key does not fail on providers it never uses.
    Only its one upstream (here on loopback) is reachable; every other provider keeps its
    internet address, and none of them is probed."""
    assert cli("users", "add", "alice", stdin=PASSWORD).code == 0
    assert cli("keys", "add", "openai", stdin="sk-proj-doctor00000000000000001").code == 0
    monkeypatch.setenv("OKAP_UPSTREAM_OPENAI", upstream)
    result = cli("doctor")
    assert result.code == 0, result.out
    lines = _lines(result.out)
    assert lines["upstream openai"] == "ok"
    for row in BUILTIN_PROVIDERS:
        if row.id != "openai":
            assert lines[f"upstream {row.id}"] == "skip"
            assert f"upstream {row.id}: not used (no stored key)" in result.out
    assert result.out.strip().endswith("all checks passed")


def test_unpriced_models_of_live_grants_are_flagged(
    cli: CliRunner, stocked: None, cli_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from okap_server.context import open_vault
    from tests.support.grants import entry, make_grant

    opened = open_vault(cli_env)
    try:
        make_grant(
            opened,
            entry("groq", models=["my-private-llama"], limits={"daily_spend": 1.0}),
            username="alice",
            client_name="Private App",
        )
    finally:
        opened.dispose()
    result = cli("doctor", "--offline")
    assert result.code == 0, result.out  # reported, not a failure
    assert _lines(result.out)["unpriced model"] == "warn"
    assert "Private App" in result.out and "groq my-private-llama" in result.out
    assert "refused under its spend limit" in result.out
    listing = cli("prices")
    assert listing.code == 1
    assert "1 model(s) without a price" in listing.out and "my-private-llama" in listing.out
