"""Gauges read from the database when Prometheus scrapes, not kept up to date per request.

The proxy never pays for them, and every worker and replica reports the same numbers (the
database's), so a scrape of any one is right. A database that does not answer leaves them
out of that scrape (the counters are still served) and logs why.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from okap_server.authorization.models import AuthorizationRequest, Grant
from okap_server.clock import utcnow

log = logging.getLogger("okap.telemetry")


class DatabaseGauges(Collector):
    """``okap_pending_requests`` and ``okap_grants_active``, counted at scrape time."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def describe(self) -> list[Metric]:
        return []  # no read at registration; names are checked when collected

    def counts(self) -> tuple[int, int]:
        now = utcnow()
        with Session(self.engine) as session:
            pending = session.exec(
                select(func.count())
                .select_from(AuthorizationRequest)
                .where(
                    col(AuthorizationRequest.status) == "pending",
                    col(AuthorizationRequest.expires_at) > now,
                )
            ).one()
            active = session.exec(
                select(func.count())
                .select_from(Grant)
                .where(col(Grant.revoked_at).is_(None), col(Grant.expires_at) > now)
            ).one()
        return int(pending), int(active)

    def collect(self) -> Iterator[Metric]:
        try:
            pending, active = self.counts()
        except Exception as exc:
            log.warning("metrics: could not count from the database: %s", type(exc).__name__)
            return
        yield GaugeMetricFamily(
            "okap_pending_requests",
            "Access requests waiting for a person's decision.",
            value=pending,
        )
        yield GaugeMetricFamily(
            "okap_grants_active",
            "Grants neither revoked nor expired.",
            value=active,
        )
