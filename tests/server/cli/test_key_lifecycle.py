"""``okap-server keys rotate`` and ``keys remove --move-to`` against a running vault: the
secret comes from stdin, never argv; the grant using the key keeps working with no new
consent, and its next call upstream carries the new secret (at once on PostgreSQL, where
the command tells the running replicas; within the grant cache's TTL on SQLite)."""

from __future__ import annotations

import time

import openai
import pytest

from okap_server.context import Vault
from okap_server.settings import Settings
from tests.server.cli.conftest import CliRunner
from tests.support.fake_upstream import FakeUpstream
from tests.support.grants import FAKE_KEYS, entry, make_grant

NEW_SECRET = "sk-proj-CLIROTATEDkey0123456789abcdefghiXYZ"
SPARE = "sk-proj-CLISPAREkey0123456789abcdefghijkXYZ"


@pytest.fixture
def settings(settings: Settings, backend: str, fake_upstream: FakeUpstream) -> Settings:
    """On PostgreSQL a 60 s grant cache, so the new secret must come from the notice."""
    cache = 60.0 if backend == "postgres" else settings.proxy_grant_cache_seconds
    return settings.model_copy(
        update={"upstreams": fake_upstream.upstreams(), "proxy_grant_cache_seconds": cache}
    )


def chat(live_url: str, token: str) -> str | None:
    client = openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=token, max_retries=0)
    answer = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    return answer.choices[0].message.content


def sent_key(fake_upstream: FakeUpstream) -> str:
    return fake_upstream.requests_for("openai")[-1].headers["authorization"].removeprefix("Bearer ")


def key_id(vault: Vault, account_id: str, label: str) -> str:
    with vault.session() as session:
        return next(k.id for k in vault.keys.list(session, account_id) if k.label == label)


def test_rotate_replaces_the_secret_under_a_running_grant(
    backend: str,
    vault: Vault,
    live_url: str,
    cli: CliRunner,
    fake_upstream: FakeUpstream,
) -> None:
    issued = make_grant(vault, entry("openai"))
    assert chat(live_url, issued.token) and sent_key(fake_upstream) == FAKE_KEYS["openai"]
    the_key = key_id(vault, issued.account_id, "test key")

    argv = cli("keys", "rotate", the_key, NEW_SECRET)
    assert argv.code != 0 and NEW_SECRET not in argv.out + argv.err  # never from argv
    rotated = cli("keys", "rotate", the_key[:8], "--secret-stdin", stdin=NEW_SECRET + "\n")
    assert rotated.code == 0, rotated.err
    assert "now sk-...iXYZ" in rotated.out and NEW_SECRET not in rotated.out + rotated.err

    if backend == "sqlite":
        time.sleep(vault.settings.proxy_grant_cache_seconds + 0.1)
    assert chat(live_url, issued.token) == "Hello from the fake upstream."
    assert sent_key(fake_upstream) == NEW_SECRET

    misfiled = cli("keys", "rotate", the_key, stdin="sk-ant-api03-0123456789abcdefXYZ\n")
    assert (
        misfiled.code != 0 and "--anyway" in misfiled.err and "Nothing was changed" in misfiled.err
    )


def test_remove_refuses_to_break_grants_unless_told_and_moves_them(
    backend: str,
    vault: Vault,
    live_url: str,
    cli: CliRunner,
    fake_upstream: FakeUpstream,
) -> None:
    issued = make_grant(vault, entry("openai"))
    the_key = key_id(vault, issued.account_id, "test key")
    refused = cli("keys", "remove", the_key)
    assert refused.code != 0 and "--move-to" in refused.err and "Nothing was changed" in refused.err
    with vault.session() as session:
        vault.keys.add(
            session, account_id=issued.account_id, provider="openai", label="spare", secret=SPARE
        )
        session.commit()
    spare = key_id(vault, issued.account_id, "spare")
    moved = cli("keys", "remove", the_key, "--move-to", spare)
    assert moved.code == 0, moved.err
    assert f"its grants now use {spare}" in moved.out
    if backend == "sqlite":
        time.sleep(vault.settings.proxy_grant_cache_seconds + 0.1)
    assert chat(live_url, issued.token) == "Hello from the fake upstream."
    assert sent_key(fake_upstream) == SPARE
    broken = cli("keys", "remove", spare, "--break-grants")
    assert broken.code == 0 and "removed openai key 'spare'" in broken.out
