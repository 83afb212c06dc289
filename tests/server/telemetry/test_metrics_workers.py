"""``okap-server serve --workers 2``: every worker's counts on one scrape, whichever worker
answers it (prometheus-client's multiprocess mode, ``telemetry/multiprocess.py``)."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from okap_server.context import Vault
from okap_server.settings import Settings
from tests.server.api.conftest import mint
from tests.server.telemetry.conftest import scrape, scrape_until, value
from tests.support.fake_upstream import FakeUpstream
from tests.support.grants import entry, make_grant
from tests.support.process import server_env, vault_process

pytestmark = pytest.mark.slow

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
CALLS = 24


def test_two_workers_report_every_request(
    settings: Settings, vault: Vault, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    grant = make_grant(vault, entry("openai"))
    token = mint(vault, "ops", ["metrics:read"], admin=True)
    stale = settings.home / "metrics" / "counter_1.db"  # a file of an earlier run
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left over")
    url = f"http://127.0.0.1:{settings.port}"
    log = tmp_path / "serve.log"
    env = {**server_env(settings, fake_upstream), "OKAP_LOG_LEVEL": "INFO"}
    with vault_process(env, settings.port, log, "--workers", "2"):
        assert not stale.exists()  # emptied at start
        for _ in range(CALLS):
            # A client (a connection) per call, so the kernel spreads them over the workers.
            with openai.OpenAI(base_url=f"{url}/v1/openai", api_key=grant.token) as client:
                client.chat.completions.create(**CHAT)
        ok = {"provider": "openai", "status": "200", "capability": "chat"}
        _, samples = scrape_until(
            url, token, lambda s: value(s, "okap_proxy_requests_total", **ok) >= CALLS
        )
        assert value(samples, "okap_proxy_requests_total", **ok) == CALLS
        assert value(samples, "okap_proxy_added_seconds_count") == CALLS
        assert value(samples, "okap_grants_active") == 1
        # Each scrape (on a fresh connection: either worker) sees all of them.
        for _ in range(6):
            assert value(scrape(url, token)[1], "okap_proxy_requests_total", **ok) == CALLS
        files = list((settings.home / "metrics").glob("*.db"))
    text = log.read_text()
    assert text.count("Started server process") >= 2, text
    pids = {f.stem.rsplit("_", 1)[1] for f in files}
    assert len(pids) >= 2, files  # both workers wrote their own values
