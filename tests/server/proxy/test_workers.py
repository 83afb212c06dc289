"""``okap-server serve --workers N``: several processes on one port, limits shared by all."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import pytest

from okap_server.context import Vault
from okap_server.settings import Settings
from tests.support.fake_upstream import FakeUpstream
from tests.support.grants import entry, make_grant
from tests.support.process import server_env, vault_process

pytestmark = pytest.mark.slow

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def test_two_workers_share_one_rate_limit(
    settings: Settings, vault: Vault, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    grant = make_grant(vault, entry("openai", limits={"requests_per_minute": 25}))
    url = f"http://127.0.0.1:{settings.port}/v1/openai/chat/completions"
    headers = {"authorization": f"Bearer {grant.token}"}

    async def burst() -> list[httpx.Response]:
        # A fresh connection per request, so the kernel spreads them over the workers.
        async def one() -> httpx.Response:
            async with httpx.AsyncClient(timeout=30) as client:
                return await client.post(url, json=BODY, headers=headers)

        return await asyncio.gather(*(one() for _ in range(80)))

    log = tmp_path / "serve.log"
    env = {**server_env(settings, fake_upstream), "OKAP_LOG_LEVEL": "INFO"}
    with vault_process(env, settings.port, log, "--workers", "2"):
        answers = asyncio.run(burst())
    text = log.read_text()
    assert text.count("Started server process") >= 2, text  # two workers served
    codes = Counter(r.status_code for r in answers)
    assert codes == {200: 25, 429: 55}, codes  # 25 in all, not 25 per worker
