"""``OKAP_LOG_FORMAT=json``: one JSON object per line from a real ``okap-server serve``,
with the same redaction as the text lines (``proxy/redaction.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from okap_server.context import Vault
from okap_server.settings import Settings
from tests.support.fake_upstream import FakeUpstream
from tests.support.grants import entry, make_grant
from tests.support.live import secret_in_url
from tests.support.process import server_env, vault_process

pytestmark = pytest.mark.slow

# What the serve command prints on its console before the server starts (not log lines).
CONSOLE = ("vault: ", "okap vault listening on ")


def test_json_lines_with_secrets_redacted(
    settings: Settings, vault: Vault, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    grant = make_grant(vault, entry("google", capabilities=["chat"]))
    url = f"http://127.0.0.1:{settings.port}"
    log = tmp_path / "serve.log"
    env = {
        **server_env(settings, fake_upstream),
        "OKAP_UPSTREAM_GOOGLE": fake_upstream.upstreams()["google"],
        "OKAP_LOG_FORMAT": "json",
        "OKAP_LOG_LEVEL": "INFO",
        "OKAP_PROXY_ACCESS_LOG": "true",
    }
    with vault_process(env, settings.port, log):
        # A Gemini client's credential in the query, and an OKAP poll URL (a secret too).
        with secret_in_url():
            listed = httpx.get(f"{url}/v1/google/v1beta/models", params={"key": grant.token})
        assert listed.status_code == 200
        body = {
            "okap": "1.0",
            "authorization_details": [{"type": "ai_model_access", "provider": "openai"}],
            "client": {"name": "Notes"},
        }
        pending = httpx.post(f"{url}/okap/authorize", json=body, headers={"Prefer": "wait=0"})
        poll_url = pending.json()["poll_url"]
        assert httpx.get(poll_url).status_code == 200
    text = log.read_text()
    records: list[dict[str, Any]] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith(CONSOLE):
            continue
        record = json.loads(line)  # every log line is one JSON object
        assert isinstance(record, dict), line
        records.append(record)
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    assert any(r["message"].startswith("Started server process") for r in records)
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    proxy = [r for r in access if r["path"].startswith("/v1/google/")]
    assert proxy and proxy[0]["status"] == 200 and proxy[0]["method"] == "GET"
    assert "key=[redacted]" in proxy[0]["path"] and "key=[redacted]" in proxy[0]["message"]
    polls = [r for r in access if r["path"].startswith("/okap/authorize/")]
    assert polls and all(r["path"] == "/okap/authorize/[redacted]" for r in polls)
    assert grant.token not in text
    assert poll_url.rsplit("/", 1)[1] not in text
