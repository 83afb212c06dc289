"""``OkapToken.delegate`` in both SDK twins and ``okap delegate``, against a live vault over
real HTTP: a narrower child, bound to the client it came from, refused when wider; and an
``AsyncOkapClient`` token's sync calls going through that client's own transport."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

import anyio
import httpx
import openai
import pytest

from okap_client import (
    AsyncOkapClient,
    DelegationRefused,
    InvalidRequest,
    OkapClient,
    OkapToken,
    TokenNotBound,
    TokenRevoked,
)
from okap_server.context import Vault
from tests.client.conftest import OKAP
from tests.support.grants import entry, make_grant

HI = [{"role": "user", "content": "hi"}]


def _parent(vault: Vault, live_url: str) -> OkapToken:
    issued = make_grant(
        vault, entry("openai", models=["gpt-4o-mini", "gpt-4o"], limits={"daily_spend": 2.0})
    )
    details = [{"provider": "openai", "models": ["gpt-4o-mini", "gpt-4o"]}]
    return OkapToken(key=issued.token, vault_url=live_url, authorization_details=details)


def test_delegate_gives_a_narrower_bound_child(vault, live_url, cache):
    parent = _parent(vault, live_url)
    with pytest.raises(TokenNotBound):
        parent.usage()  # built by hand: no client to talk through
    with OkapClient(live_url, cache=cache) as okap:
        child = okap.delegate(
            parent, models=["gpt-4o-mini"], limits={"daily_spend": 0.5}, expires_in=3600
        )
        assert child.key.startswith("okap_") and child.key != parent.key
        assert child.models == ["gpt-4o-mini"] and child.limits["daily_spend"] == 0.5
        left = child.expires_at - datetime.now(UTC)
        assert 3500 < left.total_seconds() <= 3600
        ai = openai.OpenAI(base_url=child.base_url, api_key=child.key, max_retries=0)
        assert ai.chat.completions.create(model="gpt-4o-mini", messages=HI)
        with pytest.raises(openai.PermissionDeniedError):
            ai.chat.completions.create(model="gpt-4o", messages=HI)
        assert child.usage().active  # bound to this client
        grandchild = child.delegate(limits={"daily_spend": 0.1}, client_name="Job 7")
        assert grandchild.limits["daily_spend"] == 0.1
        with pytest.raises(InvalidRequest) as wider:
            child.delegate(models=["gpt-4o"])
        assert wider.value.error == "invalid_authorization_details"
        assert "models[0]" in wider.value.description
        child.revoke()
        with pytest.raises(TokenRevoked):
            grandchild.usage()  # revoked with its parent
        with pytest.raises(DelegationRefused):
            okap.delegate(child)


class CountingTransport(httpx.AsyncHTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await super().handle_async_request(request)


def test_async_tokens_are_bound_and_use_the_callers_transport(vault, live_url, cache):
    parent = _parent(vault, live_url)
    transport = CountingTransport()

    async def main() -> OkapToken:
        async with AsyncOkapClient(live_url, cache=cache, transport=transport) as okap:
            child = await okap.delegate(parent, models=["gpt-4o-mini"])
            assert (await child.ausage()).active
            before = len(transport.paths)
            assert (await anyio.to_thread.run_sync(child.usage)).active  # sync, same client
            assert transport.paths[before:] == ["/okap/usage"]
            with pytest.raises(RuntimeError, match="ausage"):
                child.usage()  # would block the event loop
            grandchild = await child.adelegate(limits={"daily_spend": 0.2})
            assert grandchild.limits["daily_spend"] == 0.2
            return grandchild

    grandchild = anyio.run(main)
    before = len(transport.paths)
    assert grandchild.usage().active  # after the loop: a loop of its own, same transport
    assert transport.paths[before:] == ["/okap/usage"]


def test_okap_delegate_reads_the_parent_from_stdin_and_prints_a_child(vault, live_url, tmp_path):
    parent = _parent(vault, live_url)
    env = {"XDG_CONFIG_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    args = ["delegate", "--vault", live_url, "--provider", "openai", "-m", "gpt-4o-mini"]
    done = subprocess.run(
        [OKAP, *args, "--daily-limit", "1", "--expires", "2h", "--shell", "token"],
        input=parent.key + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    child = done.stdout.strip()
    assert child.startswith("okap_") and parent.key not in done.stdout + done.stderr
    ai = openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=child, max_retries=0)
    assert ai.chat.completions.create(model="gpt-4o-mini", messages=HI)
    exported = subprocess.run(
        [OKAP, *args, "--daily-limit", "5"],
        input=parent.key + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert exported.returncode == 1
    assert "limits.daily_spend" in exported.stderr and "okap_" not in exported.stderr
