"""A hold whose process died is charged by the sweeper; if the request's own record arrives
later it corrects the charge. Every spend period the vault reports must agree afterwards.

Settlement is idempotent: a batch written twice (its commit's acknowledgement was lost, so
the recorder could not know it was written) leaves the books as written once, whatever
state its requests were in: held, swept, settled late, abandoned or refused."""

from __future__ import annotations

from datetime import timedelta

import pytest

from okap_server.clock import utcnow
from okap_server.context import Vault
from okap_server.grants.periods import day_key, month_key
from okap_server.grants.view import Limits
from okap_server.proxy.accounting.admission import Admission
from okap_server.proxy.accounting.budget import SqlBudget
from okap_server.proxy.recorder import Outcome, sweep_stale, write_batch
from tests.reliability.books import Books, read_books
from tests.server.proxy.records import settled_outcome, spend
from tests.support.grants import entry, make_grant


def periods(vault: Vault, grant_id: str) -> dict[str, int]:
    now = utcnow()
    found = {}
    for period in ("total", day_key(now), month_key(now)):
        counter = spend(vault, grant_id, period)
        found[period.split(":")[0]] = counter.spent_micros if counter else 0
    return found


@pytest.mark.parametrize("limits", [Limits(daily_spend=1000), Limits(monthly_spend=1000)])
def test_a_swept_hold_is_charged_once_in_every_period(vault: Vault, limits: Limits) -> None:
    grant = make_grant(vault, entry("openai"))
    now = utcnow()
    admission = Admission(vault.engine, reservation_ttl=timedelta(seconds=-1))
    held = admission.admit(grant.grant_id, "openai", limits, 400, now)
    budget = SqlBudget()
    with vault.engine.begin() as conn:
        assert sweep_stale(conn, budget, utcnow()) == 1
    # The dead request is charged its worst case everywhere spend is reported.
    assert periods(vault, grant.grant_id) == {"total": 400, "day": 400, "month": 400}
    outcome = settled_outcome(grant, held, now, 150)
    write_batch(vault.engine, budget, [outcome])
    # Corrected to the real cost, once, in every period.
    assert periods(vault, grant.grant_id) == {"total": 150, "day": 150, "month": 150}


def ledger(vault: Vault, grant_id: str) -> tuple[Books, dict[str, int], list[tuple[str, int]]]:
    books = read_books(vault, grant_id)
    counters = {}
    now = utcnow()
    for period in ("total", day_key(now), month_key(now)):
        counter = spend(vault, grant_id, period)
        counters[period] = (counter.spent_micros, counter.reserved_micros, counter.requests)
    rows = sorted((log.id, log.cost_micros) for log in books.logs)
    return books, counters, rows  # type: ignore[return-value]


def test_a_batch_written_twice_is_settled_once(vault: Vault) -> None:
    grant = make_grant(vault, entry("openai"))
    now = utcnow()
    limits = Limits(daily_spend=10_000)
    admission = Admission(vault.engine, reservation_ttl=timedelta(seconds=-1))
    held = [admission.admit(grant.grant_id, "openai", limits, 400, now) for _ in range(4)]
    budget = SqlBudget()
    # The last one's process died: its hold went stale and was charged at its worst case.
    stale = Admission(vault.engine).admit(grant.grant_id, "openai", limits, 400, now)
    fresh = Admission(vault.engine)
    late = held[3]
    with vault.engine.begin() as conn:
        assert sweep_stale(conn, budget, utcnow()) == 4
    # Admitted anew, as the first three: held (not stale) this time.
    held = [fresh.admit(grant.grant_id, "openai", limits, 400, now) for _ in range(2)]
    abandoned = fresh.admit(grant.grant_id, "openai", limits, 400, now)
    refused = settled_outcome(grant, held[0], now, 0)
    refused.admitted, refused.reservation_id, refused.status = False, None, 429
    gone = settled_outcome(grant, abandoned, now, 0)
    gone.abandoned = True
    batch: list[Outcome] = [
        settled_outcome(grant, held[0], now, 150),
        settled_outcome(grant, held[1], now, 170),
        settled_outcome(grant, late, now, 90),  # swept, then settled after all
        gone,  # never forwarded: only its hold is released
        refused,  # refused: an audit row, nothing counted
    ]
    write_batch(vault.engine, budget, batch)
    once = ledger(vault, grant.grant_id)
    for _ in range(2):  # acknowledgement lost, written again; and again
        write_batch(vault.engine, budget, batch)
        assert ledger(vault, grant.grant_id) == once
    books, counters, _ = once
    day = counters[day_key(now)]
    # Spend: 3 swept holds still unknown (3 x 400) + 150 + 170 + 90; held: the stale one.
    assert day == (3 * 400 + 150 + 170 + 90, 400, 3 + 3)
    assert len(books.logs) == 3 + 3 + 1  # swept, settled, refused
    assert books.spent_micros == sum(log.cost_micros for log in books.logs)
    assert {log.status for log in books.logs} == {0, 200, 429}
    assert stale.reservation_id and books.reservations == 1


def test_spend_never_goes_below_zero(vault: Vault) -> None:
    """Were a settlement ever subtracted twice, the limit must not be lifted."""
    grant = make_grant(vault, entry("openai"))
    budget = SqlBudget()
    with vault.engine.begin() as conn:
        budget.apply(conn, {(grant.grant_id, "openai", "total"): [100, 0, 1]})
        budget.apply(conn, {(grant.grant_id, "openai", "total"): [-500, -10, -3]})
    counter = spend(vault, grant.grant_id)
    assert counter is not None
    assert (counter.spent_micros, counter.reserved_micros, counter.requests) == (0, 0, 0)
