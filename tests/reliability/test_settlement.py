"""A hold whose process died is charged by the sweeper; if the request's own record arrives
later it corrects the charge. Every spend period the vault reports must agree afterwards."""

from __future__ import annotations

from datetime import timedelta

import pytest

from okap_server.clock import utcnow
from okap_server.context import Vault
from okap_server.proxy.admission import Admission
from okap_server.proxy.grants import Limits
from okap_server.proxy.limits import SqlBudget, day_key, month_key
from okap_server.proxy.recorder import sweep_stale, write_batch
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
