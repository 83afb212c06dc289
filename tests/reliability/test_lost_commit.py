"""A commit that reaches PostgreSQL while its acknowledgement is lost: the vault cannot
know whether its audit batch was written, so it writes it again. The books must come out
exactly as if nothing had happened: one audit row per answered request, spend equal to
what they cost, never negative, no hold left behind."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy.engine import make_url

from okap_server.context import Vault, open_vault
from okap_server.settings import Settings
from tests.reliability.books import assert_balanced, settled_books
from tests.reliability.tcp_relay import relayed_url, tcp_relay
from tests.server.proxy.test_sdks import openai_client
from tests.support.grants import entry, make_grant
from tests.support.live import free_port, serve_vault

HI = [{"role": "user", "content": "hi"}]
LIMITED = {"daily_spend": 5.0}


def wait_until(check: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_lost_commit_acknowledgements_leave_the_books_exact(
    settings: Settings, vault: Vault
) -> None:
    url = make_url(settings.effective_database_url)
    grant = make_grant(vault, entry("openai", limits=LIMITED))
    with tcp_relay(url.host or "127.0.0.1", url.port or 5432, protocol=True) as relay:
        replica = open_vault(
            settings.model_copy(
                update={
                    "database_url": relayed_url(settings.effective_database_url, relay),
                    "port": free_port(),
                }
            )
        )
        try:
            with serve_vault(replica) as live:
                client = openai_client(live, grant.token)
                client.chat.completions.create(model="gpt-4o-mini", messages=HI, max_tokens=50)
                time.sleep(0.3)  # the first flush and sweep are behind us
                answered = [1]
                stop = threading.Event()

                def load() -> None:
                    while not stop.is_set():
                        client.chat.completions.create(
                            model="gpt-4o-mini", messages=HI, max_tokens=50
                        )
                        answered.append(1)

                workers = [threading.Thread(target=load) for _ in range(4)]
                for worker in workers:
                    worker.start()
                # Twice in a row (the batch, then its retry), then twice more later on.
                relay.lose_commit_acks(2)
                wait_until(lambda: relay.acks_lost == 2)
                time.sleep(0.5)
                relay.lose_commit_acks(2)
                wait_until(lambda: relay.acks_lost == 4)
                time.sleep(0.5)
                stop.set()
                for worker in workers:
                    worker.join()
                count = len(answered)
                books = settled_books(vault, grant.grant_id, count)
        finally:
            replica.dispose()
    assert relay.acks_lost == 4
    assert_balanced(books, count)  # each request once, spend = what the audit says
    assert len({log.id for log in books.logs}) == count
    assert all(log.status == 200 for log in books.logs)
    # Every answer cost the same: the spend is exactly that many of them.
    (cost,) = {log.cost_micros for log in books.logs}
    assert cost > 0 and books.spent_micros == count * cost
