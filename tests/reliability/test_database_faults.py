"""Database faults: SQLite held locked past its busy timeout, PostgreSQL cut off and back.
Requests fail cleanly (503 in the native or RFC shape), recover, and nothing is half-written:
no grant without its token response, no settlement lost or held for ever."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy.engine import make_url
from sqlmodel import select

from okap_server.accounts.service import find_account
from okap_server.authorization.models import AuthorizationRequest
from okap_server.context import Vault, open_vault
from okap_server.db.engine import SQLITE_BUSY_TIMEOUT_MS, sqlite_path
from okap_server.grants.models import Grant
from okap_server.settings import Settings
from tests.reliability.books import assert_balanced, settled_books
from tests.reliability.tcp_relay import tcp_relay
from tests.server.proxy.test_sdks import openai_client
from tests.support.fake_upstream import FakeUpstream, SlowStream
from tests.support.grants import entry, make_grant
from tests.support.live import free_port, serve_vault
from tests.support.person import Person

HI = [{"role": "user", "content": "hi"}]
LIMITED = {"daily_spend": 5.0}


@contextmanager
def sqlite_locked(path: Path, seconds: float) -> Iterator[None]:
    """Another process's writer holds the database for ``seconds`` (past the busy timeout)."""
    ready = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(path, timeout=10, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("CREATE TABLE IF NOT EXISTS lock_probe (x INTEGER)")
        ready.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")
        conn.close()

    holder = threading.Thread(target=hold)
    holder.start()
    ready.wait(10)
    try:
        yield
    finally:
        holder.join()


KEY = "sk-proj-DBFAULTS0123456789abcdefXYZ"
OKAP_BODY = {
    "okap": "1.0",
    "authorization_details": [{"type": "ai_model_access", "provider": "openai"}],
    "client": {"name": "Notes", "url": "https://notes.example"},
}


def _multi(fields: list[tuple[str, str]]) -> dict[str, list[str]]:
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    return data


def par_form(n: int) -> dict[str, str]:
    return {
        "client_id": "https://notes.example",
        "redirect_uri": "https://notes.example/cb",
        "response_type": "code",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
        "state": f"s{n}",
        "authorization_details": '[{"type": "ai_model_access", "provider": "openai"}]',
    }


def assert_rfc_error(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"], body


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_locked_past_the_busy_timeout_fails_cleanly_and_recovers(
    settings: Settings,
    vault: Vault,
    live_url: str,
    fake_upstream: FakeUpstream,
    owner: tuple[str, str],
) -> None:
    path = sqlite_path(settings.effective_database_url)
    assert path is not None
    grant = make_grant(vault, entry("openai", limits=LIMITED))
    client = openai_client(live_url, grant.token)
    # Slow (locked for less than the busy timeout): requests wait, then succeed.
    with sqlite_locked(path, 1.0):
        assert client.chat.completions.create(model="gpt-4o-mini", messages=HI, max_tokens=50)
    # A person is about to approve an app when the database locks up.
    with vault.session() as session:
        account = find_account(session, owner[0])
        assert account is not None
        vault.keys.add(session, account_id=account.id, provider="openai", label="k", secret=KEY)
        session.commit()
    person = Person(live_url, *owner)
    with httpx.Client(base_url=live_url) as app:
        pending = app.post("/okap/authorize", json=OKAP_BODY, headers={"prefer": "wait=0"})
    consent = pending.json()["consent_url"]
    page = person.open(consent)
    form = person.form_of(page.text, "/consent/")
    # A stream admitted before the lock finishes while the database is locked: its
    # settlement must wait and be written afterwards, not be lost.
    fake_upstream.script("openai", SlowStream(delay=0.25))
    streamed: list[str] = []

    def read_stream() -> None:
        chunks = client.chat.completions.create(
            model="gpt-4o-mini", messages=HI, max_tokens=50, stream=True
        )
        streamed.append("".join(c.choices[0].delta.content or "" for c in chunks if c.choices))

    reader = threading.Thread(target=read_stream)
    reader.start()
    time.sleep(0.3)  # admitted and streaming
    answers: dict[str, Any] = {}

    def proxied() -> None:
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=HI, max_tokens=50)
        except openai.APIStatusError as exc:
            answers["proxy"] = exc

    def pushed() -> None:
        with httpx.Client(base_url=live_url, timeout=30) as app:
            answers["par"] = app.post("/oauth/par", data=par_form(1))

    def approved() -> None:
        fields = _multi([*form.fields, ("decision", "approve")])
        answers["consent"] = person.client.post(form.action, data=fields)

    with sqlite_locked(path, SQLITE_BUSY_TIMEOUT_MS / 1000 + 2):
        callers = [
            threading.Thread(target=proxied),
            threading.Thread(target=pushed),
            threading.Thread(target=approved),
        ]
        for caller in callers:
            caller.start()
        for caller in [*callers, reader]:
            caller.join()
    assert streamed == ["Hello from the fake upstream."]
    refused = answers["proxy"]
    assert isinstance(refused, openai.InternalServerError)
    assert (refused.status_code, refused.code) == (503, "vault_unavailable")
    assert_rfc_error(answers["par"])
    assert answers["consent"].status_code == 503  # a page that says so, not a traceback
    # Nothing half-written: the approval left no grant and the request still waits.
    with vault.session() as session:
        assert len(session.exec(select(Grant)).all()) == 1  # the test's own grant
        assert session.exec(select(AuthorizationRequest)).one().status == "pending"
    # Recovered: the proxy, the authorization server and the consent page work again.
    assert client.chat.completions.create(model="gpt-4o-mini", messages=HI, max_tokens=50)
    with httpx.Client(base_url=live_url, timeout=30) as app:
        assert app.post("/oauth/par", data=par_form(2)).status_code == 201
        assert person.approve(consent).status_code < 400
        granted = app.get(pending.json()["poll_url"]).json()
    assert granted["status"] == "granted"
    person.close()
    books = settled_books(vault, grant.grant_id, 3)
    assert_balanced(books, 3)  # the refused request was never admitted: nothing to settle
    assert [log.status for log in books.logs] == [200, 200, 200]
    assert all(log.cost_micros > 0 for log in books.logs)


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_postgres_cut_off_mid_load_fails_cleanly_and_recovers(
    settings: Settings, vault: Vault, fake_upstream: FakeUpstream
) -> None:
    """The vault reaches PostgreSQL through a relay this test cuts (all connections dropped,
    new ones refused) and restores, as a server restart looks from the vault's side."""
    url = make_url(settings.effective_database_url)
    with tcp_relay(url.host or "127.0.0.1", url.port or 5432) as relay:
        relayed = url.set(host="127.0.0.1", port=relay.port)
        cut_settings = settings.model_copy(
            update={
                "database_url": relayed.render_as_string(hide_password=False),
                "port": free_port(),
            }
        )
        replica = open_vault(cut_settings)
        try:
            grant = make_grant(vault, entry("openai", limits=LIMITED))
            with serve_vault(replica) as live:
                client = openai_client(live, grant.token)
                results: list[str] = []
                stop = threading.Event()

                def load() -> None:
                    while not stop.is_set():
                        try:
                            client.chat.completions.create(
                                model="gpt-4o-mini", messages=HI, max_tokens=50
                            )
                            results.append("ok")
                        except openai.InternalServerError as exc:
                            assert exc.status_code == 503, exc
                            results.append("503")

                workers = [threading.Thread(target=load) for _ in range(4)]
                for worker in workers:
                    worker.start()
                time.sleep(0.5)
                relay.cut()
                with httpx.Client(base_url=live, timeout=30) as app:
                    assert_rfc_error(app.post("/oauth/par", data=par_form(0)))
                time.sleep(1.0)
                during = len(results)
                relay.restore()
                time.sleep(1.5)
                stop.set()
                for worker in workers:
                    worker.join()
                assert client.chat.completions.create(model="gpt-4o-mini", messages=HI)
                with httpx.Client(base_url=live, timeout=30) as app:
                    assert app.post("/oauth/par", data=par_form(1)).status_code == 201
            ok = results.count("ok") + 1
            assert "503" in results[:during]  # the cut was felt, and answered cleanly
            assert results[-1] == "ok"  # and the vault recovered by itself
            books = settled_books(vault, grant.grant_id, ok)
            assert_balanced(books, ok)
            assert all(log.status == 200 for log in books.logs)
        finally:
            replica.dispose()
    with vault.session() as session:
        assert len(session.exec(select(Grant)).all()) == 1
