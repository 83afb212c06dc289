"""A database that accepts connections but never answers (a paused VM, a stuck disk, a
silent network): every request is answered 503 in its provider's shape within a bounded
time, ``/readyz`` says 503, and when the database answers again everything recovers with
the books exact."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx
import openai
import pytest
from sqlalchemy.engine import make_url

from okap_server.context import Vault, open_vault
from okap_server.settings import Settings
from tests.reliability.books import read_books, settled_books
from tests.reliability.tcp_relay import relayed_url, tcp_relay
from tests.server.proxy.test_sdks import openai_client
from tests.support.grants import entry, make_grant
from tests.support.live import free_port, serve_vault

HI = [{"role": "user", "content": "hi"}]
LIMITED = {"daily_spend": 5.0}
FREEZE_SECONDS = 20.0
WAIT_SECONDS = 5.0  # Settings.database_wait_seconds, the default
# A request's answer may take the wait, plus a loaded test machine's slack; it must never
# take the freeze.
ANSWER_BOUND = WAIT_SECONDS + 3.0
READY_BOUND = 4.0


@dataclass
class Seen:
    started: float
    took: float
    status: int
    code: str | None


def proxied(client: openai.OpenAI) -> tuple[int, str | None]:
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=HI, max_tokens=50)
    except openai.APIStatusError as exc:
        return exc.status_code, exc.response.headers.get("x-okap-error")
    return 200, None


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_frozen_database_gets_bounded_503s_and_readyz_says_so(
    settings: Settings, vault: Vault
) -> None:
    url = make_url(settings.effective_database_url)
    known = make_grant(vault, entry("openai", limits=LIMITED))
    unseen = make_grant(vault, entry("openai", limits=LIMITED), client_name="Unseen")
    with tcp_relay(url.host or "127.0.0.1", url.port or 5432) as relay:
        replica = open_vault(
            settings.model_copy(
                update={
                    "database_url": relayed_url(settings.effective_database_url, relay),
                    "port": free_port(),
                    "proxy_grant_cache_seconds": 300,
                }
            )
        )
        try:
            with serve_vault(replica) as live:
                client = openai_client(live, known.token).with_options(timeout=60)
                assert proxied(client) == (200, None)  # its grant is cached now
                assert httpx.get(f"{live}/readyz").status_code == 200
                seen: list[Seen] = []
                ready: list[Seen] = []
                relay.freeze()
                frozen_at = time.monotonic()
                until = frozen_at + FREEZE_SECONDS

                def load(token: str) -> None:
                    caller = openai_client(live, token).with_options(timeout=60)
                    while time.monotonic() < until - ANSWER_BOUND:
                        started = time.monotonic()
                        status, code = proxied(caller)
                        seen.append(
                            Seen(started - frozen_at, time.monotonic() - started, status, code)
                        )

                def probe() -> None:
                    while time.monotonic() < until - READY_BOUND:
                        started = time.monotonic()
                        answer = httpx.get(f"{live}/readyz", timeout=60)
                        took = time.monotonic() - started
                        ready.append(Seen(started - frozen_at, took, answer.status_code, None))
                        time.sleep(0.2)

                # Requests whose grant is cached wait on admission; the unseen token's wait
                # on loading its grant.
                threads = [threading.Thread(target=load, args=(known.token,)) for _ in range(4)]
                threads.append(threading.Thread(target=load, args=(unseen.token,)))
                threads.append(threading.Thread(target=probe))
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                time.sleep(max(0.0, until - time.monotonic()))
                relay.thaw()
                # Recovered by itself, once the database answers.
                deadline = time.monotonic() + 30
                while proxied(client) != (200, None):
                    assert time.monotonic() < deadline, "the vault did not recover"
                    time.sleep(0.2)
                while httpx.get(f"{live}/readyz", timeout=10).status_code != 200:
                    assert time.monotonic() < deadline, "/readyz did not recover"
                    time.sleep(0.2)
                assert proxied(openai_client(live, unseen.token)) == (200, None)
        finally:
            replica.dispose()

    assert len(seen) >= 10, seen
    for answer in seen:  # every request during the freeze: a clean 503, in bounded time
        assert (answer.status, answer.code) == (503, "vault_unavailable"), answer
        assert answer.took < ANSWER_BOUND, answer
    assert any(a.started > FREEZE_SECONDS / 2 for a in seen)  # late in the freeze too
    assert len(ready) >= 3, ready
    for answer in ready:
        assert answer.status == 503 and answer.took < READY_BOUND, answer
    # Nothing half-written: requests refused in the freeze hold nothing, the two answered
    # after it are settled once.
    books = settled_books(vault, known.grant_id, 2)
    assert books.reservations == 0 and books.reserved_micros == 0
    answered = [log for log in books.logs if log.status == 200]
    assert len(answered) == 2 and books.requests == 2
    assert books.spent_micros == sum(log.cost_micros for log in books.logs)
    assert all(log.cost_micros == 0 for log in books.logs if log.status == 503)
    assert read_books(vault, unseen.grant_id).requests == 1
