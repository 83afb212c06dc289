"""Upstream faults through real sockets: the app's SDK raises its usual exception, the vault
stays up, and the books stay right (a request that never reached the provider, or that it
answered with an error, costs nothing; one it may have processed without answering, a
half-streamed one, or a late answer, is charged above $0; no hold is left behind; nothing
that may have been processed is sent twice)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import anthropic
import openai
import pytest
from google.genai import errors as genai_errors

from okap_server.context import Vault
from tests.reliability.books import assert_balanced, settled_books
from tests.reliability.faults import Fault, FaultyUpstream
from tests.server.proxy.test_sdks import anthropic_client, google_client, openai_client
from tests.support.grants import entry, make_grant

HI = [{"role": "user", "content": "hi"}]
PROVIDERS = ["openai", "anthropic", "google"]
LIMITED = {"daily_spend": 5.0}

# What each SDK raises for a 5xx answer: its usual class, so apps need no okap-specific code.
SERVER_ERROR: dict[str, type[Exception]] = {
    "openai": openai.InternalServerError,
    "anthropic": anthropic.InternalServerError,
    "google": genai_errors.ServerError,
}


def call(provider: str, live_url: str, token: str) -> str:
    """One plain (non-streamed) call with the provider's SDK; returns the answer's text."""
    if provider == "openai":
        answer = openai_client(live_url, token).chat.completions.create(
            model="gpt-4o-mini", messages=HI, max_tokens=100
        )
        return answer.choices[0].message.content or ""
    if provider == "anthropic":
        message = anthropic_client(live_url, token).messages.create(
            model="claude-haiku-4-5", max_tokens=100, messages=HI
        )
        return "".join(getattr(block, "text", "") for block in message.content)
    client = google_client(live_url, token)  # keep a reference: it closes when collected
    result = client.models.generate_content(
        model="gemini-2.0-flash", contents="hi", config={"max_output_tokens": 100}
    )
    return result.text or ""


def stream(provider: str, live_url: str, token: str) -> str:
    """One streamed call, read to the end; returns the text."""
    if provider == "openai":
        chunks = openai_client(live_url, token).chat.completions.create(
            model="gpt-4o-mini", messages=HI, max_tokens=100, stream=True
        )
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    if provider == "anthropic":
        with anthropic_client(live_url, token).messages.stream(
            model="claude-haiku-4-5", max_tokens=100, messages=HI
        ) as events:
            return "".join(events.text_stream)
    client = google_client(live_url, token)
    pieces = client.models.generate_content_stream(
        model="gemini-2.0-flash", contents="hi", config={"max_output_tokens": 100}
    )
    text = "".join(piece.text or "" for piece in pieces)
    client.close()
    return text


def status_of(exc: BaseException) -> int | None:
    for name in ("status_code", "code"):
        value = getattr(exc, name, None)
        if isinstance(value, int):
            return value
    return None


# (faults scripted for one request, counting retries; the status the app must see; whether
# the provider may have processed it, so it is charged its worst case)
REQUEST_FAULTS: list[tuple[str, list[Fault], int, bool]] = [
    ("reset after reading the request", [Fault.RESET], 502, True),
    ("slow past the read timeout", [Fault.HANG], 504, True),
    ("500", [Fault.STATUS_500], 500, False),
    ("503 after every retry", [Fault.STATUS_503, Fault.STATUS_503], 503, False),
    ("down (connection refused)", [], 502, False),
]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_failed_request_is_a_native_error_billed_only_if_it_was_sent_and_the_next_works(
    vault: Vault, live_url: str, faulty: FaultyUpstream, provider: str
) -> None:
    grant = make_grant(vault, entry(provider, limits=LIMITED))
    for name, faults, status, _ in REQUEST_FAULTS:
        faulty.script(*faults)
        if not faults:
            faulty.down()
        try:
            with pytest.raises(SERVER_ERROR[provider]) as failed:
                call(provider, live_url, grant.token)
        finally:
            if not faults:
                faulty.up()
        assert status_of(failed.value) == status, name
        # The vault is still up: the very next request goes through.
        assert "fake upstream" in call(provider, live_url, grant.token), name
    count = 2 * len(REQUEST_FAULTS)
    books = settled_books(vault, grant.grant_id, count)
    assert_balanced(books, count)
    failed_logs, fine_logs = books.logs[0::2], books.logs[1::2]
    assert [log.status for log in failed_logs] == [status for _, _, status, _ in REQUEST_FAULTS]
    for log, (name, _, _, charged) in zip(failed_logs, REQUEST_FAULTS, strict=True):
        if charged:  # it reached the provider, which may have billed it: never $0
            assert (log.error_type, log.cost_micros > 0) == ("outcome_unknown", True), name
        else:  # never processed, or answered with an error: nothing billable came back
            assert log.cost_micros == 0, name
    assert all(log.status == 200 and log.cost_micros > 0 for log in fine_logs)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("fault", [Fault.CLOSE, Fault.RESET])
def test_a_request_read_and_dropped_by_the_upstream_is_never_retried_and_is_charged(
    vault: Vault, live_url: str, faulty: FaultyUpstream, provider: str, fault: Fault
) -> None:
    """The upstream read the whole request, then closed without answering: it may have
    processed it, so sending it again could run (and bill) it twice."""
    grant = make_grant(vault, entry(provider, limits=LIMITED))
    faulty.script(*[fault] * 3)
    for _ in range(3):  # each app call puts exactly one request upstream
        with pytest.raises(SERVER_ERROR[provider]) as failed:
            call(provider, live_url, grant.token)
        assert status_of(failed.value) == 502
    assert [seen.fault for seen in faulty.seen] == [fault] * 3
    books = settled_books(vault, grant.grant_id, 3)
    assert_balanced(books, 3)
    for log in books.logs:
        assert (log.status, log.error_type) == (502, "outcome_unknown")
        assert log.cost_micros > 0  # its worst case
    assert books.spent_micros == sum(log.cost_micros for log in books.logs)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_answer_after_the_read_timeout_is_charged(
    vault: Vault, live_url: str, faulty: FaultyUpstream, provider: str
) -> None:
    """The provider answers 200 with usage, but only after the vault gave up: it billed
    the answer, so the vault charges the request's worst case, not $0."""
    grant = make_grant(vault, entry(provider, limits=LIMITED))
    faulty.script(Fault.LATE)
    with pytest.raises(SERVER_ERROR[provider]) as failed:
        call(provider, live_url, grant.token)
    assert status_of(failed.value) == 504
    assert [seen.fault for seen in faulty.seen] == [Fault.LATE]  # not sent again
    (log,) = settled_books(vault, grant.grant_id, 1).logs
    assert (log.status, log.error_type) == (504, "outcome_unknown")
    assert log.cost_micros > 0


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_answer_that_is_not_json_is_a_native_error(
    vault: Vault, live_url: str, faulty: FaultyUpstream, provider: str
) -> None:
    """A 200 whose JSON body does not parse must not reach the SDK as a success."""
    grant = make_grant(vault, entry(provider, limits=LIMITED))
    faulty.script(Fault.INVALID_JSON)
    with pytest.raises(SERVER_ERROR[provider]) as failed:
        call(provider, live_url, grant.token)
    assert status_of(failed.value) == 502
    assert "fake upstream" in call(provider, live_url, grant.token)
    books = settled_books(vault, grant.grant_id, 2)
    assert_balanced(books, 2)


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_answer_cut_off_mid_body_is_a_native_error_billed_and_not_retried(
    vault: Vault, live_url: str, faulty: FaultyUpstream, provider: str
) -> None:
    """The provider answered 200 and broke off within its body: it may have billed the
    answer, so the request is not sent again, and it is settled above $0."""
    grant = make_grant(vault, entry(provider, limits=LIMITED))
    faulty.script(Fault.CUT_JSON)
    with pytest.raises(SERVER_ERROR[provider]) as failed:
        call(provider, live_url, grant.token)
    assert status_of(failed.value) == 502
    assert [seen.fault for seen in faulty.seen] == [Fault.CUT_JSON]  # no retry
    assert "fake upstream" in call(provider, live_url, grant.token)
    books = settled_books(vault, grant.grant_id, 2)
    assert_balanced(books, 2)
    assert books.logs[0].status == 502 and books.logs[0].cost_micros > 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_broken_stream_raises_in_the_app_and_is_settled_above_zero(
    vault: Vault, live_url: str, faulty: FaultyUpstream, provider: str
) -> None:
    grant = make_grant(vault, entry(provider, limits=LIMITED))
    faults = [Fault.RESET_MID_STREAM, Fault.GARBAGE_SSE]
    for fault in faults:
        faulty.script(fault)
        with pytest.raises(Exception) as broke:  # noqa: PT011 - each SDK has its own
            text = stream(provider, live_url, grant.token)
            raise AssertionError(f"a broken stream read as a whole answer: {text!r}")
        assert not isinstance(broke.value, AssertionError), broke.value
        assert "fake upstream" in stream(provider, live_url, grant.token)
    count = 2 * len(faults)
    books = settled_books(vault, grant.grant_id, count)
    assert_balanced(books, count)
    reset, _, garbage, _ = books.logs
    assert (reset.status, reset.error_type) == (502, "upstream_stream_broken")
    for half in (reset, garbage):
        assert half.streamed and half.cost_micros > 0  # never $0 for what may have been billed
    assert all(log.status == 200 and log.cost_micros > 0 for log in books.logs[1::2])
    # Bytes had reached the app, so the vault retried neither broken stream.
    assert len(faulty.seen) == count


ERROR_CLASSES: dict[str, tuple[type[Exception], ...]] = {
    "openai": (openai.RateLimitError, openai.InternalServerError),
    "anthropic": (anthropic.RateLimitError, anthropic.InternalServerError),
}


def test_a_429_and_5xx_storm(vault: Vault, live_url: str, faulty: FaultyUpstream) -> None:
    grant = make_grant(vault, entry("openai", limits=LIMITED), entry("anthropic", limits=LIMITED))
    faulty.storm(Fault.PASS, Fault.STATUS_429, Fault.STATUS_500, Fault.STATUS_502, Fault.STATUS_503)
    outcomes: dict[str, int] = {"ok": 0, "native": 0}

    def one(n: int) -> str:
        provider = ("openai", "anthropic")[n % 2]
        try:
            (call if n % 3 else stream)(provider, live_url, grant.token)
        except ERROR_CLASSES[provider] as exc:
            assert status_of(exc) in (429, 500, 502, 503)
            return "native"
        return "ok"

    total = 60
    with ThreadPoolExecutor(max_workers=12) as pool:
        for result in pool.map(one, range(total)):
            outcomes[result] += 1
    assert outcomes["ok"] > 0 and outcomes["native"] > 0
    faulty.default = Fault.PASS
    assert "fake upstream" in call("openai", live_url, grant.token)  # still up
    books = settled_books(vault, grant.grant_id, total + 1)
    assert_balanced(books, total + 1)
    failed = [log for log in books.logs if log.status != 200]
    assert len(failed) == outcomes["native"]
    assert all(log.cost_micros == 0 for log in failed)
    assert all(log.cost_micros > 0 for log in books.logs if log.status == 200)
