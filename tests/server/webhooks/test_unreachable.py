"""An endpoint nobody answers slows nothing: with one webhook URL refusing connections and
another accepting them and never answering (blackholed, cut off by the bounded
``webhook_timeout_seconds``), a consent approval and proxied requests answer as fast as
with no webhooks at all. Deliveries are the worker's; the change only writes the outbox."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from okap_server.settings import Settings
from tests.server.api.test_flows import add_key, chat, personal_token, sdk
from tests.server.authorization.test_device import poll, start
from tests.server.webhooks.conftest import register
from tests.support.person import Person

TIMEOUT = 4.0  # seconds a delivery may wait for an answer
QUICK = 2.0  # what each step must stay under: half of one delivery's timeout


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_timeout_seconds": TIMEOUT})


@pytest.fixture
def refused_url() -> str:
    """A loopback port with nothing listening: the connection is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


@pytest.fixture
def blackhole_url() -> Iterator[str]:
    """A listener that never accepts: the kernel completes the handshake and buffers the
    request, and no answer ever comes."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"


def _timed(step: object) -> float:
    started = time.monotonic()
    assert callable(step)
    step()
    return time.monotonic() - started


def test_unreachable_endpoints_slow_neither_a_consent_nor_the_proxy(
    live_url: str,
    api: httpx.Client,
    owner: tuple[str, str],
    refused_url: str,
    blackhole_url: str,
) -> None:
    add_key(api)
    refused = register(api, refused_url)
    blackholed = register(api, blackhole_url)
    token = str(personal_token(api)["access_token"])  # an event for both, already
    client = sdk(live_url, token)
    with httpx.Client(base_url=live_url) as app, Person(live_url, *owner) as person:
        person.sign_in()  # not timed: a password hash is slow on purpose
        for _ in range(3):  # each round adds events while earlier ones still hang
            started = start(app)
            took = _timed(lambda: person.approve_device(started["user_code"]))
            assert took < QUICK, f"a consent approval took {took:.2f} s"
            took = _timed(lambda: poll(app, started["device_code"]).raise_for_status())
            assert took < QUICK, f"collecting the token took {took:.2f} s"
            took = _timed(lambda: chat(client))
            assert took < QUICK, f"a proxied request took {took:.2f} s"
    # The worker did try both, and failed each within the bounded timeout.
    deadline = time.monotonic() + 3 * TIMEOUT + 5
    errors: dict[str, str] = {}
    while len(errors) < 2 and time.monotonic() < deadline:
        for endpoint in (refused, blackholed):
            log = api.get(f"/webhooks/{endpoint['id']}/deliveries").json()["data"]
            tried = [d for d in log if d["attempts"] and d["last_error"]]
            if tried:
                errors[endpoint["id"]] = tried[0]["last_error"]
        time.sleep(0.1)
    assert errors.get(blackholed["id"]) == f"no answer within {TIMEOUT:g} s", errors
    assert refused["id"] in errors and "within" not in errors[refused["id"]], errors
