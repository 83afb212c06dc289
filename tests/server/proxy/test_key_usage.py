"""A provider key's ``last_used_at`` is written with the settlement batch, on both back ends,
and a batch settled late never moves it backwards."""

from __future__ import annotations

import time
from datetime import timedelta

import openai
from sqlmodel import select

from okap_server.context import Vault
from okap_server.proxy.key_usage import touch_keys
from okap_server.proxy.outcome import Outcome
from okap_server.vault.models import ProviderKey
from tests.support.grants import entry, make_grant


def _last_used(vault: Vault, key_id: str) -> object:
    with vault.session() as session:
        key = session.get(ProviderKey, key_id)
        assert key is not None
        return key.last_used_at


def test_a_proxied_request_marks_its_key_used(vault: Vault, live_url: str) -> None:
    issued = make_grant(vault, entry("openai"), entry("anthropic"))
    with vault.session() as session:
        keys = {k.provider: k.id for k in session.exec(select(ProviderKey)).all()}
    app = openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=issued.token, max_retries=0)
    app.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    for _ in range(100):
        if _last_used(vault, keys["openai"]) is not None:
            break
        time.sleep(0.05)
    used = _last_used(vault, keys["openai"])
    assert used is not None
    assert _last_used(vault, keys["anthropic"]) is None  # only the key that served it

    # A batch settled late (a replayed journal) leaves the newer time alone.
    late = Outcome(
        account_id=issued.account_id,
        grant_id=issued.grant_id,
        client_name="Test App",
        provider="openai",
        endpoint="chat/completions",
        status=200,
        admitted=True,
    )
    late.created_at = late.created_at - timedelta(days=1)
    with vault.engine.begin() as conn:
        touch_keys(conn, [late])
    assert _last_used(vault, keys["openai"]) == used
