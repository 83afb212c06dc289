"""The webhooks' parts on their own: the SSRF guard's refusals, the retry schedule's span,
threshold crossings, payloads that could carry a secret, and a signing secret that
survives a master key rotation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from okap_server.context import Vault, open_vault
from okap_server.manage.webhooks import create_endpoint
from okap_server.settings import Settings
from okap_server.vault.rotation import rotate_with_key_file
from okap_server.webhooks.events import UnsafePayload, safe_payload
from okap_server.webhooks.models import WebhookEndpoint
from okap_server.webhooks.outbox import RetryPolicy
from okap_server.webhooks.secrets import open_secret
from okap_server.webhooks.thresholds import crossed
from okap_server.webhooks.url_guard import UnsafeUrl, UrlPolicy, check_url
from tests.support.grants import ensure_account


@pytest.mark.parametrize(
    ("url", "policy", "why"),
    [
        ("http://localhost:9000/h", UrlPolicy(allow_loopback_http=False), "loopback"),
        ("https://127.0.0.1/h", UrlPolicy(allow_loopback_http=False), "loopback"),
        ("https://192.168.0.10/h", UrlPolicy(), "private"),
        ("https://[fe80::1]/h", UrlPolicy(allow_private=True), "link-local"),
        ("https://224.0.0.1/h", UrlPolicy(allow_private=True), "multicast"),
        ("https://0.0.0.0/h", UrlPolicy(), "unspecified"),
        ("http://10.0.0.1/h", UrlPolicy(allow_private=True), "must be https"),
        ("javascript:alert(1)", UrlPolicy(), "must be https"),
        ("https:///nohost", UrlPolicy(), "no host"),
        ("https://127.0.0.1:99999/h", UrlPolicy(), "not a valid"),
    ],
)
def test_the_guard_refuses_and_says_why(url: str, policy: UrlPolicy, why: str) -> None:
    with pytest.raises(UnsafeUrl, match=why):
        check_url(url, policy)


def test_the_guard_allows_what_it_should() -> None:
    assert check_url("http://localhost:9/h", UrlPolicy()).address in ("127.0.0.1", "::1")
    assert check_url("https://10.1.2.3/h", UrlPolicy(allow_private=True)).port == 443
    assert check_url("https://93.184.215.14/h", UrlPolicy()).address == "93.184.215.14"


def test_the_retry_schedule_spans_about_a_day() -> None:
    policy = RetryPolicy(jitter=0)
    total = sum((policy.delay(n) for n in range(1, policy.max_attempts)), timedelta())
    assert timedelta(hours=20) < total < timedelta(hours=30)
    assert policy.delay(1) == timedelta(seconds=30)
    jittered = {RetryPolicy().delay(3).total_seconds() for _ in range(20)}
    assert len(jittered) > 1 and all(96 <= d <= 144 for d in jittered)


def test_crossings() -> None:
    assert crossed(0, 550, 1000) == [50]
    assert crossed(550, 850, 1000) == [80]
    assert crossed(850, 860, 1000) == []
    assert crossed(860, 1060, 1000) == [100]
    assert crossed(0, 1000, 1000) == [50, 80, 100]
    assert crossed(1000, 1200, 1000) == []
    assert crossed(0, 10, 0) == []


def test_a_payload_that_could_carry_a_secret_is_refused() -> None:
    safe_payload({"grant_id": "g", "app": {"name": "x"}, "key_id": "key_1"})
    for bad in ({"token": "x"}, {"app": {"secret": "x"}}, {"items": [{"prompt": "x"}]}):
        with pytest.raises(UnsafePayload):
            safe_payload(bad)


def test_a_signing_secret_survives_a_master_key_rotation(vault: Vault, settings: Settings) -> None:
    owner = ensure_account(vault, "rita")
    endpoint, secret = create_endpoint(vault, owner, "https://127.0.0.1/h", None)
    with vault.session() as session:
        rotate_with_key_file(settings, session, vault.keyring)
    vault.dispose()
    reopened = open_vault(settings)
    try:
        with reopened.session() as session:
            row = session.exec(select(WebhookEndpoint)).one()

        class Claimed:
            endpoint_id, account_id = row.id, row.account_id
            master_key_id, nonce, ciphertext = row.master_key_id, row.nonce, row.ciphertext

        assert row.master_key_id == reopened.keyring.current_id
        assert open_secret(reopened.keyring, Claimed()) == secret
    finally:
        reopened.dispose()
    assert endpoint.id == row.id


def test_old_finished_events_are_purged_and_waiting_ones_kept(vault: Vault) -> None:
    from okap_server.clock import utcnow
    from okap_server.webhooks.events import emit
    from okap_server.webhooks.models import WebhookDelivery, WebhookEvent
    from okap_server.webhooks.outbox import purge

    owner = ensure_account(vault, "pat")
    create_endpoint(vault, owner, "https://127.0.0.1/h", None)
    old = utcnow() - timedelta(days=40)
    with vault.session() as session:
        done = emit(session, "grant.revoked", owner, {"grant_id": "g1"}, now=old)
        waiting = emit(session, "grant.revoked", owner, {"grant_id": "g2"}, now=old)
        fresh = emit(session, "grant.revoked", owner, {"grant_id": "g3"})
        session.commit()
        for row in session.exec(select(WebhookDelivery)).all():
            row.status = "pending" if row.event_id == waiting else "delivered"
            session.add(row)
        session.commit()
    assert purge(vault.engine, utcnow(), timedelta(days=30)) == 1
    with vault.session() as session:
        left = {e.id for e in session.exec(select(WebhookEvent)).all()}
    assert left == {waiting, fresh} and done not in left
