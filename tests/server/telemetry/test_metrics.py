"""``GET /metrics`` over real HTTP: real SDK calls through the proxy against the fake
upstream, the page parsed by prometheus-client's own parser, the counts matching the
requests made, and no secret in any line."""

from __future__ import annotations

import httpx
import openai
import pytest
from sqlmodel import func, select

from okap_server.context import Vault
from okap_server.grants.capabilities import CAPABILITIES
from okap_server.proxy.models import RequestLog
from okap_server.telemetry.metrics import (
    STATUS_CODES,
    WEBHOOK_OUTCOMES,
    VaultMetrics,
    status_label,
)
from tests.server.api.conftest import mint
from tests.server.proxy.records import wait_for_logs
from tests.server.telemetry.conftest import Samples, parse, scrape, scrape_until, total, value
from tests.support.fake_upstream import FakeUpstream, FakeUsage
from tests.support.grants import FAKE_KEYS, entry, make_grant, revoke
from tests.support.live import secret_in_url, serve_app

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def make_calls(live_url: str, token: str) -> None:
    """5 chats (2 streamed), 1 embedding, 1 refused capability, 1 bad token, 1 unknown
    provider: 9 requests, 6 of them forwarded."""
    client = openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=token, max_retries=0)
    for _ in range(3):
        client.chat.completions.create(**CHAT)
    for _ in range(2):
        stream = client.chat.completions.create(
            **CHAT, stream=True, stream_options={"include_usage": True}
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    client.embeddings.create(model="text-embedding-3-small", input="hello")
    with pytest.raises(openai.PermissionDeniedError):
        client.images.generate(model="dall-e-3", prompt="a cat")
    wrong = openai.OpenAI(
        base_url=f"{live_url}/v1/openai", api_key="okap_" + "x" * 40, max_retries=0
    )
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(**CHAT)
    assert httpx.get(f"{live_url}/v1/nosuch/models").status_code == 404


def forwarded_all(samples: Samples) -> bool:
    return value(samples, "okap_proxy_requests_total", **OK_CHAT) >= 5


OK_CHAT = {"provider": "openai", "status": "200", "capability": "chat"}


def test_metrics_count_the_requests_made(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.usage["openai"] = FakeUsage(input=1000, output=500)
    grant = make_grant(vault, entry("openai", models=["gpt-4o-mini", "text-embedding-3-*"]))
    revoke(vault, make_grant(vault, entry("openai")).grant_id)  # not active
    token = mint(vault, "ops", ["metrics:read"], admin=True)

    make_calls(live_url, grant.token)
    text, samples = scrape_until(live_url, token, forwarded_all)

    requests = "okap_proxy_requests_total"
    assert value(samples, requests, **OK_CHAT) == 5
    assert value(samples, requests, provider="openai", status="200", capability="embeddings") == 1
    assert value(samples, requests, provider="openai", status="403", capability="images") == 1
    assert value(samples, requests, provider="openai", status="401", capability="none") == 1
    assert value(samples, requests, provider="unknown", status="404", capability="none") == 1
    assert total(samples, requests) == 9
    assert value(samples, "okap_proxy_added_seconds_count") == 9
    assert value(samples, "okap_proxy_upstream_seconds_count", provider="openai") == 6
    assert value(samples, "okap_admission_wait_seconds_count") == 6
    assert value(samples, "okap_grants_active") == 1
    assert value(samples, "okap_pending_requests") == 0
    assert value(samples, "okap_webhook_deliveries_total", outcome="delivered") == 0

    # The spend counter agrees with what the audit recorded.
    wait_for_logs(vault, 8)
    with vault.session() as session:
        micros = int(session.exec(select(func.sum(RequestLog.cost_micros))).one() or 0)
    assert micros > 0
    assert value(samples, "okap_spend_usd_total", provider="openai") == pytest.approx(
        micros / 1_000_000, rel=1e-9
    )

    # Scraping changes nothing; no secret and no identity in any line.
    assert total(scrape(live_url, token)[1], requests) == 9
    with vault.session() as session:
        account_ids = {row.account_id for row in session.exec(select(RequestLog))}
    for secret in (grant.token, grant.grant_id, token, FAKE_KEYS["openai"], *account_ids):
        assert secret not in text
    for name in ("grant-owner", "Test App", "okap_x", "grt_", "log_", "rsv_"):
        assert name not in text
    assert_bounded_labels(vault, samples)


def assert_bounded_labels(vault: Vault, samples: Samples) -> None:
    """Every label value comes from a fixed set: nothing an app or a person chose."""
    allowed = {
        "provider": {row.id for row in vault.providers.rows()} | {"unknown"},
        "capability": {*CAPABILITIES, "none"},
        "status": {str(code) for code in STATUS_CODES} | {"1xx", "2xx", "3xx", "4xx", "5xx"},
        "outcome": set(WEBHOOK_OUTCOMES),
    }
    for name, labels in samples:
        for label, seen in labels:
            if label == "le":
                float(seen)
            else:
                assert seen in allowed[label], (name, label, seen)


def test_metrics_need_a_token_with_the_scope(vault: Vault, live_url: str) -> None:
    none = httpx.get(f"{live_url}/metrics")
    assert none.status_code == 401
    assert none.headers["content-type"].startswith("application/problem+json")
    assert none.headers["www-authenticate"].startswith("Bearer")
    proxy_token = make_grant(vault, entry("openai")).token
    as_proxy = httpx.get(f"{live_url}/metrics", headers={"Authorization": f"Bearer {proxy_token}"})
    assert as_proxy.status_code == 401
    other_scope = mint(vault, "ops", ["usage:read"], admin=True)
    refused = httpx.get(f"{live_url}/metrics", headers={"Authorization": f"Bearer {other_scope}"})
    assert refused.status_code == 403
    assert "metrics:read" in refused.json()["detail"]
    with secret_in_url():
        metrics_token = mint(vault, "ops", ["metrics:read"], admin=True)
        in_query = httpx.get(f"{live_url}/metrics", params={"token": metrics_token})
    assert in_query.status_code == 400
    assert "okapm_" not in in_query.text


def test_metrics_public_needs_no_token(vault: Vault) -> None:
    from okap_server.app import create_app

    vault.settings = vault.settings.model_copy(update={"metrics_public": True})
    with serve_app(create_app(vault), vault.settings.port) as url:
        _, samples = scrape(url, None)
    assert value(samples, "okap_grants_active") == 0


def test_the_webhook_worker_counts_deliveries_by_outcome() -> None:
    """``VaultMetrics.webhook_delivery`` is what the webhook worker calls per attempt."""
    metrics = VaultMetrics()
    for outcome in ("delivered", "delivered", "failed", "exhausted", "refused"):
        metrics.webhook_delivery(outcome)
    with pytest.raises(ValueError, match="unknown webhook delivery outcome"):
        metrics.webhook_delivery("https://hooks.example/secret")  # never a label
    body, content_type = metrics.exposition(None)
    samples = parse(body.decode())
    name = "okap_webhook_deliveries_total"
    assert value(samples, name, outcome="delivered") == 2
    assert value(samples, name, outcome="failed") == 1
    assert total(samples, name) == 5
    assert content_type.startswith("text/plain; version=0.0.4")
    # OpenMetrics when the scraper asks for it.
    _, asked = metrics.exposition("application/openmetrics-text;version=1.0.0")
    assert asked.startswith("application/openmetrics-text")


def test_an_unlisted_status_is_counted_by_its_class() -> None:
    assert [status_label(s) for s in (200, 429, 418, 302, 599)] == [
        "200",
        "429",
        "4xx",
        "3xx",
        "5xx",
    ]
