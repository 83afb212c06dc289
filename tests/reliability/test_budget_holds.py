"""A small budget under steady load: a finished request's hold must not linger until the next
audit flush and refuse requests while the budget is mostly unused. A refusal happens only
when the settled spend plus the holds of requests really in flight leave no room."""

from __future__ import annotations

import threading
from collections import Counter

import openai
import pytest

from okap_server.context import Vault
from okap_server.settings import Settings
from tests.reliability.books import settled_books
from tests.support.grants import entry, make_grant

HI = [{"role": "user", "content": "hi"}]
CONCURRENCY = 8
PER_CALLER = 50
DAILY = 0.10  # about 40 worst-case holds (no max_tokens: a 4096-token cap is held)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The audit flushed at the production interval, a quarter of a second."""
    return settings.model_copy(update={"proxy_audit_flush_seconds": 0.25})


def test_a_small_daily_budget_is_not_refused_while_it_fits(vault: Vault, live_url: str) -> None:
    grant = make_grant(vault, entry("openai", limits={"daily_spend": DAILY}))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def caller() -> None:
        client = openai.OpenAI(
            base_url=f"{live_url}/v1/openai", api_key=grant.token, max_retries=0, timeout=30
        )
        for _ in range(PER_CALLER):
            try:
                client.chat.completions.create(model="gpt-4o-mini", messages=HI)
                result = "ok"
            except openai.RateLimitError as exc:
                result = str(exc.code)
            with lock:
                outcomes[result] += 1

    threads = [threading.Thread(target=caller) for _ in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = CONCURRENCY * PER_CALLER
    books = settled_books(vault, grant.grant_id, total)
    # The budget fitted throughout: cheap answers used a few percent of it.
    assert books.spent_micros < DAILY * 1_000_000 * 0.1, books.spent_micros
    refused = total - outcomes["ok"]
    assert refused / total < 0.01, outcomes
    assert set(outcomes) <= {"ok", "budget_held"}, outcomes  # never a final refusal
    # Balanced: the refusals are audited, and count and cost nothing.
    assert books.by_status() == {200: outcomes["ok"], **({429: refused} if refused else {})}
    assert books.requests == outcomes["ok"]
    assert books.reservations == 0 and books.reserved_micros == 0
    assert books.spent_micros == sum(log.cost_micros for log in books.logs)
