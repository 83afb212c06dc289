"""Front door 3: the reference SDK from PyPI (``okap`` 0.1.2), unchanged."""

from __future__ import annotations

import threading

import okap
import pytest
from okap import OkapClient
from okap.errors import AccessDeniedError

from tests.server.authorization.conftest import sqlite_only
from tests.support.person import Person


def test_reference_sdk_gets_a_token_while_a_person_approves(
    live_url: str, person: Person, openai_key: str
) -> None:
    assert okap.__version__ == "0.1.2"
    person.sign_in()
    helper = threading.Thread(
        target=lambda: person.approve_next_pending(timeout=5, models=["gpt-4o-mini"]), daemon=True
    )
    helper.start()
    with OkapClient(live_url, app_name="Notes", app_url="https://notes.example") as client:
        token = client.request_access(
            "openai",
            models=["gpt-4o-mini", "gpt-4o"],
            monthly_limit=10.0,
            reason="Summarise my notes",
        )
    helper.join(5)
    assert token.token.startswith("okap_")
    assert token.base_url == f"{live_url}/v1/openai"
    assert token.provider.value == "openai"
    assert token.models == ["gpt-4o-mini"]
    assert token.limits is not None and token.limits.monthly_spend == 10.0
    assert token.expires_at is not None


def test_reference_sdk_sees_a_denial(live_url: str, person: Person) -> None:
    person.sign_in()
    helper = threading.Thread(target=lambda: person.deny_next_pending(timeout=5), daemon=True)
    helper.start()
    with OkapClient(live_url, app_name="Notes") as client, pytest.raises(AccessDeniedError) as err:
        client.request_access("anthropic")
    helper.join(5)
    assert err.value.code == "access_denied"


@sqlite_only
def test_reference_sdk_times_out_cleanly(live_url: str, person: Person) -> None:
    with OkapClient(live_url, app_name="Notes") as client, pytest.raises(AccessDeniedError) as err:
        client.request_access("openai")  # nobody approves within okap_wait_seconds (4 s)
    assert err.value.code == "timeout"
    assert person.pending() == []  # the abandoned request does not linger
