"""Spend limits hold under concurrency: atomic worst-case holds, settled to the real cost."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import openai
import pytest

from okap_server.clock import utcnow
from okap_server.context import Vault, open_vault
from okap_server.grants.counters import SpendCounter
from okap_server.grants.periods import day_key
from okap_server.grants.view import Limits
from okap_server.proxy.accounting.admission import Admission
from okap_server.proxy.accounting.budget import SqlBudget
from okap_server.proxy.models import Reservation
from okap_server.proxy.recorder import sweep_stale, write_batch
from okap_server.settings import Settings
from tests.server.proxy.records import settled_outcome, spend, wait_for_logs, wait_until_settled
from tests.server.proxy.test_sdks import openai_client
from tests.support.fake_upstream import FakeUpstream, FakeUsage
from tests.support.grants import entry, make_grant
from tests.support.live import free_port, serve_vault

HI = [{"role": "user", "content": "hi"}]


def preset_spend(vault: Vault, grant_id: str, spent_micros: int) -> None:
    with vault.session() as session:
        session.add(
            SpendCounter(
                grant_id=grant_id, provider="openai", period="total", spent_micros=spent_micros
            )
        )
        session.commit()


def test_fifty_concurrent_requests_never_overspend(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.usage["openai"] = FakeUsage(input=100, output=100)  # 75 micro-USD each
    limit_usd = 1.0
    grant = make_grant(vault, entry("openai", limits={"total_spend": limit_usd}))
    preset_spend(vault, grant.grant_id, 1_000_000 - 1_000)  # $0.001 left

    async def one(client: openai.AsyncOpenAI) -> str:
        try:
            await client.chat.completions.create(model="gpt-4o-mini", messages=HI, max_tokens=100)
            return "ok"
        except openai.RateLimitError as exc:
            # Spent (final), or held by the requests in flight (retryable).
            assert exc.code in ("budget_exceeded", "budget_held")
            return "refused"

    async def run() -> list[str]:
        client = openai.AsyncOpenAI(
            base_url=f"{live_url}/v1/openai", api_key=grant.token, max_retries=0
        )
        async with client:
            return await asyncio.gather(*(one(client) for _ in range(50)))

    results = asyncio.run(run())
    wait_until_settled(vault)
    wait_for_logs(vault, 50)
    admitted = results.count("ok")
    assert admitted >= 1 and results.count("refused") >= 1
    counter = spend(vault, grant.grant_id)
    assert counter is not None
    assert counter.reserved_micros == 0
    assert counter.spent_micros == 1_000_000 - 1_000 + admitted * 75
    assert counter.spent_micros <= limit_usd * 1_000_000
    assert len(fake_upstream.received) == admitted


def test_unknown_price_under_a_spend_limit_is_refused(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    limited = make_grant(vault, entry("openai", limits={"daily_spend": 5.0}))
    with pytest.raises(openai.PermissionDeniedError) as refused:
        openai_client(live_url, limited.token).chat.completions.create(
            model="my-local-finetune", messages=HI
        )
    assert refused.value.code == "price_unknown"
    assert "my-local-finetune" in refused.value.message
    unlimited = make_grant(vault, entry("openai"), client_name="Other")
    openai_client(live_url, unlimited.token).chat.completions.create(
        model="my-local-finetune", messages=HI
    )
    assert len(fake_upstream.received) == 1


def test_output_is_capped_and_the_hold_settles_to_the_real_cost(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    grant = make_grant(
        vault, entry("openai", limits={"daily_spend": 1.0, "tokens_per_request": 50})
    )
    client = openai_client(live_url, grant.token)
    client.chat.completions.create(model="gpt-4o-mini", messages=HI, max_tokens=1000)
    assert fake_upstream.received[-1].json["max_tokens"] == 50
    client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert fake_upstream.received[-1].json["max_completion_tokens"] == 50
    wait_until_settled(vault)
    day = spend(vault, grant.grant_id, day_key(utcnow()))
    assert day is not None and day.reserved_micros == 0
    assert day.spent_micros == 2 * 5 and day.requests == 2  # 12 in + 5 out of gpt-4o-mini


def test_a_budget_refusal_holds_and_counts_nothing(vault: Vault) -> None:
    grant = make_grant(vault, entry("openai"))
    limits = Limits(daily_spend=100, requests_per_minute=10)
    admission = Admission(vault.engine)
    now = utcnow()
    first = admission.admit(grant.grant_id, "openai", limits, 60, now)
    assert first.reservation_id and first.reserved_periods == (day_key(now),)
    with pytest.raises(Exception) as refused:
        admission.admit(grant.grant_id, "openai", limits, 60, now)
    assert type(refused.value).__name__ == "BudgetHeld"  # held in flight, not spent
    # The refusal is not counted: 9 of 10 left, as the next admission shows.
    assert refused.value.headers["x-ratelimit-remaining"] == "9"  # type: ignore[attr-defined]
    again = admission.admit(grant.grant_id, "openai", limits, 40, now)
    assert again.rate is not None and again.rate.remaining == 8  # the refusal was not counted


def test_stale_holds_are_charged_at_worst_case_then_corrected(vault: Vault) -> None:
    grant = make_grant(vault, entry("openai"))
    now = utcnow()
    admission = Admission(vault.engine, reservation_ttl=timedelta(seconds=-1))
    held = admission.admit(grant.grant_id, "openai", Limits(total_spend=1000), 400, now)
    budget = SqlBudget()
    with vault.engine.begin() as conn:
        assert sweep_stale(conn, budget, utcnow()) == 1
    counter = spend(vault, grant.grant_id)
    assert counter is not None and (counter.spent_micros, counter.reserved_micros) == (400, 0)
    assert counter.requests == 1  # a request, even if it never settles
    # The request did finish after all: its settlement corrects the charge to the real cost.
    outcome = settled_outcome(grant, held, now, 150)
    write_batch(vault.engine, budget, [outcome])
    counter = spend(vault, grant.grant_id)
    assert counter is not None and (counter.spent_micros, counter.reserved_micros) == (150, 0)
    assert counter.requests == 1  # still one request
    with vault.session() as session:
        assert session.get(Reservation, held.reservation_id) is None


def test_limits_hold_across_engines_like_across_replicas(vault: Vault) -> None:
    """Two engines (as two replicas would have) admitting at once from many threads: the
    rate limit and the spend limit are exact, because the database decides."""
    from concurrent.futures import ThreadPoolExecutor

    from okap_server.db.engine import make_engine
    from okap_server.proxy.errors import BudgetExceeded, RateLimited

    grant = make_grant(vault, entry("openai"))
    other = make_engine(vault.settings.effective_database_url)
    admissions = [Admission(vault.engine), Admission(other)]
    limits = Limits(requests_per_minute=50, total_spend=30 * 1000)
    now = utcnow()

    def attempt(n: int) -> str:
        try:
            admissions[n % 2].admit(grant.grant_id, "openai", limits, 1000, now)
            return "ok"
        except RateLimited:
            return "rate"
        except BudgetExceeded:
            return "budget"

    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(attempt, range(120)))
            assert results.count("ok") == 30  # the spend limit admits exactly 30 holds
            assert results.count("budget") + results.count("rate") == 90
            counter = spend(vault, grant.grant_id)
            assert counter is not None and counter.reserved_micros == 30 * 1000
            limits = Limits(requests_per_minute=50)
            grant = make_grant(vault, entry("openai"), client_name="Rate only")
            results = list(pool.map(attempt, range(120)))
            assert results.count("ok") == 50 and results.count("rate") == 70
    finally:
        other.dispose()


def test_an_unpriced_model_is_billed_at_the_configured_fallback(
    settings: Settings, vault: Vault, fake_upstream: FakeUpstream
) -> None:
    priced = settings.model_copy(update={"port": free_port(), "fallback_price_per_million": 10.0})
    other = open_vault(priced)
    try:
        grant = make_grant(other, entry("openai", limits={"daily_spend": 1.0}))
        with serve_vault(other) as url:
            openai_client(url, grant.token).chat.completions.create(
                model="my-local-finetune", messages=HI
            )
        (log,) = wait_for_logs(other, 1, timeout=0)
        assert log.cost_micros == (12 + 5) * 10  # never $0
    finally:
        other.dispose()


def test_output_caps_reach_every_family(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    from tests.server.proxy.test_sdks import anthropic_client, google_client

    limits = {"tokens_per_request": 64}
    grant = make_grant(vault, entry("anthropic", limits=limits), entry("google", limits=limits))
    anthropic_client(live_url, grant.token).messages.create(
        model="claude-haiku-4-5", max_tokens=4000, messages=HI
    )
    assert fake_upstream.requests_for("anthropic")[-1].json["max_tokens"] == 64
    gemini = google_client(live_url, grant.token)
    gemini.models.generate_content(model="gemini-2.0-flash", contents="hi")
    sent = fake_upstream.requests_for("google")[-1].json
    assert sent["generationConfig"]["maxOutputTokens"] == 64
