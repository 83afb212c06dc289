"""Spend ceilings above the grant: an account's over all its grants, a key's over every grant
it backs, and a grant's own weekly window. Real HTTP through the vault to the fake upstream,
with the real ``openai`` SDK, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import openai
import pytest
from sqlmodel import select

from okap_server.accounts.models import Account
from okap_server.clock import utcnow
from okap_server.context import Vault
from okap_server.grants.ceilings import (
    CeilingError,
    parse_ceiling,
    set_account_ceilings,
    set_key_ceiling,
)
from okap_server.grants.counters import SpendCounter
from okap_server.grants.periods import (
    CEILING_PROVIDER,
    account_scope,
    day_key,
    key_scope,
    month_key,
    week_key,
)
from okap_server.grants.view import Ceilings, Limits
from okap_server.proxy.accounting.admission import Admission
from okap_server.proxy.errors import BudgetExceeded
from okap_server.proxy.recorder import write_batch
from okap_server.vault.models import ProviderKey
from tests.server.proxy.records import settled_outcome, spend, wait_for_logs, wait_until_settled
from tests.support.fake_upstream import FakeUpstream, FakeUsage
from tests.support.grants import IssuedGrant, entry, make_grant

HI = [{"role": "user", "content": "hi"}]
COST = 75  # micro-USD: 100 input and 100 output tokens of gpt-4o-mini


def _ceiling_row(vault: Vault, scope: str, period: str) -> SpendCounter | None:
    with vault.session() as session:
        return session.exec(
            select(SpendCounter).where(
                SpendCounter.grant_id == scope,
                SpendCounter.provider == CEILING_PROVIDER,
                SpendCounter.period == period,
            )
        ).first()


def set_account(vault: Vault, account_id: str, **usd: float | None) -> None:
    with vault.session() as session:
        account = session.get(Account, account_id)
        assert account is not None
        set_account_ceilings(session, account, **usd)
        session.commit()


def set_key(vault: Vault, account_id: str, monthly: float | None) -> str:
    with vault.session() as session:
        key = session.exec(select(ProviderKey).where(ProviderKey.account_id == account_id)).one()
        set_key_ceiling(session, key, monthly)
        session.commit()
        return key.id


def forget(vault: Vault, *grants: IssuedGrant) -> None:
    """What the dashboard and the CLI do after a ceiling change: the grants' cached views go."""
    for grant in grants:
        vault.grant_changed(grant.grant_id)


def call(live_url: str, grant: IssuedGrant) -> str:
    client = openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=grant.token, max_retries=0)
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=HI, max_tokens=100)
        return "ok"
    except openai.RateLimitError as exc:
        assert exc.code == "budget_exceeded", exc
        return exc.response.headers.get("x-okap-limit", "") + " " + exc.message
    finally:
        client.close()


def test_an_account_ceiling_refuses_another_grants_call_once_one_grant_spent_it(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.usage["openai"] = FakeUsage(input=100, output=100)
    first = make_grant(vault, entry("openai"), client_name="First")
    second = make_grant(vault, entry("openai"), client_name="Second")
    set_account(vault, first.account_id, daily=0.0001)  # $0.0001: one call's worst case
    assert call(live_url, first) == "ok"
    wait_until_settled(vault)
    day = day_key(utcnow())
    row = _ceiling_row(vault, account_scope(first.account_id), day)
    assert row is not None and (row.spent_micros, row.reserved_micros) == (COST, 0)
    refused = call(live_url, second)
    assert refused.startswith("account.daily ")
    assert "account's daily spend ceiling of $0.00" in refused
    assert len(fake_upstream.requests_for("openai")) == 1
    # Lifted, the second grant goes through; the account counts both grants.
    set_account(vault, first.account_id, daily=None)
    forget(vault, first, second)
    assert call(live_url, second) == "ok"
    wait_until_settled(vault)
    row = _ceiling_row(vault, account_scope(first.account_id), day)
    assert row is not None and row.spent_micros == 2 * COST
    # Set below what is spent already: the next call is refused, nothing goes negative.
    set_account(vault, first.account_id, monthly=0.00001)
    forget(vault, first, second)
    assert call(live_url, first).startswith("account.monthly ")
    month = _ceiling_row(vault, account_scope(first.account_id), month_key(utcnow()))
    assert month is not None and month.spent_micros == 2 * COST and month.reserved_micros == 0


def test_a_key_ceiling_caps_every_grant_the_key_backs(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.usage["openai"] = FakeUsage(input=100, output=100)
    first = make_grant(vault, entry("openai"), client_name="First")
    second = make_grant(vault, entry("openai"), client_name="Second")
    key_id = set_key(vault, first.account_id, 0.0001)
    forget(vault, first, second)
    assert call(live_url, first) == "ok"
    wait_until_settled(vault)
    refused = call(live_url, second)
    assert refused.startswith("key.monthly ")
    assert "provider key" in refused
    row = _ceiling_row(vault, key_scope(key_id), month_key(utcnow()))
    assert row is not None and (row.spent_micros, row.reserved_micros) == (COST, 0)
    assert len(fake_upstream.requests_for("openai")) == 1


def test_fifty_concurrent_calls_of_two_grants_never_overspend_an_account_ceiling(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.usage["openai"] = FakeUsage(input=100, output=100)
    grants = [make_grant(vault, entry("openai"), client_name=f"App {n}") for n in range(2)]
    ceiling = 0.001  # about thirteen calls
    set_account(vault, grants[0].account_id, daily=ceiling)

    async def one(client: openai.AsyncOpenAI) -> str:
        try:
            await client.chat.completions.create(model="gpt-4o-mini", messages=HI, max_tokens=100)
            return "ok"
        except openai.RateLimitError as exc:
            assert exc.code in ("budget_exceeded", "budget_held")
            assert exc.response.headers["x-okap-limit"] == "account.daily"
            return "refused"

    async def run() -> list[str]:
        clients = [
            openai.AsyncOpenAI(base_url=f"{live_url}/v1/openai", api_key=g.token, max_retries=0)
            for g in grants
        ]
        try:
            return await asyncio.gather(*(one(clients[n % 2]) for n in range(50)))
        finally:
            for client in clients:
                await client.close()

    results = asyncio.run(run())
    wait_until_settled(vault)
    wait_for_logs(vault, 50)
    admitted = results.count("ok")
    assert admitted >= 1 and results.count("refused") >= 1
    row = _ceiling_row(vault, account_scope(grants[0].account_id), day_key(utcnow()))
    assert row is not None and row.reserved_micros == 0
    assert row.spent_micros == admitted * COST <= ceiling * 1_000_000
    assert len(fake_upstream.requests_for("openai")) == admitted


def test_settling_twice_counts_a_ceiling_once(vault: Vault) -> None:
    """Settlement adjusts a ceiling's counters only with the row that justifies it, as it
    does a grant's: a batch written twice (a lost commit, a replayed journal) counts once."""
    grant = make_grant(vault, entry("openai"))
    ceilings = Ceilings(account_id=grant.account_id, key_id="key_x", daily=10_000, key_monthly=9)
    now = utcnow()
    with pytest.raises(BudgetExceeded) as refused:  # 10 > the key's 9, before any SQL
        Admission(vault.engine).admit(grant.grant_id, "openai", Limits(), 10, now, ceilings)
    assert refused.value.headers["x-okap-limit"] == "key.monthly"
    ceilings = Ceilings(account_id=grant.account_id, key_id="key_x", daily=10_000)
    held = Admission(vault.engine).admit(grant.grant_id, "openai", Limits(), 1_000, now, ceilings)
    assert held.reserved_periods == (f"{account_scope(grant.account_id)}/{day_key(now)}",)
    row = _ceiling_row(vault, account_scope(grant.account_id), day_key(now))
    assert row is not None and row.reserved_micros == 1_000
    outcome = settled_outcome(grant, held, now, 600)
    outcome.key_id = "key_x"
    write_batch(vault.engine, Admission(vault.engine).budget, [outcome])
    write_batch(vault.engine, Admission(vault.engine).budget, [outcome])
    for scope, period in (
        (account_scope(grant.account_id), day_key(now)),
        (account_scope(grant.account_id), week_key(now)),
        (key_scope("key_x"), month_key(now)),
    ):
        row = _ceiling_row(vault, scope, period)
        assert row is not None and (row.spent_micros, row.reserved_micros) == (600, 0), scope
    week = spend(vault, grant.grant_id, week_key(now))
    assert week is not None and week.spent_micros == 600


def test_a_weekly_spend_limit_holds_for_the_iso_week(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.usage["openai"] = FakeUsage(input=100, output=100)
    grant = make_grant(vault, entry("openai", limits={"weekly_spend": 0.0001}))
    assert call(live_url, grant) == "ok"
    wait_until_settled(vault)
    refused = call(live_url, grant)
    assert refused.startswith("grant.weekly ") and "weekly spend limit" in refused
    row = spend(vault, grant.grant_id, week_key(utcnow()))
    assert row is not None and row.spent_micros == COST


def test_iso_weeks_cross_the_new_year_in_utc() -> None:
    assert week_key(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == "week:2026-W53"
    assert week_key(datetime(2027, 1, 3, 12, tzinfo=UTC)) == "week:2026-W53"
    assert week_key(datetime(2027, 1, 4, 0, tzinfo=UTC)) == "week:2027-W01"
    assert week_key(datetime(2025, 12, 29, tzinfo=UTC)) == "week:2026-W01"


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (-1, "must not be negative"),
        ("ten", "is not a number of USD"),
        (float("nan"), "must be a finite number"),
        (True, "must be a number of USD"),
        (2_000_000, "more than 1,000,000 USD"),
    ],
)
def test_a_bad_ceiling_is_refused_with_a_clear_error(value: object, error: str) -> None:
    with pytest.raises(CeilingError, match=error):
        parse_ceiling("daily ceiling", value)
    assert parse_ceiling("daily ceiling", "$2.50") == 2_500_000
    assert parse_ceiling("daily ceiling", "") is None


def test_usage_shows_every_ceiling_and_what_is_left(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.usage["openai"] = FakeUsage(input=100, output=100)
    grant = make_grant(vault, entry("openai", limits={"weekly_spend": 1.0}))
    set_account(vault, grant.account_id, monthly=1.0)
    key_id = set_key(vault, grant.account_id, 2.0)
    forget(vault, grant)
    assert call(live_url, grant) == "ok"
    wait_until_settled(vault)
    usage = httpx.get(
        f"{live_url}/okap/usage", headers={"authorization": f"Bearer {grant.token}"}
    ).json()
    ceilings = usage["ceilings"]
    assert ceilings["account"]["month"] == {"used": 0.000075, "limit": 1.0, "remaining": 0.999925}
    assert ceilings["account"]["day"]["limit"] is None
    assert ceilings["keys"][key_id]["month"]["remaining"] == 1.999925
    assert usage["usage"]["openai"]["spend"]["week"]["remaining"] == 0.999925


def test_a_ceiling_holds_exactly_across_engines_and_grants(vault: Vault) -> None:
    """Two engines (as two replicas) admitting and settling for two grants of one account
    from many threads: the account's ceiling is never passed, and no transaction deadlocks
    on the shared ceiling rows (PostgreSQL would abort one, and the error would surface)."""
    from concurrent.futures import ThreadPoolExecutor

    from okap_server.db.engine import make_engine
    from okap_server.proxy.errors import RateLimited

    grants = [make_grant(vault, entry("openai"), client_name=f"App {n}") for n in range(2)]
    key_id = set_key(vault, grants[0].account_id, None)
    other = make_engine(vault.settings.effective_database_url)
    engines = [vault.engine, other]
    admissions = [Admission(engine) for engine in engines]
    ceilings = Ceilings(account_id=grants[0].account_id, key_id=key_id, daily=30 * 1000)
    limits = Limits(requests_per_minute=1000, under_ceiling=True)
    now = utcnow()

    def attempt(n: int) -> str:
        grant, side = grants[n % 2], (n // 2) % 2
        try:
            held = admissions[side].admit(grant.grant_id, "openai", limits, 1000, now, ceilings)
        except BudgetExceeded:
            return "budget"
        except RateLimited:
            return "rate"
        outcome = settled_outcome(grant, held, now, 500)
        outcome.key_id = key_id
        write_batch(engines[side], admissions[side].budget, [outcome])
        return "ok"

    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(attempt, range(120)))
    finally:
        other.dispose()
    admitted = results.count("ok")
    assert admitted >= 30 and results.count("ok") + results.count("budget") == 120
    row = _ceiling_row(vault, account_scope(grants[0].account_id), day_key(now))
    assert row is not None and row.reserved_micros == 0
    assert row.spent_micros == admitted * 500 <= 30 * 1000
