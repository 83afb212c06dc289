"""Nested budgets: a delegated grant's requests count against every ancestor's limits.

RFC 8693 token exchange makes grants a tree (``authorization/token_exchange.py``). A
child's spend is held on its ancestors' limited spend periods as on its own
(``holds.hold_rows``), and its requests are counted in their rate windows, in the same
transaction: so a parent's limits hold over the parent and all its children together,
across workers and replicas, with the same atomic conditional upserts. A refusal anywhere
along the chain takes back what the others counted and held.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.engine import Connection

from okap_server.authorization.models import Grant
from okap_server.db.cursor import Cursor
from okap_server.proxy.accounting.holds import hold_rows
from okap_server.proxy.accounting.periods import is_ceiling_scope
from okap_server.proxy.accounting.rate import Counted, RateLimiter
from okap_server.proxy.errors import BudgetExceeded, RateLimited
from okap_server.proxy.grants import Limits

if TYPE_CHECKING:  # both import this module
    from okap_server.proxy.accounting.admission import AdmissionRequest
    from okap_server.proxy.accounting.budget import SqlBudget


def count_and_hold_chain(
    budget: SqlBudget, rate: RateLimiter, cursor: Cursor, r: AdmissionRequest, amount: int, n: int
) -> tuple[Counted, tuple[str, ...]]:
    """Count ``n`` requests in, and hold ``amount`` on, each grant of a delegated entry's
    chain, root first, then the entry itself: all or none (RateLimited or BudgetExceeded
    with nothing counted or held). The entry's own count is returned (its headers), and
    every period held, as ``reserved_periods`` names them.

    Rows are taken grant by grant down the chain, and each grant's in the order its own
    requests take them (spend then rate under a ceiling, else rate then spend; the account's
    and key's ceiling rows first of all). Every transaction therefore locks the rows of a
    tree in one order, that of the grants' paths from the root (``Deltas.place``), which is
    also the order a group's requests are admitted in (``AdmissionRequest.lock_order``):
    groups on different replicas cannot deadlock on PostgreSQL."""
    c = r.ceilings
    rows = hold_rows(r.grant_id, r.provider, r.limits, r.now, c)
    chain = [*c.ancestors, (r.grant_id, r.limits)]
    held: list[str] = []
    counted: list[tuple[str, Counted]] = []
    try:
        for depth, (node, limits) in enumerate(chain):
            mine = [
                w for w in rows if w.scope == node or (depth == 0 and is_ceiling_scope(w.scope))
            ]
            if c.set:
                held.extend(
                    budget.hold_on(cursor, r.grant_id, r.provider, mine, amount, mixed=True)
                )
                counted.append((node, _hit(rate, cursor, r, node, limits, n)))
            else:
                counted.append((node, _hit(rate, cursor, r, node, limits, n)))
                held.extend(
                    budget.hold_on(cursor, r.grant_id, r.provider, mine, amount, mixed=True)
                )
    except (RateLimited, BudgetExceeded):
        budget.unhold(cursor, r.grant_id, r.provider, amount, tuple(held))
        for node, done in counted:
            rate.uncount(cursor, node, r.provider, done)
        raise
    return counted[-1][1], tuple(held)


def _hit(
    rate: RateLimiter,
    cursor: Cursor,
    r: AdmissionRequest,
    node: str,
    limits: Limits,
    n: int,
) -> Counted:
    try:
        return rate.hit(cursor, node, r.provider, limits, r.now, requests=n)
    except RateLimited as exc:
        if node != r.grant_id:
            exc.message = (
                "Rate limit reached on the grant this token was delegated from "
                "(its limit covers every token delegated from it)."
            )
        raise


GRANT_TABLE = Grant.__table__  # type: ignore[attr-defined]


def ancestries(conn: Connection, grant_ids: Set[str]) -> Mapping[str, tuple[str, ...]]:
    """The ancestors of those of ``grant_ids`` that were delegated (the sweeper's charge of
    a stale hold reaches them too; off the request path)."""
    if not grant_ids:
        return {}
    rows = conn.execute(
        select(GRANT_TABLE.c.id, GRANT_TABLE.c.ancestry).where(
            GRANT_TABLE.c.id.in_(sorted(grant_ids)), GRANT_TABLE.c.ancestry.is_not(None)
        )
    )
    return {str(i): tuple(a or ()) for i, a in rows}
