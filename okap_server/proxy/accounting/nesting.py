"""Nested budgets: a delegated grant's requests count against every ancestor's limits.

RFC 8693 token exchange makes grants a tree (``authorization/token_exchange.py``). A
child's spend is held on its ancestors' limited spend periods in the same statement as
its own (``holds.hold_rows``), and its requests are counted in their rate windows here, in
the same transaction: so a parent's limits hold over the parent and all its children
together, across workers and replicas, with the same atomic conditional upserts. A
refusal anywhere along the chain takes back what the others counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.engine import Connection

from okap_server.authorization.models import Grant
from okap_server.db.cursor import Cursor
from okap_server.proxy.accounting.rate import Counted, RateLimiter
from okap_server.proxy.errors import RateLimited

if TYPE_CHECKING:
    from okap_server.proxy.accounting.admission import AdmissionRequest


def hit_chain(rate: RateLimiter, cursor: Cursor, r: AdmissionRequest, requests: int) -> Counted:
    """Count ``requests`` in the rate windows of each ancestor (root first), then of the
    grant itself; all or none. The grant's own count is returned (its headers)."""
    done: list[tuple[str, Counted]] = []
    try:
        for ancestor, limits in r.ceilings.ancestors:
            try:
                done.append(
                    (ancestor, rate.hit(cursor, ancestor, r.provider, limits, r.now, requests))
                )
            except RateLimited as exc:
                exc.message = (
                    "Rate limit reached on the grant this token was delegated from "
                    "(its limit covers every token delegated from it)."
                )
                raise
        return rate.hit(cursor, r.grant_id, r.provider, r.limits, r.now, requests=requests)
    except RateLimited:
        for ancestor, counted in done:
            rate.uncount(cursor, ancestor, r.provider, counted)
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
