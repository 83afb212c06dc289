"""Request bodies, over real HTTP: bounded per endpoint and refused before they are read,
never multipart, cut off when they trickle, and a proxy body read only for a good token.

The checks send a request's head and hold its body back (``tests/support/raw_http.py``):
an answer that arrives before the body was sent is an answer given without reading it.
One test also measures the memory of a real ``okap-server serve`` process under a flood.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from okap_server.context import Vault
from okap_server.grants.tokens import new_access_token
from okap_server.settings import Settings
from tests.security.conftest import sqlite_only
from tests.support.fake_upstream import FakeUpstream
from tests.support.grants import entry, make_grant, revoke
from tests.support.process import server_env, vault_process
from tests.support.raw_http import RawAnswer, RawRequest, head

pytestmark = sqlite_only

MiB = 1024 * 1024
FORM = "application/x-www-form-urlencoded"
CHAT = "/v1/openai/chat/completions"
PAGES = [
    "/signin",
    "/setup",
    "/device",
    "/signout",
    "/keys",
    "/consent/req_x",
    "/pending/x/approve",
]
PROTOCOL = ["/oauth/token", "/oauth/par", "/oauth/device_authorization", "/oauth/revoke"]
OKAP = ["/okap/authorize", "/okap/request"]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "proxy_max_body_bytes": 32 * MiB,
            "body_timeout_seconds": 1.0,
            "body_min_bytes_per_second": 1024,
        }
    )


@pytest.fixture
def port(live_url: str) -> int:
    return int(live_url.rsplit(":", 1)[1])


def held_back(port: int, path: str, length: int, **headers: str) -> RawRequest:
    """A POST whose head says ``length`` bytes follow, and none do (yet)."""
    fields = {"Content-Type": FORM, **headers, "Content-Length": str(length)}
    return RawRequest(port, head("POST", path, fields))


def assert_refused_in_style(path: str, answer: RawAnswer | None, status: int) -> None:
    assert answer is not None, f"{path}: no answer while the body was held back"
    assert answer.status == status, (path, answer.status, answer.body[:200])
    assert answer.headers.get("connection") == "close", path
    if path.startswith(("/oauth/", "/okap/")):
        body = json.loads(answer.body)
        assert body["error"] == "invalid_request", (path, body)
        if path.startswith("/okap/"):
            assert body["okap"] == "1.0" and body["status"] == "error", body
    else:
        assert answer.headers["content-type"].startswith("text/html"), path
        assert b"Nothing was changed" in answer.body, path
        assert answer.headers.get("x-frame-options") == "DENY", path  # a page like any other


def test_an_oversized_form_is_refused_before_it_is_read(port: int) -> None:
    for path in [*PAGES, *PROTOCOL, *OKAP]:
        with held_back(port, path, 150 * MiB) as request:
            assert_refused_in_style(path, request.answer(timeout=5), 413)
            assert request.closed(timeout=5), f"{path}: the connection stayed open"


def test_a_chunked_form_is_cut_off_at_its_bound(port: int, live_url: str) -> None:
    """No length to check up front: the count stops it, after about 64 KiB of a 64 MiB
    body (what the socket buffers hold on top of that is the kernel's, never the vault's)."""
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"a" * 64 * 1024)
    for path in ("/signin", "/oauth/token"):
        fields = {"Content-Type": FORM, "Transfer-Encoding": "chunked"}
        with RawRequest(port, head("POST", path, fields)) as request:
            sent = 0
            while sent < 64 * MiB and not request.answered() and request.send(chunk):
                sent += len(chunk)
            assert_refused_in_style(path, request.answer(timeout=5), 413)
            assert sent < 16 * MiB, f"{path}: {sent // MiB} MiB taken before the refusal"
    assert httpx.get(f"{live_url}/healthz").status_code == 200


def test_a_multipart_upload_is_refused_unread(port: int, page_url: str) -> None:
    multipart = "multipart/form-data; boundary=xyz"
    for path in ("/signin", "/setup", "/keys", "/oauth/token", "/okap/authorize"):
        with held_back(port, path, 10 * MiB, **{"Content-Type": multipart}) as request:
            assert_refused_in_style(path, request.answer(timeout=5), 415)
    # And a small, complete upload, as a browser or curl -F would send it.
    answer = httpx.post(
        f"{page_url}/signin",
        data={"username": "alice", "password": "x", "csrf_token": "x"},
        files={"avatar": ("a.png", b"\x89PNG" + b"0" * 1000, "image/png")},
    )
    assert answer.status_code == 415
    assert "File uploads are not accepted here" in answer.text


def trickle(request: RawRequest, seconds: float) -> float | None:
    """Send a byte every 0.1 s until the server answers; how long that took (None if it
    never did within ``seconds``)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if request.answered():
            return time.monotonic() - started
        if not request.send(b"a"):
            return time.monotonic() - started
        time.sleep(0.1)
    return None


def test_a_trickling_form_is_cut_off_at_its_deadline(port: int) -> None:
    for path in ("/signin", "/oauth/token", "/okap/authorize"):
        with held_back(port, path, 1000) as request:
            took = trickle(request, seconds=8)
            assert took is not None, f"{path}: still reading a trickle after 8 s"
            assert took < 4, (path, took)
            assert_refused_in_style(path, request.answer(timeout=2), 408)
            assert request.closed(timeout=5), path


def test_a_bad_token_is_refused_before_the_proxy_reads_the_body(vault: Vault, port: int) -> None:
    """A 32 MiB body (the limit here) is never read for a token that will be refused."""
    revoked = make_grant(vault, entry("openai"))
    revoke(vault, revoked.grant_id)
    other_provider = make_grant(vault, entry("anthropic"))
    cases = {
        "no token": ({}, 401, "invalid_token"),
        "not a token": ({"Authorization": "Bearer sk-nope"}, 401, "invalid_token"),
        "unknown token": ({"Authorization": f"Bearer {new_access_token()}"}, 401, "invalid_token"),
        "revoked": ({"Authorization": f"Bearer {revoked.token}"}, 401, "token_revoked"),
        "other provider": (
            {"Authorization": f"Bearer {other_provider.token}"},
            403,
            "provider_not_granted",
        ),
    }
    for name, (auth, status, code) in cases.items():
        fields = {"Content-Type": "application/json", **auth}
        with held_back(port, CHAT, 32 * MiB, **fields) as request:
            answer = request.answer(timeout=5)
            assert answer is not None, f"{name}: no answer while the body was held back"
            assert answer.status == status, (name, answer.status)
            assert json.loads(answer.body)["error"]["code"] == code  # OpenAI's shape
            assert answer.headers.get("connection") == "close", name
            assert request.closed(timeout=5), f"{name}: the rest of the body was awaited"


def test_a_trickling_proxy_body_is_cut_off_at_its_deadline(
    vault: Vault, port: int, fake_upstream: FakeUpstream
) -> None:
    grant = make_grant(vault, entry("openai"))
    fields = {"Content-Type": "application/json", "Authorization": f"Bearer {grant.token}"}
    with held_back(port, CHAT, 1000, **fields) as request:
        took = trickle(request, seconds=8)
        assert took is not None and took < 4, took
        answer = request.answer(timeout=2)
        assert answer is not None and answer.status == 408
        assert answer.headers["x-okap-error"] == "request_timeout"
        assert json.loads(answer.body)["error"]["code"] == "request_timeout"
        assert request.closed(timeout=5)
    assert fake_upstream.received == []


def test_a_slow_but_steady_proxy_body_gets_through(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    """Each second of the deadline past the first is bought by ``body_min_bytes_per_second``
    received: 6 KiB over ~3 s, chunked, at twice the minimum rate, arrives whole."""
    grant = make_grant(vault, entry("openai"))
    prefix = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "'
    filler = b"x" * 6 * 1024
    suffix = b'"}]}'

    def slowly() -> Iterator[bytes]:
        yield prefix
        for start in range(0, len(filler), 512):
            time.sleep(0.25)
            yield filler[start : start + 512]
        yield suffix

    answer = httpx.post(
        f"{live_url}{CHAT}",
        content=slowly(),
        headers={"authorization": f"Bearer {grant.token}", "content-type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    [received] = fake_upstream.received
    assert received.json["messages"][0]["content"] == filler.decode()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.slow
def test_floods_of_bodies_leave_the_vault_process_flat(
    settings: Settings, vault: Vault, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    """The attack run's numbers, against a real ``okap-server serve``: twelve 32 MiB bodies
    with a bogus token, in parallel, and a 150 MiB sign-in form."""
    env = server_env(settings, fake_upstream)
    with vault_process(env, settings.port, tmp_path / "serve.log") as process:
        for _ in range(5):
            httpx.get(f"http://127.0.0.1:{settings.port}/healthz")
        before = rss_bytes(process.pid)
        peak = before
        block = b"a" * MiB
        flooding = True

        def watch() -> None:  # the peak, not the end: freed buffers go back to the system
            nonlocal peak
            while flooding:
                peak = max(peak, rss_bytes(process.pid))
                time.sleep(0.005)

        def flood(path: str, length: int, **headers: str) -> None:
            with held_back(settings.port, path, length, **headers) as request:
                for _ in range(length // MiB):
                    if request.answered() or not request.send(block):
                        break
                request.answer(timeout=30)

        bogus = {"Authorization": f"Bearer {new_access_token()}"}
        floods = [
            threading.Thread(target=flood, args=(CHAT, 32 * MiB), kwargs=bogus) for _ in range(12)
        ]
        floods.append(threading.Thread(target=flood, args=("/signin", 150 * MiB)))
        watcher = threading.Thread(target=watch)
        watcher.start()
        for thread in floods:
            thread.start()
        for thread in floods:
            thread.join(120)
        flooding = False
        watcher.join()
        grown = peak - before
    assert grown < 40 * MiB, f"the vault grew by {grown // MiB} MiB"
