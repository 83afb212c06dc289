"""The vault's Prometheus metrics, in a registry the app owns (never the library's global one).

Recording sits on the proxy's hot path, so it does no I/O and takes no lock another thread
holds: each call is a dictionary lookup and a few increments of values the event loop alone
touches. Gauges of what the database holds (pending requests, active grants) are read at
scrape time instead (``collectors.py``), never kept up to date per request.

Labels carry no token, key, grant id or account name, and only values from fixed sets:
the configured providers (``unknown`` for a path naming none), the capabilities
(``authorization/capabilities.py``, ``none`` for model listings), and a status code from
:data:`STATUS_CODES` or else its class (``2xx``...). So the number of series is bounded
whatever the apps send.

With ``--workers`` the values live in memory-mapped files under ``PROMETHEUS_MULTIPROC_DIR``
(prometheus-client's multiprocess mode, chosen by that variable when the library is
imported: ``telemetry/multiprocess.py``), and a scrape of any worker sums them all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from okap_server.authorization.capabilities import CAPABILITIES

__all__ = ["CONTENT_TYPE_PLAIN_0_0_4", "STATUS_CODES", "WEBHOOK_OUTCOMES", "VaultMetrics"]

# Codes a proxied request commonly ends with; any other is counted under its class.
STATUS_CODES: frozenset[int] = frozenset(
    {200, 201, 204, 400, 401, 402, 403, 404, 408, 409, 413, 415, 422, 429}
    | {499, 500, 502, 503, 504, 529}
)
_STATUS_LABELS: dict[int, str] = {code: str(code) for code in STATUS_CODES}
_CAPABILITY_LABELS: dict[str | None, str] = {name: name for name in CAPABILITIES}
NO_CAPABILITY = "none"
UNKNOWN_PROVIDER = "unknown"

# How a webhook delivery attempt ended (``okap_webhook_deliveries_total{outcome}``):
# delivered (a 2xx), failed (will be retried), exhausted (the last retry failed),
# refused (the URL's target was refused, e.g. by the SSRF guard).
WEBHOOK_OUTCOMES: tuple[str, ...] = ("delivered", "failed", "exhausted", "refused")

# The proxy's own time is around a millisecond; upstream calls take seconds.
ADDED_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
UPSTREAM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
ADMISSION_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)


def status_label(status: int) -> str:
    """The code itself if it is one of :data:`STATUS_CODES`, else its class."""
    return _STATUS_LABELS.get(status) or f"{max(1, min(status // 100, 5))}xx"


class VaultMetrics:
    """The metrics of one app. ``registry`` is what ``GET /metrics`` exposes.

    ``multiprocess_dir`` set: the values are prometheus-client's memory-mapped ones, shared
    by every worker through that directory, and the registry collects them from there.
    """

    def __init__(self, *, multiprocess_dir: Path | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        own: CollectorRegistry | None = self.registry
        if multiprocess_dir is not None:
            MultiProcessCollector(self.registry, path=str(multiprocess_dir))  # type: ignore[no-untyped-call]
            own = None  # values reach the registry through the files, not as objects
        self.requests = Counter(
            "okap_proxy_requests",
            "Proxied requests, by provider, answer status and capability.",
            ("provider", "status", "capability"),
            registry=own,
        )
        self.added = Histogram(
            "okap_proxy_added_seconds",
            "Time the vault spent on a proxied request, its upstream call excluded.",
            buckets=ADDED_BUCKETS,
            registry=own,
        )
        self.upstream = Histogram(
            "okap_proxy_upstream_seconds",
            "Time of a proxied request's upstream call, to the end of its answer.",
            ("provider",),
            buckets=UPSTREAM_BUCKETS,
            registry=own,
        )
        self.spend = Counter(
            "okap_spend_usd",
            "Spend the proxy charged, in US dollars, by provider.",
            ("provider",),
            registry=own,
        )
        self.admission_wait = Histogram(
            "okap_admission_wait_seconds",
            "Time a proxied request waited to be admitted (rate and spend holds).",
            buckets=ADMISSION_BUCKETS,
            registry=own,
        )
        self.webhook_deliveries = Counter(
            "okap_webhook_deliveries",
            "Webhook delivery attempts, by how they ended.",
            ("outcome",),
            registry=own,
        )
        # Label children, looked up once per label set (labels() takes a lock and checks).
        self._request_children: dict[tuple[str, int, str | None], Any] = {}
        self._upstream_children: dict[str, Any] = {}
        self._spend_children: dict[str, Any] = {}

    def proxy_request(
        self,
        provider: str,
        status: int,
        capability: str | None,
        seconds: float,
        upstream_seconds: float | None = None,
        cost_micros: int = 0,
    ) -> None:
        """One proxied request has ended: ``seconds`` in all, of which ``upstream_seconds``
        waiting on the provider; ``provider`` is a configured provider id or
        :data:`UNKNOWN_PROVIDER`."""
        key = (provider, status, capability)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.requests.labels(
                provider, status_label(status), _CAPABILITY_LABELS.get(capability, NO_CAPABILITY)
            )
        child.inc()
        if upstream_seconds is None:
            self.added.observe(seconds)
        else:
            self.added.observe(max(0.0, seconds - upstream_seconds))
            upstream = self._upstream_children.get(provider)
            if upstream is None:
                upstream = self._upstream_children[provider] = self.upstream.labels(provider)
            upstream.observe(upstream_seconds)
        if cost_micros > 0:
            spend = self._spend_children.get(provider)
            if spend is None:
                spend = self._spend_children[provider] = self.spend.labels(provider)
            spend.inc(cost_micros / 1_000_000)

    def admission_waited(self, seconds: float) -> None:
        self.admission_wait.observe(seconds)

    def webhook_delivery(self, outcome: str) -> None:
        """For the webhook worker: one delivery attempt ended so (:data:`WEBHOOK_OUTCOMES`)."""
        if outcome not in WEBHOOK_OUTCOMES:
            raise ValueError(f"unknown webhook delivery outcome {outcome!r}")
        self.webhook_deliveries.labels(outcome).inc()

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The page and its content type, in the format the scraper accepts (Prometheus
        text 0.0.4 by default, OpenMetrics when asked for). Database gauges included: a
        blocking read, so call it off the event loop."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
