"""Unauthenticated floods (issue 15): every front door that stores a request for a person is
capped per source, per client on a source and in total, and rate-limited per source and per
client, with each door's own RFC error and ``Retry-After``; a flood never crowds real
requests out of the Pending list. Over real HTTP, from two loopback addresses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from okap_server.settings import Settings
from tests.security.conftest import sqlite_only
from tests.server.authorization.conftest import (
    RedirectListener,
    authorize_params,
    pkce_pair,
)
from tests.support.live import client_from
from tests.support.person import Person

REAL_APP = "https://notes.example"
DETAILS = [{"type": "ai_model_access", "provider": "openai", "models": ["gpt-4o-mini"]}]
PLENTY = 10_000


def okap_request(client: httpx.Client, name: str, url: str | None = None) -> httpx.Response:
    """POST /okap/authorize as an app of that name (its client id is self-asserted)."""
    body = {"okap": "1.0", "authorization_details": DETAILS, "client": {"name": name}}
    if url:
        body["client"]["url"] = url  # type: ignore[index]
    return client.post("/okap/authorize", json=body, headers={"Prefer": "wait=0"})


def par_request(client: httpx.Client, client_id: str) -> httpx.Response:
    _, challenge = pkce_pair()
    params = authorize_params("http://127.0.0.1:5000/cb", challenge, client_id=client_id)
    return client.post("/oauth/par", data=params)


def device_request(client: httpx.Client, client_id: str) -> httpx.Response:
    return client.post(
        "/oauth/device_authorization",
        data={"client_id": client_id, "authorization_details": json.dumps(DETAILS)},
    )


def refused(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    assert body["error"] == error, body
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["cache-control"] == "no-store"
    return body


@pytest.fixture
def elsewhere(live_url: str) -> Iterator[httpx.Client]:
    """A second machine: connections from 127.0.0.2."""
    with client_from("127.0.0.2", live_url) as client:
        yield client


@pytest.fixture
def here(live_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_url) as client:
        yield client


class TestCaps:
    """Small caps, generous rates: what is refused is refused for room, not for speed."""

    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={
                "pending_max_per_client": 3,
                "pending_max_per_source": 5,
                "pending_max_total": 8,
                "front_door_per_minute": PLENTY,
                "front_door_client_per_minute": PLENTY,
            }
        )

    def test_a_flood_hits_the_caps_and_real_requests_still_get_in(
        self,
        live_url: str,
        here: httpx.Client,
        elsewhere: httpx.Client,
        person: Person,
        listener: RedirectListener,
    ) -> None:
        # A flood from one address naming the real app: three wait, the fourth is refused
        # with the OKAP door's code, and none of it is stored.
        for _ in range(3):
            assert okap_request(here, "Notes", REAL_APP).json()["status"] == "pending"
        body = refused(okap_request(here, "Notes", REAL_APP), 429, "slow_down")
        assert body["okap"] == "1.0" and body["status"] == "error"
        # The same address with new names fills up to its own cap, then every door refuses
        # in its own words.
        assert okap_request(here, "Other 1").status_code == 200
        assert par_request(here, "https://other.example").status_code == 201
        refused(okap_request(here, "Other 2"), 429, "slow_down")
        refused(par_request(here, "https://other2.example"), 429, "temporarily_unavailable")
        refused(device_request(here, "other-cli"), 429, "slow_down")
        # The real app on its own machine is not crowded out by the flood that named it.
        assert par_request(elsewhere, REAL_APP).status_code == 201
        assert device_request(elsewhere, "okap-cli").status_code == 200
        real = okap_request(elsewhere, "Notes", REAL_APP).json()["consent_url"]
        # The vault is now full (8): everyone gets a 503, whatever their address.
        refused(okap_request(elsewhere, "Late"), 503, "temporarily_unavailable")
        refused(device_request(elsewhere, "late-cli"), 503, "temporarily_unavailable")
        # In the browser: to a loopback app the error is redirected, to anyone else shown.
        _, challenge = pkce_pair()
        params = authorize_params(listener.redirect_uri, challenge)
        response = elsewhere.get("/oauth/authorize", params=params)
        assert response.status_code == 303
        query = parse_qs(urlsplit(response.headers["location"]).query)
        assert query["error"] == ["temporarily_unavailable"]
        assert query["state"] == ["state-123"]
        params = authorize_params("https://notes.example/cb", challenge)
        response = elsewhere.get("/oauth/authorize", params=params)
        assert response.status_code == 503
        assert "location" not in response.headers
        assert int(response.headers["retry-after"]) >= 1
        assert "Too many requests" in response.text
        # The person sees the real request.
        assert real in person.pending()


class TestBigFlood:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={
                "pending_max_per_client": PLENTY,
                "pending_max_per_source": PLENTY,
                "pending_max_total": PLENTY,
                "front_door_per_minute": PLENTY,
                "front_door_client_per_minute": PLENTY,
            }
        )

    def test_a_flood_never_pushes_real_requests_off_the_pending_list(
        self, here: httpx.Client, elsewhere: httpx.Client, person: Person
    ) -> None:
        real = okap_request(elsewhere, "Notes", REAL_APP).json()["consent_url"]
        other = okap_request(elsewhere, "Notes CLI").json()["consent_url"]
        for _ in range(60):  # newer than the real ones, and more than the list shows
            assert okap_request(here, "Flood").json()["status"] == "pending"
        shown = person.pending()
        assert len(shown) == 50
        # Each source's and each app's newest first, then their second newest: the real
        # requests are in the first two rounds, however many the flood sent.
        assert {real, other} <= set(shown[:4])


class TestRateLimits:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={"front_door_per_minute": 5, "front_door_client_per_minute": 3}
        )

    @sqlite_only  # in process memory: no storage difference
    def test_each_door_answers_429_with_retry_after_per_source_and_per_client(
        self, live_url: str, here: httpx.Client, elsewhere: httpx.Client
    ) -> None:
        for _ in range(3):
            assert okap_request(here, "Chatty").status_code == 200
        # The app asked three times this minute: it waits, its neighbour does not.
        refused(okap_request(here, "Chatty"), 429, "slow_down")
        assert device_request(here, "quiet-cli").status_code == 200
        # Five requests from this address this minute (the refused one counted): it waits,
        # whatever the door, before its body is even read.
        refused(par_request(here, "https://quiet.example"), 429, "temporarily_unavailable")
        refused(device_request(here, "quiet-cli"), 429, "slow_down")
        refused(here.post("/okap/request", content=b"{}"), 429, "slow_down")
        _, challenge = pkce_pair()
        page = here.get(
            "/oauth/authorize", params=authorize_params("https://quiet.example/cb", challenge)
        )
        assert page.status_code == 429 and "location" not in page.headers
        assert int(page.headers["retry-after"]) >= 1
        # Another machine is not slowed down by this one.
        assert par_request(elsewhere, "https://quiet.example").status_code == 201
        assert okap_request(elsewhere, "Chatty").status_code == 200
