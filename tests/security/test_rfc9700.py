"""RFC 9700 (OAuth 2.0 Security Best Current Practice), one test per item not already proven
in tests/server/authorization/ (SPEC.md "RFC 9700 checklist" lists every item)."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import openai
import pytest
from sqlmodel import select

from okap_server.accounts.service import create_account
from okap_server.authorization import pkce
from okap_server.authorization.errors import InvalidGrant
from okap_server.authorization.models import AuthorizationRequest
from okap_server.context import Vault
from tests.security.conftest import sqlite_only
from tests.server.authorization.conftest import (
    RedirectListener,
    authorize_params,
    code_from,
    pkce_pair,
    redeem,
    start_code_flow,
)
from tests.support.person import Person

HI = [{"role": "user", "content": "hi"}]


def approved_code(live_url: str, person: Person, listener: RedirectListener) -> tuple[str, str]:
    """(code, verifier) of a code flow the person approved."""
    with httpx.Client(base_url=live_url) as app:
        consent, verifier = start_code_flow(app, listener.redirect_uri)
    got = code_from(person.approve(consent).location, listener)
    return got["code"], verifier


# -- §4.1.3: exact redirect URI matching -------------------------------------------------


@sqlite_only
def test_redirect_uri_is_matched_exactly_at_the_token_endpoint(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener
) -> None:
    code, verifier = approved_code(live_url, person, listener)
    exact = listener.redirect_uri  # http://127.0.0.1:PORT/callback
    port = urlsplit(exact).port
    variants = [
        exact + "/",
        exact + "?x=1",
        exact.replace("/callback", "/Callback"),
        exact.replace("/callback", "/%63allback"),
        exact.replace("/callback", "/callback/../callback"),
        exact.replace(f":{port}", f":{(port or 0) + 1}"),
        exact.replace("127.0.0.1", "localhost"),
        exact.replace("127.0.0.1", "[::1]"),
        exact.replace("http://", "https://"),
        exact.upper(),
    ]
    with httpx.Client(base_url=live_url) as app:
        for variant in variants:
            response = redeem(app, code, verifier, variant)
            assert response.status_code == 400, variant
            assert response.json()["error"] == "invalid_grant", variant
        assert redeem(app, code, verifier, exact).status_code == 200


BAD_REDIRECTS = [
    "https://notes.example@evil.example/cb",  # userinfo: looks like notes.example
    "http://127.0.0.1.evil.example/cb",  # a host that starts like loopback
    "http://0x7f.0.0.1/cb",
    "http://2130706433/cb",
    "javascript:alert(1)//https://notes.example",
    "data:text/html,hi",
    "https:///evil.example",
    "//evil.example/cb",
    "https://notes.example/cb#frag",
]


@sqlite_only
def test_no_open_redirect_through_a_bad_redirect_uri(live_url: str) -> None:
    """An invalid redirect_uri is reported on a page, never followed (RFC 9700 §4.11.2)."""
    _, challenge = pkce_pair()
    for redirect_uri in BAD_REDIRECTS:
        params = authorize_params(redirect_uri, challenge, response_type="nonsense")
        response = httpx.get(f"{live_url}/oauth/authorize", params=params)
        assert response.status_code == 400, redirect_uri
        assert "location" not in response.headers, redirect_uri
        pushed = httpx.post(f"{live_url}/oauth/par", data=params)
        assert pushed.status_code in (400, 401), redirect_uri


UNVERIFIED_ERRORS = {
    "unsupported_response_type": {"response_type": "token"},
    "invalid_request": {"code_challenge_method": "plain"},
    "invalid_authorization_details": {"authorization_details": '[{"type": "nope"}]'},
    "state too long": {"state": "s" * 1025},
}


@sqlite_only
@pytest.mark.parametrize("redirect_uri", ["https://evil.example/login", "https://notes.example/cb"])
@pytest.mark.parametrize("error", sorted(UNVERIFIED_ERRORS))
def test_no_open_redirect_through_an_error_to_an_unverified_redirect_uri(
    live_url: str, redirect_uri: str, error: str, listener: RedirectListener
) -> None:
    """An error is only redirected to a redirect_uri the vault can trust (RFC 9700 §4.11.2):
    an https one is self-asserted, even on the client_id's own site, so the error is shown
    on the vault's page instead. A loopback app still hears its errors (RFC 8252 §7.3)."""
    _, challenge = pkce_pair()
    extra = UNVERIFIED_ERRORS[error]
    params = authorize_params(redirect_uri, challenge, **extra)
    response = httpx.get(f"{live_url}/oauth/authorize", params=params)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "evil.example" not in response.text and "notes.example/cb" not in response.text
    assert "not valid" in response.text
    loopback = httpx.get(
        f"{live_url}/oauth/authorize",
        params=authorize_params(listener.redirect_uri, challenge, **extra),
    )
    assert loopback.status_code == 303
    assert loopback.headers["location"].startswith(listener.redirect_uri + "?error=")


# -- §2.1.1, §4.8: PKCE required, no downgrade -----------------------------------------


@sqlite_only
def test_pkce_cannot_be_downgraded(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener
) -> None:
    """The challenge itself sent as the verifier (a ``plain`` downgrade) is refused, and so
    are verifiers that are not RFC 7636 verifiers."""
    verifier, challenge = pkce_pair()
    with httpx.Client(base_url=live_url) as app:
        params = authorize_params(listener.redirect_uri, challenge)
        consent = app.get("/oauth/authorize", params=params).headers["location"]
        got = code_from(person.approve(consent).location, listener)
        for wrong in (challenge, verifier + "x", verifier[:42], verifier.upper(), " " + verifier):
            refused = redeem(app, got["code"], wrong, listener.redirect_uri)
            assert refused.status_code == 400, wrong
            assert refused.json()["error"] == "invalid_grant"
        assert redeem(app, got["code"], verifier, listener.redirect_uri).status_code == 200


def test_a_verifier_without_a_challenge_is_refused() -> None:
    """RFC 9700 §4.8.2: a code_verifier at /token for a flow that had no challenge."""
    with pytest.raises(InvalidGrant, match="no code_challenge"):
        pkce.verify(None, "a" * 50)
    with pytest.raises(InvalidGrant):
        pkce.verify("", "a" * 50)


@sqlite_only
def test_par_refuses_anything_but_s256(live_url: str, listener: RedirectListener) -> None:
    _, challenge = pkce_pair()
    for method in ("plain", "s256", "S512", ""):
        params = authorize_params(listener.redirect_uri, challenge, code_challenge_method=method)
        response = httpx.post(f"{live_url}/oauth/par", data=params)
        assert response.status_code == 400, method
        assert response.json()["error"] == "invalid_request"


# -- §4.5: codes single use; replay revokes what the code gave ---------------------------


def test_a_replayed_code_kills_the_token_at_the_proxy_too(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener
) -> None:
    code, verifier = approved_code(live_url, person, listener)
    with httpx.Client(base_url=live_url) as app:
        token = redeem(app, code, verifier, listener.redirect_uri).json()["access_token"]
        client = openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=token, max_retries=0)
        assert client.chat.completions.create(model="gpt-4o-mini", messages=HI).choices
        assert redeem(app, code, verifier, listener.redirect_uri).status_code == 400
    with pytest.raises(openai.AuthenticationError) as refused:
        client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert refused.value.code == "token_revoked"


# -- §4.2.4, §4.3: no token in a URL or a Referer ----------------------------------------


@sqlite_only
def test_no_token_in_any_url_and_no_referrer_from_any_page(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener
) -> None:
    seen_urls: list[str] = []
    seen_pages: list[httpx.Response] = []

    def record(response: httpx.Response) -> None:
        seen_urls.append(str(response.request.url))
        if "location" in response.headers:
            seen_urls.append(response.headers["location"])
        if response.headers.get("content-type", "").startswith("text/html"):
            seen_pages.append(response)

    person.client.event_hooks["response"].append(record)
    code, verifier = approved_code(live_url, person, listener)
    with httpx.Client(base_url=live_url, event_hooks={"response": [record]}) as app:
        token = redeem(app, code, verifier, listener.redirect_uri).json()["access_token"]
        # The OKAP binding: pending, then the poll URL; the token only ever in a body.
        body = {
            "okap": "1.0",
            "authorization_details": [{"type": "ai_model_access", "provider": "openai"}],
            "client": {"name": "Notes", "url": "https://notes.example"},
        }
        pending = app.post("/okap/authorize", json=body, timeout=10).json()
        assert pending["status"] == "pending"
        person.approve(pending["consent_url"])
        granted = app.get(pending["poll_url"]).json()
        assert granted["status"] == "granted"
        for path in ("/", "/apps", "/activity", "/keys", "/consent", "/device", "/settings"):
            person.open(path)
    assert seen_pages
    for page in seen_pages:
        assert page.headers.get("referrer-policy") == "no-referrer", page.request.url
    for url in seen_urls:
        assert token not in url and granted["token"] not in url
        assert "okap_" not in url, url


# -- §4.11: no open redirect at sign-in ------------------------------------------------------

NEXT_TRICKS = [
    "//evil.example/x",
    "https://evil.example/x",
    "/\\evil.example",
    "\\\\evil.example",
    "http:evil.example",
    "javascript:alert(1)",
    " //evil.example",
    "/\t/evil.example",
    "/\r\nLocation: https://evil.example",
    "%2F%2Fevil.example",
]


@sqlite_only
def test_sign_in_never_redirects_off_the_vault(page_url: str, owner: tuple[str, str]) -> None:
    for next_url in NEXT_TRICKS:
        with httpx.Client(base_url=page_url) as browser:
            page = browser.get("/signin", params={"next": next_url})
            form = Person(page_url, *owner).form_of(page.text, "/signin")
            data = dict(form.fields) | {"username": owner[0], "password": owner[1]}
            response = browser.post("/signin", data=data)
        assert response.status_code == 303, next_url
        location = response.headers["location"]
        target = urlsplit(str(httpx.URL(page_url).join(location)))
        assert target.netloc == urlsplit(page_url).netloc, location
        assert not location.startswith(("//", "/\\")), location
        assert "\n" not in location and "\r" not in location


# -- §4.16: clickjacking -------------------------------------------------------------------


@sqlite_only
def test_every_page_refuses_framing(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener
) -> None:
    with httpx.Client(base_url=live_url) as app:
        consent, _ = start_code_flow(app, listener.redirect_uri)
        bad = app.get("/oauth/authorize", params={"client_id": "x"})
        missing = app.get("/no-such-page")
    pages = [person.open(consent), bad, missing]
    pages += [person.open(p) for p in ("/", "/apps", "/keys", "/activity", "/settings")]
    pages.append(person.open("/device?user_code=BCDF-GHJK"))
    for page in pages:
        assert page.headers.get("x-frame-options") == "DENY", page.request.url
        csp = page.headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in csp, page.request.url


# -- §4.4 / RFC 6749 §10.12: CSRF ---------------------------------------------------------


def test_a_csrf_token_of_another_session_is_refused(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener, vault: Vault
) -> None:
    with vault.session() as session:
        create_account(session, "mallory", "mallory's long password")
        session.commit()
    with httpx.Client(base_url=live_url) as app:
        consent, _ = start_code_flow(app, listener.redirect_uri)
    page = person.open(consent)
    form = person.form_of(page.text, "/consent/")
    with Person(live_url, "mallory", "mallory's long password") as mallory:
        theirs = mallory.form_of(mallory.open("/device").text, "/device")
    stolen = dict(theirs.fields)["csrf_token"]
    fields = [(n, stolen if n == "csrf_token" else v) for n, v in form.fields]
    forged = person.client.post(form.action, data=_multi(fields + [("decision", "approve")]))
    assert forged.status_code == 403
    # The device form and sign-out need the token too.
    assert person.client.post("/device", data={"user_code": "BCDF-GHJK"}).status_code == 403
    assert person.client.post("/signout").status_code in (403, 422)
    with vault.session() as session:
        row = session.exec(select(AuthorizationRequest)).one()
    assert row.status == "pending"


def _multi(fields: list[tuple[str, str]]) -> dict[str, list[str]]:
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    return data


# -- §4.1.1 / RFC 6749 §10.2: consent cannot be skipped ----------------------------------


def test_consent_cannot_be_skipped(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener, vault: Vault
) -> None:
    """Neither a GET carrying the decision, nor prompt=none, nor the app having been approved
    before gets a code or a token without the person's Approve."""
    first, verifier = approved_code(live_url, person, listener)
    with httpx.Client(base_url=live_url) as app:
        assert redeem(app, first, verifier, listener.redirect_uri).status_code == 200
        consent, _ = start_code_flow(app, listener.redirect_uri, prompt="none")
    shown = person.open(consent + "?decision=approve&csrf_token=x")
    assert shown.status_code == 200 and "Approve" in shown.text
    person.client.get(consent, params={"decision": "approve"})
    with vault.session() as session:
        rows = session.exec(select(AuthorizationRequest)).all()
    assert sorted(r.status for r in rows) == ["approved", "pending"]
    assert len(listener.received) == 1  # only the first, approved, flow reached the app
    # The OKAP binding waits for the person, then says pending; polling does not approve.
    with httpx.Client(base_url=live_url) as app:
        body = {
            "okap": "1.0",
            "authorization_details": [{"type": "ai_model_access", "provider": "openai"}],
            "client": {"name": "Notes", "url": "https://notes.example"},
        }
        pending = app.post("/okap/authorize", json=body, timeout=10).json()
        assert pending["status"] == "pending"
        for _ in range(3):
            assert app.get(pending["poll_url"]).json()["status"] == "pending"


# -- RFC 8628 §5.1: user-code guessing from several accounts of one address ---------------


def test_user_code_guessing_is_throttled_per_address_across_accounts(
    live_url: str, person: Person, vault: Vault
) -> None:
    limit = vault.settings.user_code_max_failures
    names = ["guess1", "guess2", "guess3"]
    with vault.session() as session:
        for name in names:
            create_account(session, name, f"{name}'s long password")
        session.commit()
    guessers = [Person(live_url, n, f"{n}'s long password") for n in names]
    statuses: list[int] = []
    for n in range(2 * limit + 2):
        guesser = guessers[n % len(guessers)]
        page = guesser.open("/device")
        form = guesser.form_of(page.text, "/device")
        data = dict(form.fields) | {"user_code": f"BCDF-{'GHJKLMNP'[n % 8] * 4}"}
        statuses.append(guesser.client.post("/device", data=data).status_code)
    for guesser in guessers:
        guesser.close()
    # No account reached its own limit, but the address did: guessing stopped.
    assert statuses[: 2 * limit] == [400] * (2 * limit)
    assert statuses[2 * limit :] == [429, 429]


def test_code_lifetime_is_at_most_sixty_seconds() -> None:
    """RFC 9700 §4.5 recommends short-lived codes: the setting cannot be raised past 60 s."""
    from pydantic import ValidationError

    from okap_server.settings import Settings

    with pytest.raises(ValidationError):
        Settings(code_ttl_seconds=61)
