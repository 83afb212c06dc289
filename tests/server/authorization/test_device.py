"""The device authorization grant (RFC 8628): polling, slow_down, denial, expiry, codes."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlmodel import select

from okap_server.authorization.models import AuthorizationRequest
from okap_server.context import Vault
from tests.server.authorization.conftest import details_json, sqlite_only
from tests.support.person import Person, PersonError

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def start(app: httpx.Client) -> dict[str, Any]:
    response = app.post(
        "/oauth/device_authorization",
        data={
            "client_id": "okap-cli",
            "client_name": "okap CLI",
            "authorization_details": details_json(),
        },
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def poll(app: httpx.Client, device_code: str) -> httpx.Response:
    return app.post(
        "/oauth/token",
        data={"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": "okap-cli"},
    )


def test_device_flow_with_slow_down(
    live_url: str, page_url: str, person: Person, openai_key: str
) -> None:
    with httpx.Client(base_url=live_url) as app:
        started = start(app)
        assert re.fullmatch(
            r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}", started["user_code"]
        )
        assert started["verification_uri"] == f"{page_url}/device"  # a page: on localhost
        assert started["verification_uri_complete"].endswith(f"user_code={started['user_code']}")
        assert started["interval"] == 1
        first = poll(app, started["device_code"])
        assert first.json()["error"] == "authorization_pending"
        too_fast = poll(app, started["device_code"])
        assert too_fast.status_code == 400
        assert too_fast.json()["error"] == "slow_down"
        # Typed in lower case, without the dash: still found.
        person.approve_device(started["user_code"].lower().replace("-", " "))
        time.sleep(6.1)  # slow_down added 5 s to the 1 s interval
        granted = poll(app, started["device_code"])
        assert granted.status_code == 200, granted.text
        assert granted.json()["access_token"].startswith("okap_")


def test_device_denied(live_url: str, person: Person) -> None:
    with httpx.Client(base_url=live_url) as app:
        started = start(app)
        decision = person.deny_device(started["user_code"])
        assert "denied" in decision.message
        response = poll(app, started["device_code"])
    assert response.json()["error"] == "access_denied"


def test_device_code_expires(live_url: str, vault: Vault) -> None:
    with httpx.Client(base_url=live_url) as app:
        started = start(app)
        with vault.session() as session:
            row = session.exec(select(AuthorizationRequest)).one()
            row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
            session.add(row)
            session.commit()
        response = poll(app, started["device_code"])
    assert response.json()["error"] == "expired_token"


@sqlite_only
def test_verification_uri_complete_prefills_but_asks(live_url: str, person: Person) -> None:
    with httpx.Client(base_url=live_url) as app:
        started = start(app)
    page = person.open(started["verification_uri_complete"])
    assert page.status_code == 200
    assert f'value="{started["user_code"]}"' in page.text
    assert page.headers["cache-control"] == "no-store"


def test_wrong_user_codes_are_throttled(live_url: str, person: Person, vault: Vault) -> None:
    limit = vault.settings.user_code_max_failures
    for _ in range(limit):
        try:
            person.enter_user_code("BBBB-BBBB")
        except PersonError as exc:
            assert "not valid" in str(exc)
    with httpx.Client(base_url=live_url) as app:
        started = start(app)
    # Even the right code is refused while throttled.
    try:
        person.enter_user_code(started["user_code"])
        raise AssertionError("a throttled person could still enter codes")
    except PersonError as exc:
        assert "Too many wrong codes" in str(exc)
