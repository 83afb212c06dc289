"""The error answers SPEC.md settles where a second implementation could differ: a body
that is not JSON is ``invalid_request``, a missing ``authorization_details`` is
``invalid_authorization_details`` on every door, a bad ``client_id`` is a ``400`` page at
``/oauth/authorize`` (no client authentication happens there) and ``401 invalid_client``
where a client presents itself to an endpoint (``/oauth/par``, the device endpoint), the
OKAP client id when the app names nothing, and ``slow_down`` compounding (RFC 8628 §3.5)."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlmodel import select

from okap_server.authorization.models import AuthorizationRequest
from okap_server.context import Vault
from tests.server.authorization.conftest import authorize_params, details_json, pkce_pair

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.mark.parametrize("door", ["/okap/authorize", "/okap/request"])
def test_a_body_that_is_not_json_is_invalid_request(live_url: str, door: str) -> None:
    answer = httpx.post(
        f"{live_url}{door}", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
    assert answer.json()["error_description"].startswith("body: not valid JSON")


def test_missing_details_are_invalid_authorization_details_on_every_door(live_url: str) -> None:
    okap = httpx.post(f"{live_url}/okap/authorize", json={"okap": "1.0", "client": {"name": "x"}})
    device = httpx.post(f"{live_url}/oauth/device_authorization", data={"client_id": "cli"})
    for answer in (okap, device):
        assert answer.status_code == 400
        assert answer.json()["error"] == "invalid_authorization_details"
        assert answer.json()["error_description"] == "authorization_details: is required"


def test_a_bad_client_id_is_a_page_at_authorize_and_401_where_a_client_calls(
    live_url: str,
) -> None:
    _, challenge = pkce_pair()
    params = authorize_params("http://127.0.0.1:9/cb", challenge, client_id="")
    page = httpx.get(f"{live_url}/oauth/authorize", params=params)
    assert page.status_code == 400 and "location" not in page.headers
    assert "text/html" in page.headers["content-type"] and "invalid_client" in page.text
    pushed = httpx.post(f"{live_url}/oauth/par", data=params)
    assert pushed.status_code == 401 and pushed.json()["error"] == "invalid_client"
    device = httpx.post(
        f"{live_url}/oauth/device_authorization",
        data={"client_id": "", "authorization_details": details_json()},
    )
    assert device.status_code == 401 and device.json()["error"] == "invalid_client"


def test_an_okap_request_naming_no_client_is_unnamed_app(vault: Vault, live_url: str) -> None:
    body = {
        "okap": "1.0",
        "authorization_details": [{"type": "ai_model_access", "provider": "openai"}],
    }
    answer = httpx.post(f"{live_url}/okap/authorize", json=body, headers={"Prefer": "wait=0"})
    assert answer.status_code == 200 and answer.json()["status"] == "pending"
    with vault.session() as session:
        stored = session.exec(select(AuthorizationRequest)).one()
    assert (stored.client_id, stored.client_name) == ("unnamed-app", "Unnamed app")


def test_slow_down_adds_five_seconds_each_time(live_url: str) -> None:
    started = httpx.post(
        f"{live_url}/oauth/device_authorization",
        data={"client_id": "cli", "authorization_details": details_json()},
    ).json()
    interval = started["interval"]
    poll = {"grant_type": DEVICE_GRANT, "device_code": started["device_code"], "client_id": "cli"}
    first = httpx.post(f"{live_url}/oauth/token", data=poll).json()
    assert first["error"] == "authorization_pending"
    for step in (1, 2):
        early = httpx.post(f"{live_url}/oauth/token", data=poll).json()
        assert early["error"] == "slow_down"
        assert early["error_description"] == f"poll at most every {interval + 5 * step} seconds"
    time.sleep(interval + 0.1)  # the old interval is no longer enough: it grew to +10 s
    assert httpx.post(f"{live_url}/oauth/token", data=poll).json()["error"] == "slow_down"
