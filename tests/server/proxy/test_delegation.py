"""Delegated tokens (RFC 8693) through the proxy, with the real ``openai`` SDK over real
HTTP, on SQLite and PostgreSQL: a child works within its parent's scope and no further,
its spend is its parent's too, the parent's budget holds over all its children together,
and revoking a parent ends its whole subtree while revoking a child leaves the parent."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import openai
import pytest
from sqlmodel import col, select

from okap_server.audit.models import SecurityEvent
from okap_server.context import Vault
from okap_server.grants.models import Grant
from okap_server.manage import grants as manage_grants
from tests.server.proxy.records import spend, wait_for_logs, wait_until_settled
from tests.support.delegation import child_token, openai_entry
from tests.support.fake_upstream import FakeUpstream, FakeUsage
from tests.support.grants import entry, make_grant, revoke

HI = [{"role": "user", "content": "hi"}]
COST = 75  # micro-USD: 100 input and 100 output tokens of gpt-4o-mini


def _client(live_url: str, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=token, max_retries=0)


def _chat(live_url: str, token: str, model: str = "gpt-4o-mini") -> str:
    answer = _client(live_url, token).chat.completions.create(
        model=model, messages=HI, max_tokens=100
    )
    return str(answer.choices[0].message.content)


def _usage(live_url: str, token: str) -> dict[str, object]:
    answer = httpx.get(f"{live_url}/okap/usage", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_a_narrower_child_works_and_is_refused_the_parents_other_model(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    parent = make_grant(vault, entry("openai", models=["gpt-4o-mini", "gpt-4o"]))
    child = child_token(live_url, parent.token, [openai_entry(models=["gpt-4o-mini"])])
    assert _chat(live_url, child)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        _chat(live_url, child, model="gpt-4o")
    assert "gpt-4o" in str(refused.value)
    assert _chat(live_url, parent.token, model="gpt-4o")  # the parent keeps its scope
    assert len(fake_upstream.requests_for("openai")) == 2


def test_a_childs_spend_shows_in_its_parents_usage(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.usage["openai"] = FakeUsage(input=100, output=100)
    parent = make_grant(vault, entry("openai", limits={"daily_spend": 1.0}))
    child = child_token(live_url, parent.token, [openai_entry(limits={"daily_spend": 0.5})])
    _chat(live_url, child)
    _chat(live_url, child)
    wait_for_logs(vault, 2)
    wait_until_settled(vault)
    mine = _usage(live_url, parent.token)
    day = mine["usage"]["openai"]["spend"]["day"]  # type: ignore[index]
    assert day["used"] == pytest.approx(2 * COST / 1e6)
    assert day["remaining"] == pytest.approx(1.0 - 2 * COST / 1e6)
    (delegated,) = mine["delegation"]["delegated"]  # type: ignore[index]
    assert delegated["spend_total"] == pytest.approx(2 * COST / 1e6)
    assert delegated["active"] is True
    theirs = _usage(live_url, child)
    assert theirs["delegation"]["parent_grant_id"] == parent.grant_id  # type: ignore[index]
    assert theirs["usage"]["openai"]["spend"]["day"]["used"] == pytest.approx(2 * COST / 1e6)  # type: ignore[index]


def test_fifty_concurrent_calls_over_five_children_never_overspend_the_parent(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.usage["openai"] = FakeUsage(input=100, output=100)
    budget = 0.001  # about thirteen calls; each child alone may spend it all
    parent = make_grant(vault, entry("openai", limits={"daily_spend": budget}))
    children = [
        child_token(live_url, parent.token, [openai_entry(limits={"daily_spend": budget})])
        for _ in range(5)
    ]

    async def one(client: openai.AsyncOpenAI) -> str:
        try:
            await client.chat.completions.create(model="gpt-4o-mini", messages=HI, max_tokens=100)
            return "ok"
        except openai.RateLimitError as exc:
            assert exc.code in ("budget_exceeded", "budget_held")
            return "refused"

    async def run() -> list[str]:
        clients = [
            openai.AsyncOpenAI(base_url=f"{live_url}/v1/openai", api_key=t, max_retries=0)
            for t in children
        ]
        try:
            return await asyncio.gather(*(one(clients[n % 5]) for n in range(50)))
        finally:
            for client in clients:
                await client.close()

    results = asyncio.run(run())
    wait_for_logs(vault, 50)
    wait_until_settled(vault)
    admitted = results.count("ok")
    assert admitted >= 1 and results.count("refused") >= 1
    row = spend(vault, parent.grant_id, "total")
    assert row is not None and row.reserved_micros == 0
    assert row.spent_micros == admitted * COST <= budget * 1_000_000
    assert len(fake_upstream.requests_for("openai")) == admitted


def test_a_parents_rate_limit_counts_its_childrens_requests(vault: Vault, live_url: str) -> None:
    parent = make_grant(vault, entry("openai", limits={"requests_per_minute": 3}))
    children = [child_token(live_url, parent.token, [openai_entry()]) for _ in range(2)]
    if time.time() % 60 > 45:  # one fixed minute window for all five calls
        time.sleep(60 - time.time() % 60 + 0.1)
    _chat(live_url, children[0])
    _chat(live_url, children[1])
    _chat(live_url, children[0])
    with pytest.raises(openai.RateLimitError) as refused:
        _chat(live_url, children[1])
    assert "delegated from" in str(refused.value)
    with pytest.raises(openai.RateLimitError):
        _chat(live_url, parent.token)


def test_revoking_the_parent_ends_every_descendant_and_a_child_leaves_the_parent(
    vault: Vault, live_url: str
) -> None:
    parent = make_grant(vault, entry("openai"))
    child = child_token(live_url, parent.token, [openai_entry()])
    grandchild = child_token(live_url, child, [openai_entry(models=["gpt-4o-mini"])])
    sibling = child_token(live_url, parent.token, [openai_entry()])
    for token in (parent.token, child, grandchild, sibling):
        assert _chat(live_url, token)  # every view is cached now (TTL 60 s in these tests)
    revoked = httpx.post(f"{live_url}/oauth/revoke", data={"token": sibling})
    assert revoked.status_code == 200
    with pytest.raises(openai.AuthenticationError):
        _chat(live_url, sibling)
    assert _chat(live_url, parent.token) and _chat(live_url, child)
    assert manage_grants.revoke(vault, parent.account_id, parent.grant_id, None) is not None
    for token in (parent.token, child, grandchild):
        with pytest.raises(openai.AuthenticationError):
            _chat(live_url, token)
    gone = httpx.get(f"{live_url}/okap/usage", headers={"Authorization": f"Bearer {grandchild}"})
    assert gone.status_code == 401
    with vault.session() as session:  # the cascade is recorded, each revocation audited
        tree = session.exec(select(Grant).where(col(Grant.account_id) == parent.account_id))
        assert all(g.revoked_at is not None for g in tree)
        causes = session.exec(
            select(SecurityEvent).where(col(SecurityEvent.kind) == "grant_revoked")
        ).all()
        assert sorted(str(e.detail.get("by")) for e in causes) == [
            "app",
            "cascade",
            "cascade",
            "person",
        ]


def test_an_ancestor_revoked_behind_the_vaults_back_still_ends_its_children(
    vault: Vault, live_url: str
) -> None:
    """The chain is checked when a child's view is loaded, not only by the cascade: a
    parent marked revoked directly (another replica, a restore) ends its children too."""
    parent = make_grant(vault, entry("openai"))
    child = child_token(live_url, parent.token, [openai_entry()])
    assert _chat(live_url, child)
    revoke(vault, parent.grant_id)  # only the parent's row; its id is notified
    with pytest.raises(openai.AuthenticationError):
        _chat(live_url, child)


def test_narrowing_a_parent_narrows_its_children_at_once(vault: Vault, live_url: str) -> None:
    parent = make_grant(vault, entry("openai", models=["gpt-4o-mini", "gpt-4o"]))
    child = child_token(live_url, parent.token, [openai_entry()])  # inherits both models
    assert _chat(live_url, child, model="gpt-4o")
    with vault.session() as session:  # as the dashboard's "Edit limits" narrows a grant
        grant = session.get(Grant, parent.grant_id)
        assert grant is not None
        grant.details = [{**grant.details[0], "models": ["gpt-4o-mini"]}]
        grant.version += 1
        session.add(grant)
        session.commit()
    vault.grant_changed(parent.grant_id)
    with pytest.raises(openai.PermissionDeniedError):
        _chat(live_url, child, model="gpt-4o")
    assert _chat(live_url, child, model="gpt-4o-mini")


def _narrow_parent(vault: Vault, grant_id: str, **fields: object) -> None:
    with vault.session() as session:  # as "Edit limits" or the API's PATCH narrows a grant
        grant = session.get(Grant, grant_id)
        assert grant is not None
        grant.details = [{**grant.details[0], **fields}]
        grant.version += 1
        session.add(grant)
        session.commit()
    vault.grant_changed(grant_id)


def test_a_parents_later_per_request_cap_and_expiry_bind_its_children(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    """SPEC "Budgets nest": a child is checked against every ancestor's *current* limits,
    the per-request cap included, and an entry ends no later than its ancestors' entry."""
    parent = make_grant(vault, entry("openai", limits={"tokens_per_request": 1000}))
    child = child_token(live_url, parent.token, [openai_entry()])
    _narrow_parent(
        vault,
        parent.grant_id,
        limits={**dict(_limits(vault, parent.grant_id)), "tokens_per_request": 10},
    )
    _client(live_url, child).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=500
    )
    sent = fake_upstream.requests_for("openai")[-1]
    assert sent.json["max_tokens"] == 10  # the parent's cap, not the child's 1000

    soon = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    _narrow_parent(vault, parent.grant_id, expires=soon)
    with pytest.raises(openai.AuthenticationError):
        _chat(live_url, child)


def _limits(vault: Vault, grant_id: str) -> dict[str, object]:
    with vault.session() as session:
        grant = session.get(Grant, grant_id)
        assert grant is not None
        return dict(grant.details[0].get("limits") or {})
