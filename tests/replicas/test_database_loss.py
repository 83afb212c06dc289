"""A replica cut off from PostgreSQL answers 503 on every surface, in the caller's own shape,
while the other replica keeps serving; when the database is back it recovers by itself.

The cut is made with a TCP relay between that one replica and the shared PostgreSQL server
(tests/reliability/tcp_relay.py): every connection dropped and new ones refused, as a
database restart or a network partition looks from the replica. The server itself is never
stopped.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from sqlalchemy.engine import make_url

from tests.reliability.tcp_relay import tcp_relay
from tests.replicas.conftest import Team
from tests.replicas.processes import running_replicas
from tests.support.fake_upstream import FakeUpstream
from tests.support.grants import entry, make_grant
from tests.support.person import Person, PersonError, page_message

# One team of replicas per test session: with ``--dist loadgroup`` these tests share one
# xdist worker, and so one pair of replicas (with plain ``-n`` each worker starts its own).
pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.xdist_group("team")]

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
PAR = {
    "client_id": "https://notes.example",
    "redirect_uri": "https://notes.example/cb",
    "response_type": "code",
    "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    "code_challenge_method": "S256",
    "state": "s1",
    "authorization_details": '[{"type": "ai_model_access", "provider": "openai"}]',
}
OKAP = {
    "okap": "1.0",
    "authorization_details": [{"type": "ai_model_access", "provider": "openai"}],
    "client": {"name": "Notes"},
}


def openai_client(base: str, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1/openai", api_key=token, max_retries=0)


def wait_until_ready(url: str, timeout: float) -> float:
    started = time.monotonic()
    while httpx.get(f"{url}/readyz", timeout=10).status_code != 200:
        assert time.monotonic() - started < timeout, "the replica did not recover by itself"
        time.sleep(0.1)
    return time.monotonic() - started


def test_replica_without_its_database_answers_503_and_recovers_by_itself(
    team: Team, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    url = make_url(team.env["OKAP_DATABASE_URL"])
    with tcp_relay(url.host or "127.0.0.1", url.port or 5432) as relay:
        relayed = url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
        env = {**team.env, "OKAP_DATABASE_URL": relayed}
        with running_replicas(["cut"], env, tmp_path) as (cut,):
            grant = make_grant(team.vault, entry("openai", limits={"daily_spend": 5.0}))
            client = openai_client(cut.url, grant.token)
            assert client.chat.completions.create(model="gpt-4o-mini", messages=HI)
            person = Person(cut.url, "grant-owner", "correct horse battery staple")
            assert person.open("/").status_code == 200

            relay.cut()
            cut_at = time.monotonic()
            ready = httpx.get(f"{cut.url}/readyz", timeout=10)
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"] == "unreachable"
            assert httpx.get(f"{cut.url}/healthz", timeout=10).status_code == 200  # alive
            # The proxy: the provider's own error shape, so the SDK raises its usual class.
            with pytest.raises(openai.InternalServerError) as refused:
                client.chat.completions.create(model="gpt-4o-mini", messages=HI)
            assert (refused.value.status_code, refused.value.code) == (503, "vault_unavailable")
            # The authorization server: RFC 6749 JSON, and the OKAP binding's own shape.
            par = httpx.post(f"{cut.url}/oauth/par", data=PAR, timeout=10)
            assert par.status_code == 503
            assert par.json()["error"] == "temporarily_unavailable"
            assert par.headers["retry-after"] == "5"
            okap = httpx.post(f"{cut.url}/okap/authorize", json=OKAP, timeout=10)
            assert okap.status_code == 503
            assert okap.json()["okap"] == "1.0"
            assert okap.json()["error"] == "temporarily_unavailable"
            # Pages: an error page that says what is wrong (no 500, no traceback).
            page = person.client.get("/")
            assert page.status_code == 503
            assert "text/html" in page.headers["content-type"]
            assert "cannot reach its database" in page_message(page.text)
            assert "Traceback" not in page.text
            newcomer = Person(cut.url, "grant-owner", "correct horse battery staple")
            with newcomer, pytest.raises(PersonError, match="sign-in failed \\(503\\).*database"):
                newcomer.sign_in()
            assert time.monotonic() - cut_at < 10  # every answer came quickly, none hung
            # The other replica keeps serving the same grant meanwhile.
            assert openai_client(team.b.url, grant.token).chat.completions.create(
                model="gpt-4o-mini", messages=HI
            )

            relay.restore()
            recovered_in = wait_until_ready(cut.url, timeout=15)
            assert client.chat.completions.create(model="gpt-4o-mini", messages=HI)
            assert person.open("/").status_code == 200  # the session survived, in the database
            assert httpx.post(f"{cut.url}/oauth/par", data=PAR, timeout=10).status_code == 201
            person.close()
            print(f"\nrecovered {recovered_in:.2f}s after the database came back")
            assert "Traceback" not in cut.log()
