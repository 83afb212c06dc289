"""Issue 15, consent spoofing: what an app says about itself is shown as it is or refused,
the same way by every front door; an internationalised host is shown with its punycode;
and opening a consent page changes nothing (a GET is safe)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlmodel import select

from okap_server.accounts.service import create_account
from okap_server.authorization.display_text import is_hidden
from okap_server.authorization.models import AuthorizationRequest
from okap_server.context import Vault
from okap_server.settings import Settings
from tests.security.conftest import sqlite_only
from tests.server.authorization.conftest import (
    RedirectListener,
    authorize_params,
    pkce_pair,
    start_code_flow,
)
from tests.support.person import Person

ENTRY = {"type": "ai_model_access", "provider": "openai"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Every hidden character goes through every front door (about 70 requests in a few
    seconds): the doors' rate limits (their own tests are in test_floods.py) are raised out
    of the way so each request reaches the display-text check."""
    return settings.model_copy(
        update={"front_door_per_minute": 100_000, "front_door_client_per_minute": 100_000}
    )


# The class, not one payload: fillers, blanks, bidi, zero-width, wide spaces, variation
# selectors, tags, soft hyphen, unassigned, and U+3164, which str.isprintable() accepts.
HIDDEN = {
    "\u3164": "HANGUL FILLER",
    "\u115f": "HANGUL CHOSEONG FILLER",
    "\uffa0": "HALFWIDTH HANGUL FILLER",
    "\u2800": "BRAILLE PATTERN BLANK",
    "\u034f": "COMBINING GRAPHEME JOINER",
    "\ufe0f": "VARIATION SELECTOR-16",
    "\U000e0041": "TAG LATIN CAPITAL LETTER A",
    "\u00ad": "SOFT HYPHEN",
    "\u200b": "ZERO WIDTH SPACE",
    "\u202e": "RIGHT-TO-LEFT OVERRIDE",
    "\u2066": "LEFT-TO-RIGHT ISOLATE",
    "\u00a0": "NO-BREAK SPACE",
    "\u3000": "IDEOGRAPHIC SPACE",
    "\U0001d159": "MUSICAL SYMBOL NULL NOTEHEAD",
}


def refusals(app: httpx.Client, name: str) -> dict[str, str]:
    """The same display name through every front door; each one's error description."""
    _, challenge = pkce_pair()
    params = authorize_params("http://127.0.0.1:9/cb", challenge, client_name=name)
    seen: dict[str, str] = {}
    code = app.get("/oauth/authorize", params=params)
    assert code.status_code == 303, code.text  # the redirect_uri is good: the error goes there
    query = parse_qs(urlsplit(code.headers["location"]).query)
    assert query["error"] == ["invalid_request"], query
    seen["code"] = query["error_description"][0]
    for door, answer in {
        "par": app.post("/oauth/par", data=params),
        "device": app.post(
            "/oauth/device_authorization",
            data={
                "client_id": "cli",
                "client_name": name,
                "authorization_details": json.dumps([ENTRY]),
            },
        ),
        "okap": app.post(
            "/okap/authorize",
            json={"okap": "1.0", "authorization_details": [ENTRY], "client": {"name": name}},
        ),
        "reference": app.post("/okap/request", json={"provider": "openai", "app_name": name}),
    }.items():
        assert answer.status_code == 400, (door, answer.text)
        body: dict[str, Any] = answer.json()
        assert body["error"] == "invalid_request", (door, body)
        seen[door] = body["error_description"]
    return seen


@sqlite_only
def test_hidden_characters_in_an_apps_name_are_refused_alike_by_every_front_door(
    live_url: str, vault: Vault
) -> None:
    with httpx.Client(base_url=live_url) as app:
        for ch, name in HIDDEN.items():
            assert is_hidden(ch), name
            seen = refusals(app, f"Notes{ch}App")
            reasons = {text.split(": ", 1)[1] for text in seen.values()}
            assert reasons == {f"contains invisible or control characters (U+{ord(ch):04X} {name})"}
            assert {text.split(": ", 1)[0] for text in seen.values()} == {
                "client_name",
                "client.name",
            }
        blank = app.post(
            "/okap/authorize",
            json={
                "okap": "1.0",
                "authorization_details": [ENTRY | {"reason": "Summarise\u3164my notes"}],
                "client": {"name": "Notes", "url": "https://notes.example/\u2800"},
            },
        )
        assert blank.status_code == 400 and "client.url" in blank.json()["error_description"]
        for where in ({"client_id": "Notes\u3164"}, {"client_uri": "https://n.example/\u3164"}):
            _, challenge = pkce_pair()
            params = authorize_params("http://127.0.0.1:9/cb", challenge) | where
            answer = app.post("/oauth/par", data=params)
            assert answer.status_code in (400, 401), where
            assert "invisible" in answer.json()["error_description"], where
        reason = app.post(
            "/oauth/device_authorization",
            data={
                "client_id": "cli",
                "authorization_details": json.dumps([ENTRY | {"reason": "a\u3164b"}]),
            },
        )
        assert reason.json()["error"] == "invalid_authorization_details"
        assert "U+3164 HANGUL FILLER" in reason.json()["error_description"]
        # Visible names in any script are fine, and a reason may span lines.
        fine = app.post(
            "/oauth/device_authorization",
            data={
                "client_id": "cli",
                "client_name": "Заметки · ノート · Notes 2",
                "authorization_details": json.dumps([ENTRY | {"reason": "One.\nTwo."}]),
            },
        )
        assert fine.status_code == 200, fine.text
    with vault.session() as session:
        stored = session.exec(select(AuthorizationRequest)).all()
    assert [r.client_name for r in stored] == ["Заметки · ノート · Notes 2"]


@pytest.mark.parametrize("ch", sorted(HIDDEN))
def test_the_display_check_knows_the_class(ch: str) -> None:
    assert is_hidden(ch)


@sqlite_only
def test_an_internationalised_host_is_shown_with_its_punycode(
    live_url: str, person: Person, openai_key: str
) -> None:
    with httpx.Client(base_url=live_url) as app:
        consent, _ = start_code_flow(
            app, "https://\u0430pple.com/cb", client_uri="https://\u0430pple.com"
        )
    page = person.open(consent).text
    assert "\u0430pple.com" in page  # what the app asked for, as a browser would show it
    assert page.count("xn--pple-43d.com") == 2  # and beside it, what the browser will visit
    assert "letters from other alphabets" in page
    with httpx.Client(base_url=live_url) as app:
        plain, _ = start_code_flow(app, "https://apple.com/cb")
    assert "xn--" not in person.open(plain).text
    assert "other alphabets" not in person.open(plain).text


@sqlite_only
def test_opening_a_consent_page_claims_nothing(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener, vault: Vault
) -> None:
    """GET is safe (RFC 9110 §9.2.1): only the consent form's POST claims a request."""
    with vault.session() as session:
        create_account(session, "bob", "bob's long password")
        session.commit()
    with httpx.Client(base_url=live_url) as app:
        consent, _ = start_code_flow(app, listener.redirect_uri)
    request_id = consent.rsplit("/", 1)[1]

    def claimed_by() -> str | None:
        with vault.session() as session:
            row = session.get(AuthorizationRequest, request_id)
            assert row is not None and row.status == "pending"
            return row.decided_by

    assert person.open(consent).status_code == 200
    assert person.open(consent).status_code == 200
    assert claimed_by() is None
    with Person(live_url, "bob", "bob's long password") as bob:
        assert bob.open(consent).status_code == 200  # still nobody's: bob may look too
        assert claimed_by() is None
        refused = bob.approve(consent, check=False, limits={"daily_spend": "lots"})
        assert refused.status_code == 422  # bob's POST claims it, though nothing is decided
        assert claimed_by() is not None
        assert person.open(consent).status_code == 403
        assert person.approve(consent, check=False).status_code == 403
        assert bob.deny(consent).location is not None  # his to decide
