"""SIGKILL under load, then a restart: no grant, key or settled usage lost, nothing counted
twice, stale holds charged and released, every request that finished is in the audit, and
those whose answer had been relayed are settled at their real cost (the journal)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path

import anthropic
import openai
import pytest
from sqlalchemy import func, update
from sqlmodel import select

from okap_server.clock import utcnow
from okap_server.context import Vault
from okap_server.grants.counters import SpendCounter
from okap_server.grants.models import Grant
from okap_server.grants.periods import day_key
from okap_server.proxy.models import RequestLog, Reservation
from okap_server.settings import Settings
from okap_server.vault.models import ProviderKey
from tests.support.fake_upstream import FakeUpstream, SlowStream
from tests.support.grants import entry, make_grant
from tests.support.process import server_env, vault_process

pytestmark = pytest.mark.slow

HI = [{"role": "user", "content": "hi"}]
LIMITED = {"daily_spend": 50.0, "monthly_spend": 100.0}
# No spend limit, so no budget is held: the request's in-flight record alone must let the
# restarted vault audit what the dead one had not written.
RATE_ONLY = {"requests_per_minute": 100_000}


def census(vault: Vault, grant_id: str) -> dict[str, int]:
    with vault.session() as session:

        def count(model: type, *where: object) -> int:
            query = select(func.count()).select_from(model)
            for clause in where:
                query = query.where(clause)  # type: ignore[arg-type]
            return int(session.exec(query).one())

        spent, requests = session.exec(
            select(
                func.coalesce(func.sum(SpendCounter.spent_micros), 0),
                func.coalesce(func.sum(SpendCounter.requests), 0),
            ).where(SpendCounter.grant_id == grant_id, SpendCounter.period == day_key(utcnow()))
        ).one()
        reserved = session.exec(
            select(func.coalesce(func.sum(Reservation.amount_micros), 0)).where(
                Reservation.grant_id == grant_id
            )
        ).one()
        logged_cost = session.exec(
            select(func.coalesce(func.sum(RequestLog.cost_micros), 0)).where(
                RequestLog.grant_id == grant_id
            )
        ).one()
        return {
            "grants": count(Grant),
            "keys": count(ProviderKey),
            "logs": count(RequestLog, RequestLog.grant_id == grant_id),
            "logs_ok": count(RequestLog, RequestLog.grant_id == grant_id, RequestLog.status == 200),
            "logs_unknown": count(
                RequestLog,
                RequestLog.grant_id == grant_id,
                RequestLog.error_type == "outcome_unknown",
            ),
            "reservations": count(Reservation),
            "reserved_micros": int(reserved),
            "spent_micros": int(spent),
            "requests": int(requests),
            "logged_cost_micros": int(logged_cost),
        }


@pytest.mark.parametrize("limits", [LIMITED, RATE_ONLY], ids=["spend-limited", "rate-only"])
def test_sigkill_under_load_loses_nothing(
    settings: Settings,
    vault: Vault,
    fake_upstream: FakeUpstream,
    tmp_path: Path,
    limits: dict[str, float],
) -> None:
    grant = make_grant(vault, entry("openai", limits=limits), entry("anthropic", limits=limits))
    other = make_grant(vault, entry("openai"), username="someone-else")
    before = census(vault, grant.grant_id)
    # Streams slow enough that some are in flight at the kill.
    fake_upstream.script("anthropic", *[SlowStream(delay=0.1)] * 500)
    env = server_env(settings, fake_upstream)
    port = settings.port
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    finished: list[float] = []  # when each full answer had arrived, as the app saw it
    stop = threading.Event()

    def load(n: int) -> None:
        oa = openai.OpenAI(base_url=f"{url}/v1/openai", api_key=grant.token, max_retries=0)
        an = anthropic.Anthropic(base_url=f"{url}/v1/anthropic", api_key=grant.token, max_retries=0)
        while not stop.is_set():
            try:
                if n % 2:
                    oa.chat.completions.create(model="gpt-4o-mini", messages=HI, max_tokens=50)
                else:
                    with an.messages.stream(
                        model="claude-haiku-4-5", max_tokens=50, messages=HI
                    ) as events:
                        text = "".join(events.text_stream)
                        assert text == "Hello from the fake upstream."
                finished.append(time.monotonic())
            # Any failure while the vault is killed (the SDKs raise their own errors, or
            # httpx's or httpx2's, by version) just means: try again until told to stop.
            except Exception:  # noqa: BLE001
                if stop.is_set():
                    return
                time.sleep(0.01)

    with vault_process(env, port, log) as process:
        workers = [threading.Thread(target=load, args=(n,)) for n in range(6)]
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + 30
        while len(finished) < 20 and time.monotonic() < deadline:  # load is flowing
            time.sleep(0.1)
        time.sleep(0.5)
        killed_at = time.monotonic()
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
    done = sum(1 for t in finished if t < killed_at)
    sent = len(fake_upstream.received)
    at_kill = census(vault, grant.grant_id)
    assert done >= 10, log.read_text()
    assert at_kill["reservations"] > 0  # streams were in flight: their holds are stuck
    assert at_kill["grants"] == before["grants"] and at_kill["keys"] == before["keys"]

    # Time passes: the holds of the dead process go stale (their TTL is at least a minute).
    with vault.session() as session:
        session.exec(update(Reservation).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    with vault_process(env, port, log):
        deadline = time.monotonic() + 15
        while census(vault, grant.grant_id)["reservations"] and time.monotonic() < deadline:
            time.sleep(0.1)
        # The restarted vault serves the same grants with the same keys.
        oa = openai.OpenAI(base_url=f"{url}/v1/openai", api_key=other.token, max_retries=0)
        assert oa.chat.completions.create(model="gpt-4o-mini", messages=HI).choices
    after = census(vault, grant.grant_id)

    assert after["grants"] == before["grants"] and after["keys"] == before["keys"]
    assert after["reservations"] == 0  # every stale hold expired
    # Nothing settled before the kill was lost, nothing was counted twice: every request
    # recorded in flight at the kill became exactly one audit row, settled from the dead
    # process's journal (its answer had been relayed: its real cost) or by the sweeper
    # (still in flight: its worst case), so spend is at most what was logged plus the
    # stale holds, and never less than what was spent before.
    assert after["logs"] == at_kill["logs"] + at_kill["reservations"], (at_kill, after)
    assert after["logs_unknown"] <= at_kill["reservations"]
    assert after["spent_micros"] <= at_kill["logged_cost_micros"] + at_kill["reserved_micros"]
    assert after["spent_micros"] >= at_kill["spent_micros"]
    # The audit holds every request whose answer the app had received in full, and no
    # request twice; what it says was spent is what the counters say.
    assert after["logs"] >= done, (after, done, sent)
    assert after["logs"] - after["logs_unknown"] <= sent  # no request logged twice
    assert after["spent_micros"] == after["logged_cost_micros"]
    # Every audited request is counted as one, those the sweeper audited too.
    assert after["requests"] == after["logs"], after


def test_answers_relayed_before_a_kill_are_settled_at_their_real_cost(
    settings: Settings, vault: Vault, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    """The writer waits a minute between batches here, so nothing answered before the kill
    was written to the database. Each answer had reached the app: the restarted vault
    settles it at its real cost from the dead process's journal, not at its worst case;
    only the request still in flight at the kill is left to the sweeper."""
    grant = make_grant(vault, entry("openai", limits=LIMITED), entry("anthropic", limits=LIMITED))
    env = {**server_env(settings, fake_upstream), "OKAP_PROXY_AUDIT_FLUSH_SECONDS": "60"}
    port = settings.port
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    fake_upstream.script("anthropic", SlowStream(delay=5.0))  # the one in flight at the kill
    answered = 8
    with vault_process(env, port, log) as process:
        oa = openai.OpenAI(base_url=f"{url}/v1/openai", api_key=grant.token, max_retries=0)
        an = anthropic.Anthropic(base_url=f"{url}/v1/anthropic", api_key=grant.token, max_retries=0)

        def slow() -> None:
            with (
                contextlib.suppress(Exception),
                an.messages.stream(model="claude-haiku-4-5", max_tokens=50, messages=HI) as events,
            ):
                "".join(events.text_stream)

        in_flight = threading.Thread(target=slow, daemon=True)
        in_flight.start()
        for n in range(answered):
            if n % 2:
                oa.chat.completions.create(model="gpt-4o-mini", messages=HI, max_tokens=50)
            else:
                with oa.chat.completions.create(
                    model="gpt-4o-mini", messages=HI, max_tokens=50, stream=True
                ) as chunks:
                    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        deadline = time.monotonic() + 10
        while fake_upstream.requests_for("anthropic") == [] and time.monotonic() < deadline:
            time.sleep(0.05)
        at_kill = census(vault, grant.grant_id)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert at_kill["logs"] == 0  # nothing was written before the kill
    assert at_kill["reservations"] == answered + 1

    with vault.session() as session:
        session.exec(update(Reservation).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    with vault_process(env, port, log):
        deadline = time.monotonic() + 15
        while census(vault, grant.grant_id)["reservations"] and time.monotonic() < deadline:
            time.sleep(0.1)
    after = census(vault, grant.grant_id)
    assert after["reservations"] == 0
    assert after["logs_ok"] == answered, after  # each answer, at its real cost
    assert after["logs_unknown"] == 1  # only the request in flight: its worst case
    assert after["logs"] == answered + 1 and after["requests"] == answered + 1
    assert after["spent_micros"] == after["logged_cost_micros"]
    with vault.session() as session:
        costs = session.exec(
            select(RequestLog.cost_micros).where(
                RequestLog.grant_id == grant.grant_id, RequestLog.status == 200
            )
        ).all()
    assert set(costs) == {5}  # 12 tokens in and 5 out of gpt-4o-mini, not a 50-token hold
    assert not list((settings.home / "journal").glob("*.journal"))  # replayed, then deleted
