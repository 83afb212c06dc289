"""Delegated tokens (RFC 8693) on two real replicas of one PostgreSQL vault.

- Revoking a parent on replica A ends every descendant on replica B within the grant-cache
  window (at once with notices; within the cache TTL without them).
- 50 concurrent calls spread over 5 children and both replicas never overspend the parent.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.replicas.conftest import Team
from tests.replicas.processes import running_replicas
from tests.support.delegation import child_token, openai_entry
from tests.support.fake_upstream import FakeUpstream, FakeUsage
from tests.support.grants import entry, make_grant

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.xdist_group("team")]

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def _client(base: str, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1/openai", api_key=token, max_retries=0)


def _tree_revocation_latency(team: Team, revoke_on: str, refuse_on: str) -> float:
    """Seconds from the parent's revocation on one replica until every descendant is
    refused on the other, which had each of them cached (it served them just before)."""
    parent = make_grant(team.vault, entry("openai"))
    child = child_token(revoke_on, parent.token, [openai_entry()])
    tokens = [
        child,
        child_token(revoke_on, child, [openai_entry(models=["gpt-4o-mini"])]),
        child_token(refuse_on, parent.token, [openai_entry()]),
    ]
    clients = [_client(refuse_on, token) for token in tokens]
    for client in clients:
        assert client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    with httpx.Client(base_url=revoke_on) as app:
        assert app.post("/oauth/revoke", data={"token": parent.token}).status_code == 200
    revoked_at = time.monotonic()
    waiting = list(clients)
    while waiting:
        assert time.monotonic() - revoked_at < 5, "the other replica never saw it"
        for client in list(waiting):
            try:
                client.chat.completions.create(model="gpt-4o-mini", messages=HI)
            except openai.AuthenticationError as exc:
                assert exc.code == "token_revoked", exc
                waiting.remove(client)
    return time.monotonic() - revoked_at


def test_revoking_a_parent_on_a_ends_every_descendant_on_b(
    team: Team, fake_upstream: FakeUpstream
) -> None:
    latency = _tree_revocation_latency(team, team.a.url, team.b.url)
    print(f"\nparent revoked on A, its three descendants refused on B after {latency:.3f}s")
    assert latency < 1.0


def test_without_notices_the_cache_ttl_bounds_a_trees_revocation(
    team: Team, fake_upstream: FakeUpstream
) -> None:
    env = {**team.env, "OKAP_PROXY_GRANT_NOTIFY": "false"}
    with running_replicas(["deaf-tree"], env, team.workdir) as (deaf,):
        latency = _tree_revocation_latency(team, team.a.url, deaf.url)
    print(f"\nparent revoked on A, descendants refused on a deaf replica after {latency:.3f}s")
    assert latency < 1.0  # proxy_grant_cache_seconds is 0.5 s


def test_fifty_calls_over_five_children_on_two_replicas_never_overspend_the_parent(
    team: Team, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.usage["openai"] = FakeUsage(input=100, output=100)
    budget = 0.001  # about thirteen calls of 75 micro-USD
    parent = make_grant(team.vault, entry("openai", limits={"total_spend": budget}))
    children = [
        child_token(team.a.url, parent.token, [openai_entry(limits={"total_spend": budget})])
        for _ in range(5)
    ]

    async def one(base: str, token: str) -> str:
        async with openai.AsyncOpenAI(
            base_url=f"{base}/v1/openai", api_key=token, max_retries=0
        ) as client:
            try:
                await client.chat.completions.create(
                    model="gpt-4o-mini", messages=HI, max_tokens=100
                )
                return "ok"
            except openai.RateLimitError as exc:
                assert exc.code in ("budget_exceeded", "budget_held"), exc
                return "refused"

    async def run() -> list[str]:
        bases = [team.a.url, team.b.url]
        return await asyncio.gather(*(one(bases[n % 2], children[n % 5]) for n in range(50)))

    results = asyncio.run(run())
    admitted = results.count("ok")
    assert admitted >= 1 and results.count("refused") >= 1
    deadline = time.monotonic() + 10
    while True:
        usage = httpx.get(
            f"{team.b.url}/okap/usage", headers={"authorization": f"Bearer {parent.token}"}
        ).json()["usage"]["openai"]["spend"]["total"]
        if usage["used"] == pytest.approx(admitted * 75 / 1e6) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert usage["used"] == pytest.approx(admitted * 75 / 1e6)
    assert usage["used"] <= budget
    print(f"\n{admitted}/50 admitted over 5 children on 2 replicas, ${usage['used']} of ${budget}")
