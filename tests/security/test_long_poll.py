"""Long-polls on ``/okap/authorize/{handle}``: a thousand of them, from anyone, leave the
pages and the other apps' polls as fast as ever, because a waiting poll holds no thread;
past the caps a poll is answered at once; an unknown handle is answered at once."""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from okap_server.app import create_app
from okap_server.context import Vault
from okap_server.settings import Settings
from tests.security.conftest import sqlite_only
from tests.support.live import serve_app
from tests.support.person import Person
from tests.support.raw_http import RawRequest, head

pytestmark = sqlite_only

BODY: dict[str, Any] = {
    "okap": "1.0",
    "authorization_details": [{"type": "ai_model_access", "provider": "openai"}],
    "client": {"name": "Notes", "url": "https://notes.example"},
}
POLLS = 1000


@pytest.fixture
def caps(request: pytest.FixtureRequest) -> dict[str, int]:
    return getattr(
        request, "param", {"okap_max_waiting": 2000, "okap_max_waiting_per_request": 2000}
    )


@pytest.fixture
def settings(settings: Settings, caps: dict[str, int]) -> Settings:
    return settings.model_copy(update={"okap_wait_seconds": 30.0, **caps})


@pytest.fixture
def port(live_url: str) -> int:
    return int(live_url.rsplit(":", 1)[1])


def pending(live_url: str) -> dict[str, Any]:
    answer = httpx.post(f"{live_url}/okap/authorize", json=BODY, headers={"Prefer": "wait=0"})
    body: dict[str, Any] = answer.json()
    assert body["status"] == "pending", body
    return body


def poll(port: int, poll_url: str, wait: int) -> RawRequest:
    path = poll_url.split("://", 1)[1].partition("/")[2]
    return RawRequest(port, head("GET", f"/{path}", {"Prefer": f"wait={wait}"}))


@pytest.fixture
def many_sockets() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * POLLS + 512  # both ends of every poll live in this process
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"needs {wanted} open files, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def timed_get(client: httpx.Client, path: str) -> float:
    started = time.monotonic()
    answer = client.get(path)
    took = time.monotonic() - started
    assert answer.status_code == 200, (path, answer.status_code)
    return took


def settle(state: Any, count: int, within: float = 60.0) -> None:
    """Until ``count`` polls wait in the vault (the burst of their arrival, each looked up
    once, is served), seen through the running app's own counter. A vault without one
    (whose polls hold threads) gets the burst's time, 5 s."""
    watch = getattr(state, "decisions", None)
    if watch is None:
        time.sleep(5)
        return
    deadline = time.monotonic() + within
    while watch.waiting < count:
        assert time.monotonic() < deadline, f"only {watch.waiting} of {count} polls wait"
        time.sleep(0.1)


def test_a_thousand_long_polls_leave_the_pages_fast(
    vault: Vault, settings: Settings, owner: tuple[str, str], openai_key: str, many_sockets: None
) -> None:
    served = create_app(vault)
    with serve_app(served, settings.port) as live_url, Person(live_url, *owner) as person:
        port = settings.port
        attacker = pending(live_url)
        app = pending(live_url)
        person.sign_in()
        waiting = poll(port, app["poll_url"], wait=25)
        polls = [poll(port, attacker["poll_url"], wait=25) for _ in range(POLLS)]
        try:
            settle(served.state, POLLS + 1)
            took = sorted(
                [timed_get(person.client, "/healthz") for _ in range(5)]
                + [timed_get(person.client, "/consent") for _ in range(5)]
            )
            # The median, and every one within a bound a busy shared CI machine still meets.
            assert took[len(took) // 2] < 0.5, f"pages took {took} beside {POLLS} long-polls"
            assert took[-1] < 2.0, f"pages took {took} beside {POLLS} long-polls"
            assert not any(p.answered() for p in polls), "a poll did not wait"
            # A real approval still releases the app's own poll at once.
            person.approve(app["consent_url"])
            approved = time.monotonic()
            answer = waiting.answer(timeout=10)
            assert answer is not None and answer.status == 200
            assert b'"status":"granted"' in answer.body, answer.body
            assert time.monotonic() - approved < 2.0
        finally:
            waiting.close()
            for request in polls:
                request.close()


@pytest.mark.parametrize(
    "caps", [{"okap_max_waiting": 2, "okap_max_waiting_per_request": 1}], indirect=True
)
def test_a_poll_past_a_cap_is_answered_at_once(live_url: str, port: int) -> None:
    first, second = pending(live_url), pending(live_url)
    held = [poll(port, first["poll_url"], wait=20)]
    try:
        time.sleep(0.5)
        # The same request once more: past the per-request cap of 1.
        with poll(port, first["poll_url"], wait=20) as again:
            answer = again.answer(timeout=3)
            assert answer is not None and b'"status":"pending"' in answer.body
        held.append(poll(port, second["poll_url"], wait=20))
        time.sleep(0.5)
        # A third poll, on either request: past the total cap of 2.
        with poll(port, second["poll_url"], wait=20) as third:
            answer = third.answer(timeout=3)
            assert answer is not None and b'"status":"pending"' in answer.body
        assert not any(p.answered() for p in held)  # those two still wait
    finally:
        for request in held:
            request.close()
    # Once they are gone, a poll waits again (its slot came back).
    time.sleep(1.5)
    with poll(port, first["poll_url"], wait=2) as later:
        started = time.monotonic()
        answer = later.answer(timeout=5)
        assert answer is not None and time.monotonic() - started > 1.5


def test_an_unknown_handle_is_answered_at_once(live_url: str) -> None:
    started = time.monotonic()
    answer = httpx.get(f"{live_url}/okap/authorize/no-such-handle", headers={"Prefer": "wait=20"})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    assert time.monotonic() - started < 2
