"""Upstream trouble: retries only of what was not processed, native 502/504,
OpenAI-compatible rows."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest
from google.genai import errors as genai_errors
from sqlmodel import select

from okap_server.context import Vault, open_vault
from okap_server.proxy.errors import UpstreamTimeout, UpstreamUnavailable
from okap_server.proxy.models import Reservation
from okap_server.proxy.upstream import UpstreamPool, retry_after_seconds
from okap_server.settings import CustomProvider, Settings
from tests.server.proxy.records import wait_for_logs
from tests.server.proxy.test_sdks import google_client, openai_client
from tests.support.fake_upstream import FakeUpstream, Respond
from tests.support.grants import FAKE_KEYS, entry, make_grant
from tests.support.live import free_port, serve_vault

HI = [{"role": "user", "content": "hi"}]


def test_a_503_is_retried_then_succeeds(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    grant = make_grant(vault, entry("openai"), entry("google"))
    fake_upstream.script("openai", Respond(503), Respond(429, retry_after="0"))
    answer = openai_client(live_url, grant.token).chat.completions.create(
        model="gpt-4o-mini", messages=HI
    )
    assert answer.choices[0].message.content
    assert len(fake_upstream.requests_for("openai")) == 3
    # A 502 does not say the request went unprocessed: it is passed on, never sent twice.
    fake_upstream.script("google", Respond(502))
    gemini = google_client(live_url, grant.token)
    with pytest.raises(genai_errors.ServerError) as failed:
        gemini.models.generate_content(model="gemini-2.0-flash", contents="hi")
    assert failed.value.code == 502
    assert len(fake_upstream.requests_for("google")) == 1
    logs = wait_for_logs(vault, 2)
    assert [log.status for log in logs] == [200, 502]


def test_retries_are_bounded_and_the_last_answer_passes_through(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    grant = make_grant(vault, entry("openai", limits={"daily_spend": 1.0}))
    fake_upstream.script("openai", *[Respond(503)] * 5)
    with pytest.raises(openai.InternalServerError) as failed:
        openai_client(live_url, grant.token).chat.completions.create(
            model="gpt-4o-mini", messages=HI
        )
    assert failed.value.status_code == 503
    assert len(fake_upstream.received) == vault.settings.proxy_retry_attempts
    (log,) = wait_for_logs(vault, 1)
    assert log.status == 503 and log.cost_micros == 0  # the provider billed nothing


def pool(handler: httpx.MockTransport, **overrides: object) -> UpstreamPool:
    settings = Settings(proxy_retry_base_seconds=0.0, **overrides)  # type: ignore[arg-type]
    return UpstreamPool(settings, transport=handler)


def test_connection_errors_become_502_and_timeouts_504() -> None:
    attempts = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    request = httpx.Request("POST", "https://api.example/v1/x", headers={"authorization": "k"})
    with pytest.raises(UpstreamUnavailable) as refused:
        asyncio.run(pool(httpx.MockTransport(refuse)).send(request))
    assert len(attempts) == 3
    assert "api.example" not in str(refused.value) and refused.value.__cause__ is None

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(UpstreamTimeout) as timed_out:
        asyncio.run(pool(httpx.MockTransport(slow)).send(request))
    assert timed_out.value.status == 504


@pytest.mark.parametrize(
    ("failure", "error", "attempts", "unknown"),
    [
        # Not sent in full: the provider cannot have processed it, so it is sent again.
        (httpx.ConnectError, UpstreamUnavailable, 3, False),
        (httpx.ConnectTimeout, UpstreamTimeout, 3, False),
        (httpx.WriteError, UpstreamUnavailable, 3, False),
        # Sent: it may have been processed (and billed), so it is never sent twice.
        (httpx.RemoteProtocolError, UpstreamUnavailable, 1, True),
        (httpx.ReadError, UpstreamUnavailable, 1, True),
        (httpx.ReadTimeout, UpstreamTimeout, 1, True),
    ],
)
def test_only_a_request_that_cannot_have_been_processed_is_retried(
    failure: type[httpx.TransportError], error: type[Exception], attempts: int, unknown: bool
) -> None:
    sent = []

    def fail(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        raise failure("broken", request=request)

    request = httpx.Request("POST", "https://api.example/v1/x", content=b"{}")
    with pytest.raises(error) as failed:
        asyncio.run(pool(httpx.MockTransport(fail)).send(request))
    assert len(sent) == attempts
    assert failed.value.outcome_unknown is unknown  # type: ignore[attr-defined]


def test_retry_after_is_read_as_seconds_or_a_date() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_seconds("soon") is None


def test_an_unreachable_upstream_answers_502_in_the_native_shape(
    settings: Settings, vault: Vault, fake_upstream: FakeUpstream
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    custom = settings.model_copy(
        update={
            "port": free_port(),
            "upstreams": {**settings.upstreams, "openai": f"{dead}/v1"},
            "providers": [
                CustomProvider(id="localllm", base_url=fake_upstream.upstreams()["openai"])
            ],
        }
    )
    other = open_vault(custom)
    try:
        grant = make_grant(other, entry("openai"), entry("localllm"))
        with serve_vault(other) as url:
            with pytest.raises(openai.InternalServerError) as failed:
                openai_client(url, grant.token).chat.completions.create(
                    model="gpt-4o-mini", messages=HI
                )
            assert failed.value.status_code == 502
            assert failed.value.code == "upstream_unavailable"
            assert dead not in str(failed.value.body)
            # An OpenAI-compatible provider added in config is one row: it just works.
            local = openai.OpenAI(base_url=f"{url}/v1/localllm", api_key=grant.token, max_retries=0)
            assert local.chat.completions.create(model="llama3", messages=HI).choices
        sent = fake_upstream.requests_for("openai")[-1]
        assert sent.headers["authorization"] == "Bearer sk-test-localllm-0123456789"
        assert FAKE_KEYS["openai"] not in repr(sent.headers)
    finally:
        other.dispose()


def test_a_clean_shutdown_flushes_every_record(
    settings: Settings, vault: Vault, fake_upstream: FakeUpstream
) -> None:
    """The writer waits a minute between batches here; stopping the server must not lose
    the records it holds."""
    slow_writer = settings.model_copy(
        update={"port": free_port(), "proxy_audit_flush_seconds": 60.0}
    )
    other = open_vault(slow_writer)
    try:
        grant = make_grant(other, entry("openai", limits={"daily_spend": 1.0}))
        with serve_vault(other) as url:
            client = openai_client(url, grant.token)
            for _ in range(3):
                client.chat.completions.create(model="gpt-4o-mini", messages=HI)
            assert wait_for_logs(other, 1, timeout=0.3) == []  # still held in memory
        rows = wait_for_logs(other, 3, timeout=0)
        assert [row.status for row in rows] == [200, 200, 200]
        with other.session() as session:
            assert session.exec(select(Reservation)).all() == []  # every hold settled
    finally:
        other.dispose()


class BrokenTransport(httpx.AsyncBaseTransport):
    """A fault inside the vault itself, not an upstream error (no httpx.TransportError)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise RuntimeError("a bug in the vault")


def test_a_fault_of_the_vault_itself_is_a_500_in_the_providers_shape(
    vault: Vault, fake_upstream: FakeUpstream
) -> None:
    """The proxy's front door sits outside the page stack's error layer, so it answers its
    own faults: the SDK raises its usual 500 error, and the server stays up."""
    grant = make_grant(vault, entry("openai"))
    vault.proxy_transport = BrokenTransport()
    with serve_vault(vault) as url:
        client = openai_client(url, grant.token).with_options(max_retries=0)
        with pytest.raises(openai.InternalServerError) as failed:
            client.chat.completions.create(model="gpt-4o-mini", messages=HI)
        assert failed.value.status_code == 500
        assert failed.value.code == "internal_error"
        assert failed.value.response.headers["x-okap-error"] == "internal_error"
        assert httpx.get(f"{url}/healthz").status_code == 200
    assert fake_upstream.requests_for("openai") == []
    (log,) = wait_for_logs(vault, 1)
    # Audited as what it was, and charged at its worst case: it was admitted.
    assert (log.status, log.error_type) == (500, "internal_error")
    assert log.cost_micros > 0
