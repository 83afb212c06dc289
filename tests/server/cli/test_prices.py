"""``okap-server prices``: the data's source, version and date; one model's price; a
refresh from the library's update URL, tested against a local file server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import genai_prices
import pytest

from okap_server.catalog import ProviderCatalog
from okap_server.prices import Prices
from okap_server.settings import Settings
from tests.server.cli.conftest import CliRunner
from tests.support.live import free_port

# The shape of genai-prices' published data (prices/new_data/v2/data.json): a provider list.
NEWER_DATA = [
    {
        "id": "groq",
        "name": "Groq",
        "api_pattern": "https://api\\.groq\\.com",
        "models": [
            {
                "id": "llama-3.3-70b-versatile",
                "match": {"equals": "llama-3.3-70b-versatile"},
                "prices": {"input_mtok": 0.5, "output_mtok": 0.75},
            },
            {
                "id": "llama-5-preview",
                "match": {"starts_with": "llama-5"},
                "prices": {"input_mtok": 2, "output_mtok": 4},
            },
        ],
    }
]


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[str]:
    """A local file server: the refresh never reaches the internet."""
    root = tmp_path / "served"
    root.mkdir()
    (root / "data.json").write_text(json.dumps(NEWER_DATA))
    (root / "broken.json").write_text('{"not": "a provider list"}')
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_summary_names_source_version_and_date(cli: CliRunner) -> None:
    assert "no vault database yet" in cli("prices").out  # before the vault is made
    assert cli("users", "add", "alice", stdin="a good long password").code == 0
    result = cli("prices")
    assert result.code == 0, result.err
    assert "source:   shipped" in result.out
    assert f"genai-prices {genai_prices.__version__}" in result.out
    assert "data:     newest price change 20" in result.out
    assert "every model they name has a price" in result.out


def test_show_names_the_price_and_where_it_is_listed(cli: CliRunner) -> None:
    shown = cli("prices", "show", "groq", "llama-3.3-70b-versatile")
    assert shown.code == 0
    assert "$0.59/input MTok" in shown.out and "listed as groq/llama-3.3-70b-versatile" in shown.out
    xai = cli("prices", "show", "xai", "grok-4")
    assert xai.code == 0 and "listed as x-ai/grok-4" in xai.out
    missing = cli("prices", "show", "groq", "llama-5-preview")
    assert missing.code == 1 and "refused under a spend limit" in missing.out
    unknown = cli("prices", "show", "nosuch", "x")
    assert unknown.code == 2 and "unknown provider 'nosuch'" in unknown.err


def test_refresh_from_the_update_url_then_reset(
    cli: CliRunner, cli_env: Settings, file_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OKAP_PRICES_UPDATE_URL", f"{file_server}/data.json")
    fetched = cli("prices", "refresh")
    assert fetched.code == 0, fetched.err
    assert "fetched prices of 1 providers" in fetched.out
    shown = cli("prices", "show", "groq", "llama-5-preview")
    assert shown.code == 0 and "$2/input MTok" in shown.out
    summary = cli("prices")
    assert "source:   refreshed" in summary.out and f"{file_server}/data.json" in summary.out
    # The proxy's prices, as a vault process loads them at start.
    prices = Prices.load(cli_env, ProviderCatalog.from_settings(cli_env).prices_providers())
    price = prices.price_for("groq", "llama-3.3-70b-versatile")
    assert price is not None and str(price.model_price.input_mtok) == "0.5"

    copy = cli_env.home / "prices" / "genai-prices.json"
    copy.write_text("{}")
    assert "does not read" in cli("prices").out  # and the shipped data applies
    reset = cli("prices", "reset")
    assert reset.code == 0 and "shipped" in reset.out
    assert cli("prices", "show", "groq", "llama-5-preview").code == 1


def test_a_failed_refresh_keeps_the_prices_it_has(cli: CliRunner, file_server: str) -> None:
    down = cli("prices", "refresh", "--url", f"http://127.0.0.1:{free_port()}/data.json")
    assert down.code == 2
    assert (
        "could not refresh prices" in down.err and "keeps the prices it has (shipped)" in down.err
    )
    broken = cli("prices", "refresh", "--url", f"{file_server}/broken.json")
    assert broken.code == 2 and "not genai-prices data" in broken.err
    missing = cli("prices", "refresh", "--url", f"{file_server}/nothing.json")
    assert missing.code == 2 and "404" in missing.err
    assert "source:   shipped" in cli("prices").out


def test_a_bad_prices_file_stops_serve_in_one_line(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "prices.json"
    bad.write_text(json.dumps({"prices": {"openai": {"gpt-5.2": {"output_mtok": "free"}}}}))
    monkeypatch.setenv("OKAP_PRICES_FILE", str(bad))
    result = cli("serve", "--port", str(free_port()))
    assert result.code == 2
    assert result.err.strip() == (
        f'okap-server: {bad}: openai/gpt-5.2: output_mtok: must be a number (USD), not "free"'
    )
