"""Issue 8's done-when: two real ``okap-server serve`` processes on one PostgreSQL.

- 200 concurrent requests, split across both replicas, against a grant with 50 requests
  per minute: at most 50 are admitted (exactly 50 when the spend limit leaves room), and
  with a small spend limit the recorded spend stays at or under it.
- A revocation on replica A is refused on replica B within 1 second (measured).
- A consent begun on A and approved through B gives a working token.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from sqlmodel import select

from okap_server.authorization.models import AuthorizationRequest
from okap_server.grants.counters import SpendCounter
from okap_server.proxy.models import RequestLog
from tests.replicas.conftest import Team
from tests.replicas.processes import running_replicas
from tests.support.fake_upstream import FakeUpstream, FakeUsage
from tests.support.grants import ensure_account, ensure_key, entry, make_grant
from tests.support.person import Person

# One team of replicas per test session: with ``--dist loadgroup`` these tests share one
# xdist worker, and so one pair of replicas (with plain ``-n`` each worker starts its own).
pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.xdist_group("team")]

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
OUTPUT_TOKENS = 1000  # per answer; max_tokens asks for exactly this much, so holds are tight
PASSWORD = "correct horse battery staple"  # tests/support/grants.py's accounts


def openai_client(base: str, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1/openai", api_key=token, max_retries=0)


def wait_out_minute_boundary(needed: float = 10.0) -> None:
    """Rate windows are fixed minutes (UTC): start a burst well inside one."""
    left = 60 - time.time() % 60
    if left < needed:
        time.sleep(left + 0.05)


async def burst(urls: list[str], token: str, n: int) -> list[httpx.Response]:
    """``n`` chat calls at once, alternating between the replicas."""
    body = {"model": "gpt-4o-mini", "messages": HI, "max_tokens": OUTPUT_TOKENS}
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one(i: int) -> httpx.Response:
            return await client.post(
                f"{urls[i % len(urls)]}/v1/openai/chat/completions",
                json=body,
                headers={"authorization": f"Bearer {token}"},
            )

        return await asyncio.gather(*(one(i) for i in range(n)))


def settled_logs(team: Team, grant_id: str, count: int, timeout: float = 10.0) -> list[Any]:
    """The grant's audit rows once ``count`` have been written by the replicas."""
    deadline = time.monotonic() + timeout
    while True:
        with team.vault.session() as session:
            logs = session.exec(select(RequestLog).where(RequestLog.grant_id == grant_id)).all()
        if len(logs) >= count or time.monotonic() > deadline:
            return list(logs)
        time.sleep(0.05)


def wait_for_request(team: Team, client_name: str, timeout: float = 10.0) -> str:
    """The id of the pending request an app named ``client_name`` made."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with team.vault.session() as session:
            found = session.exec(
                select(AuthorizationRequest).where(
                    AuthorizationRequest.client_name == client_name,
                    AuthorizationRequest.status == "pending",
                )
            ).first()
        if found is not None:
            return found.id
        time.sleep(0.05)
    raise AssertionError(f"no request from {client_name} arrived")


def spend_total(team: Team, grant_id: str) -> SpendCounter:
    with team.vault.session() as session:
        row = session.get(SpendCounter, (grant_id, "openai", "total"))
    assert row is not None
    return row


def test_200_concurrent_requests_across_replicas_admit_at_most_50_and_never_overspend(
    team: Team, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.usage["openai"] = FakeUsage(input=10, output=OUTPUT_TOKENS)
    roomy = make_grant(
        team.vault, entry("openai", limits={"requests_per_minute": 50, "total_spend": 1.0})
    )
    small_limit = 0.01  # $0.01: about 16 answers' worth; 50 answers would cost ~$0.03
    tight = make_grant(
        team.vault,
        entry("openai", limits={"requests_per_minute": 50, "total_spend": small_limit}),
        client_name="Tight App",
    )
    urls = [team.a.url, team.b.url]
    wait_out_minute_boundary()

    async def both() -> tuple[list[httpx.Response], list[httpx.Response]]:
        first, second = await asyncio.gather(
            burst(urls, roomy.token, 200), burst(urls, tight.token, 200)
        )
        return first, second

    roomy_answers, tight_answers = asyncio.run(both())

    # The rate limit is global: exactly 50 of 200 admitted, not 50 per replica.
    roomy_codes = Counter((r.status_code, r.headers.get("x-okap-error")) for r in roomy_answers)
    assert roomy_codes == {(200, None): 50, (429, "rate_limit_exceeded"): 150}, roomy_codes
    # Both replicas answered (admitting or refusing): the 50 were shared between them, not
    # 50 each. Which replica admitted how many is up to whose admission group commits first.
    answered_by = Counter(r.url.port for r in roomy_answers)
    assert len(answered_by) == 2, answered_by
    refused = next(r for r in roomy_answers if r.status_code == 429)
    assert refused.headers["x-ratelimit-limit"] == "50"
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert int(refused.headers["retry-after"]) >= 1

    # The spend limit is global: whatever was admitted, spend stays at or under it.
    tight_codes = Counter((r.status_code, r.headers.get("x-okap-error")) for r in tight_answers)
    admitted = tight_codes[(200, None)]
    assert 0 < admitted <= 50, tight_codes
    # The limit did bite: spent (final), or held by the requests in flight (retryable).
    budget_refusals = tight_codes[(429, "budget_exceeded")] + tight_codes[(429, "budget_held")]
    assert budget_refusals > 0, tight_codes
    assert set(tight_codes) <= {
        (200, None),
        (429, "budget_exceeded"),
        (429, "budget_held"),
        (429, "rate_limit_exceeded"),
    }

    logs = settled_logs(team, roomy.grant_id, 200)
    assert len(logs) == 200 and sum(log.status == 200 for log in logs) == 50
    logs = settled_logs(team, tight.grant_id, 200)
    assert sum(log.status == 200 for log in logs) == admitted
    recorded = sum(log.cost_micros for log in logs)
    counter = spend_total(team, tight.grant_id)
    assert recorded == counter.spent_micros
    assert 0 < counter.spent_micros <= small_limit * 1_000_000
    assert counter.reserved_micros == 0  # every hold settled
    # What the app sees from the other replica agrees.
    usage = httpx.get(
        f"{team.b.url}/okap/usage", headers={"authorization": f"Bearer {tight.token}"}
    ).json()["usage"]["openai"]["spend"]["total"]
    assert usage["limit"] == small_limit and usage["used"] <= small_limit
    print(
        f"\nrate: 50/200 admitted across 2 replicas; spend: {admitted} admitted, "
        f"${counter.spent_micros / 1e6:.6f} recorded of ${small_limit} "
        f"(refusals {dict(tight_codes)})"
    )


def revocation_latencies(team: Team, revoke_on: str, refuse_on: str) -> list[float]:
    """Seconds from a revocation answered by one replica to the first refusal by another,
    which has the grant in its cache (it served the token just before)."""
    latencies = []
    for _ in range(3):
        grant = make_grant(team.vault, entry("openai"))
        other = openai_client(refuse_on, grant.token)
        assert other.chat.completions.create(model="gpt-4o-mini", messages=HI)
        with httpx.Client(base_url=revoke_on) as app:
            assert app.post("/oauth/revoke", data={"token": grant.token}).status_code == 200
        revoked_at = time.monotonic()
        while True:
            try:
                other.chat.completions.create(model="gpt-4o-mini", messages=HI)
            except openai.AuthenticationError as exc:
                latencies.append(time.monotonic() - revoked_at)
                assert exc.code == "token_revoked", exc
                break
            assert time.monotonic() - revoked_at < 5, "the other replica never saw it"
    return latencies


def test_revocation_on_replica_a_is_refused_on_replica_b_within_one_second(
    team: Team, fake_upstream: FakeUpstream
) -> None:
    latencies = revocation_latencies(team, team.a.url, team.b.url)
    print(f"\nrevoked on A, refused on B after {[f'{x:.3f}s' for x in latencies]} (NOTIFY)")
    assert max(latencies) < 1.0, latencies


def test_without_notices_the_cache_ttl_still_bounds_revocation_below_one_second(
    team: Team, fake_upstream: FakeUpstream
) -> None:
    """The fallback when a notice is missed: a replica that listens for none."""
    env = {**team.env, "OKAP_PROXY_GRANT_NOTIFY": "false"}
    with running_replicas(["deaf"], env, team.workdir) as (deaf,):
        latencies = revocation_latencies(team, team.a.url, deaf.url)
    print(f"\nrevoked on A, refused on a deaf replica after {[f'{x:.3f}s' for x in latencies]}")
    assert max(latencies) < 1.0, latencies


def test_consent_begun_on_a_and_approved_through_b_gives_a_working_token(
    team: Team, fake_upstream: FakeUpstream
) -> None:
    account_id = ensure_account(team.vault, "carol")
    ensure_key(team.vault, account_id, "openai")
    details = [{"type": "ai_model_access", "provider": "openai", "models": ["gpt-4o-mini"]}]
    # The app asks replica A, which answers "pending" at once (Prefer: wait=0).
    started = httpx.post(
        f"{team.a.url}/okap/authorize",
        json={"okap": "1.0", "authorization_details": details, "client": {"name": "Notes"}},
        headers={"prefer": "wait=0"},
        timeout=30,
    ).json()
    assert started["status"] == "pending", started
    # The person signs in on replica A and opens the consent page there ...
    with Person(team.a.url, "carol", PASSWORD) as on_a:
        page = on_a.open(started["consent_url"])
        assert page.status_code == 200 and "Notes" in page.text
        # ... and their Approve lands on replica B, with the session A started.
        with Person(team.b.url, "carol", PASSWORD) as on_b:
            on_b.client.cookies = on_a.client.cookies
            on_b.signed_in = True
            on_b.approve(started["consent_url"], limits={"daily_spend": 1})
    # The app polls replica B and gets its token, which works on both replicas.
    poll = started["poll_url"].replace(team.a.url, team.b.url)
    granted = httpx.get(poll, timeout=30).json()
    assert granted["status"] == "granted", granted
    for replica in (team.a, team.b):
        answer = openai_client(replica.url, granted["token"]).chat.completions.create(
            model="gpt-4o-mini", messages=HI
        )
        assert answer.choices[0].message.content
    with pytest.raises(openai.PermissionDeniedError):
        openai_client(team.b.url, granted["token"]).chat.completions.create(
            model="gpt-4o", messages=HI
        )


def test_device_code_started_on_a_is_approved_on_b_and_polled_on_a(
    team: Team, fake_upstream: FakeUpstream
) -> None:
    account_id = ensure_account(team.vault, "dave")
    ensure_key(team.vault, account_id, "openai")
    details = '[{"type": "ai_model_access", "provider": "openai"}]'
    with httpx.Client(base_url=team.a.url, timeout=30) as app:
        device = app.post(
            "/oauth/device_authorization",
            data={"client_id": "cli-tool", "authorization_details": details},
        ).json()
        pending = app.post("/oauth/token", data=_device_form(device)).json()
        assert pending["error"] == "authorization_pending", pending
    with Person(team.b.url, "dave", PASSWORD) as on_b:
        on_b.approve_device(device["user_code"])
    time.sleep(device.get("interval", 0))  # poll politely, or the vault says slow_down
    with httpx.Client(base_url=team.a.url, timeout=30) as app:
        token = app.post("/oauth/token", data=_device_form(device)).json()
    assert token["access_token"].startswith("okap_"), token
    answer = openai_client(team.b.url, token["access_token"]).chat.completions.create(
        model="gpt-4o-mini", messages=HI
    )
    assert answer.choices[0].message.content


def _device_form(device: dict[str, Any]) -> dict[str, str]:
    return {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": device["device_code"],
        "client_id": "cli-tool",
    }


def test_an_app_waiting_on_a_gets_its_token_when_the_person_approves_on_b(
    team: Team, fake_upstream: FakeUpstream
) -> None:
    """The OKAP binding's bounded wait polls the database, not this process's memory."""
    account_id = ensure_account(team.vault, "erin")
    ensure_key(team.vault, account_id, "openai")
    details = [{"type": "ai_model_access", "provider": "openai", "models": ["gpt-4o-mini"]}]
    answers: list[dict[str, Any]] = []

    def app_waits_on_a() -> None:
        answers.append(
            httpx.post(
                f"{team.a.url}/okap/authorize",
                json={"okap": "1.0", "authorization_details": details, "client": {"name": "Wait"}},
                headers={"prefer": "wait=20"},
                timeout=30,
            ).json()
        )

    waiting = threading.Thread(target=app_waits_on_a)
    waiting.start()
    request_id = wait_for_request(team, client_name="Wait")
    with Person(team.b.url, "erin", PASSWORD) as on_b:
        on_b.approve(f"{team.b.url}/consent/{request_id}")
    waiting.join(25)
    assert answers and answers[0]["status"] == "granted", answers
    answer = openai_client(team.b.url, answers[0]["token"]).chat.completions.create(
        model="gpt-4o-mini", messages=HI
    )
    assert answer.choices[0].message.content
