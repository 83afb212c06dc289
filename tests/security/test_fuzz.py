"""Bounded fuzzing of the protocol and management endpoints with schemathesis, from the
schema the running vault publishes at /openapi.json (over real HTTP on loopback).

Every operation gets valid and deliberately invalid requests, signed out and signed in as an
admin or a plain account, with and without the session's real CSRF token, real ids in the
path and a real okap token, so the dashboard forms are reached past their sign-in and CSRF
checks. The vault never answers 5xx, every answer matches what the schema documents (status,
media type, JSON body), no secret appears in any answer, protocol errors keep the RFC 6749
shape, and the vault still serves afterwards."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    CheckContext,
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from okap_server.accounts.service import create_account, find_account
from okap_server.context import Vault
from okap_server.manage.management_tokens import SCOPES, create_token
from okap_server.settings import Settings
from okap_server.web.csrf import PRESESSION_COOKIE
from okap_server.web.openapi import DASHBOARD_TAG
from okap_server.web.sessions import cookie_name
from tests.security.conftest import OPENAI_SECRET
from tests.support.grants import FAKE_KEYS, entry, make_grant
from tests.support.person import Person

EXAMPLES_PER_OPERATION = 12  # per generation mode (positive, negative)
JSON_ERROR_PATHS = ("/oauth/", "/okap/")
# Signing out with the real token would end the session the other cases use.
KEEPS = ("/signout",)
BOB = ("bob", "bob's long passphrase 42")
CAROL = ("carol", "carol's long passphrase 42")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """No waiting for a person: every OKAP request answers at once; the front doors' rate
    limits and pending caps (tested in test_floods.py) out of the way of the generated
    cases, so whether a case is stored depends only on what it says."""
    return settings.model_copy(
        update={
            "okap_wait_seconds": 0.0,
            "front_door_per_minute": 100_000,
            "front_door_client_per_minute": 100_000,
            "pending_max_per_source": 100_000,  # the caps too: every run stores many
            "pending_max_per_client": 100_000,
            "pending_max_total": 1_000_000,
        }
    )


@dataclass
class Browser:
    """A signed-in session: its cookies and the CSRF token its forms carry."""

    cookies: dict[str, str]
    csrf: str


@dataclass
class World:
    """What the fuzzer may use to get past the first checks: sessions, ids, a token."""

    sessions: dict[str, Browser | None]
    ids: dict[str, str]  # path parameter name -> a real id
    token: str
    management: str  # an okapm_ token of the admin with every scope (/api/v1)
    presession: tuple[str, str]  # (cookie nonce, the sign-in form's value for it)
    secrets: list[str] = field(default_factory=list)


def signed_in(live_url: str, username: str, password: str) -> Browser:
    person = Person(live_url, username, password)
    page = person.open("/device")
    token = dict(person.form_of(page.text, "/device").fields)["csrf_token"]
    cookies = {c.name: c.value or "" for c in person.client.cookies.jar}
    person.close()
    return Browser(cookies, token)


def presession_pair(page_url: str) -> tuple[str, str]:
    """A genuine pre-session cookie and its form value, as a browser gets them."""
    with httpx.Client(base_url=page_url) as browser:
        page = browser.get("/signin")
        form = dict(Person(page_url, "", "").form_of(page.text, "/signin").fields)
        return browser.cookies[PRESESSION_COOKIE], form["csrf_token"]


def world(live_url: str, vault: Vault, owner: tuple[str, str], settings: Settings) -> World:
    with vault.session() as session:
        for name, password in (BOB, CAROL):
            create_account(session, name, password)
        session.commit()
        alice = find_account(session, owner[0])
        carol = find_account(session, CAROL[0])
        assert alice is not None and carol is not None
        key = vault.keys.add(
            session, account_id=alice.id, provider="openai", label="fuzz", secret=OPENAI_SECRET
        )
        session.commit()
        carol_id, key_id = carol.id, key.id
    issued = make_grant(vault, entry("openai"), username=owner[0])
    with vault.session() as session:
        admin = find_account(session, owner[0])
        assert admin is not None
        _, management = create_token(session, admin, name="fuzz", scopes=list(SCOPES))
        session.commit()
    pending = httpx.post(
        f"{live_url}/okap/authorize",
        json={
            "okap": "1.0",
            "authorization_details": [{"type": "ai_model_access", "provider": "openai"}],
        },
    )
    assert pending.status_code == 200 and pending.json()["status"] == "pending", pending.text
    body = pending.json()
    request_id = body["consent_url"].rstrip("/").rsplit("/", 1)[-1]
    handle = body["poll_url"].rstrip("/").rsplit("/", 1)[-1]
    sessions: dict[str, Browser | None] = {
        "signed out": None,
        "admin": signed_in(live_url, *owner),
        "member": signed_in(live_url, *BOB),
    }
    secrets = [OPENAI_SECRET, *FAKE_KEYS.values(), issued.token, management]
    secrets += [owner[1], BOB[1], CAROL[1]]
    session_cookie = cookie_name(settings)  # (the pre-session token is shown in its form)
    secrets += [b.cookies[session_cookie] for b in sessions.values() if b]
    if settings.master_key_file.exists():
        secrets.append(settings.master_key_file.read_text().strip())
    return World(
        sessions=sessions,
        ids={
            "grant_id": issued.grant_id,
            "key_id": key_id,
            "request_id": request_id,
            "account_id": carol_id,
            "handle": handle,
        },
        token=issued.token,
        management=management,
        presession=presession_pair(settings.effective_page_url),
        secrets=[s for s in secrets if len(s) >= 8],
    )


def no_secret_in(secrets: list[str]) -> Callable[[CheckContext, Any, Any], bool]:
    def no_secret_in_response(ctx: CheckContext, response: Any, case: Any) -> bool:
        headers = {k: v for k, v in response.headers.items() if k.lower() != "set-cookie"}
        shown = response.text + repr(headers)
        leaked = [s[:6] + "..." for s in secrets if s in shown]
        assert not leaked, f"secrets in the response: {leaked}"
        return True

    return no_secret_in_response


def rfc6749_error_shape(ctx: CheckContext, response: Any, case: Any) -> bool:
    """Protocol errors are RFC 6749 §5.2 JSON, never FastAPI's 422 ``{"detail": ...}``."""
    path = case.operation.path
    if (
        response.status_code >= 400
        and path.startswith(JSON_ERROR_PATHS)
        and path != "/oauth/authorize"
    ):
        assert response.status_code != 422, f"FastAPI validation error: {response.text[:200]}"
        body = response.json()
        assert isinstance(body, dict) and isinstance(body.get("error"), str), (
            f"not an RFC 6749 error: {response.text[:200]}"
        )
    return True


VALID_VALUES: dict[str, str] = {
    "provider": "openai",
    "authorization_details": json.dumps([{"type": "ai_model_access", "provider": "openai"}]),
    "redirect_uri": "https://notes.example/cb",
    "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    "code_challenge_method": "S256",
    "response_type": "code",
    "client_id": "https://notes.example",
}
# Requests that only get stored when all of these are right: filled in whole.
STARTS_A_REQUEST = {
    "/oauth/par": (
        "client_id",
        "authorization_details",
        "redirect_uri",
        "code_challenge",
        "code_challenge_method",  # absent means "plain" (RFC 7636 §4.3), which is refused
        "response_type",
    ),
    "/oauth/device_authorization": ("client_id", "authorization_details"),
}


def with_real_values(path: str, body: dict[str, Any]) -> None:
    """Valid values for the fields the fuzzer hardly ever guesses (a known provider, a
    well-formed authorization_details), so requests get past validation and are stored."""
    starts = STARTS_A_REQUEST.get(path, ())
    if starts:  # only fields the endpoint reads: junk names are repeated or refused
        for name in [n for n in body if n not in VALID_VALUES]:
            del body[name]
    for name in starts:
        body[name] = VALID_VALUES[name]
    for name, value in VALID_VALUES.items():
        if isinstance(body.get(name), str):
            body[name] = value
    details = body.get("authorization_details")
    if isinstance(details, list):
        for item in details:
            if isinstance(item, dict):
                item["provider"] = "openai"


def prepare(case: Any, world: World, who: str, real: bool) -> dict[str, str] | None:
    """With ``real``, put the world's values into the generated case (the session's CSRF
    token, real ids in the path, a live okap token); return the cookies to send."""
    browser = world.sessions[who]
    form = case.body if isinstance(case.body, dict) else None
    if real and form is not None and case.operation.path == "/signin":
        nonce, form["csrf_token"] = world.presession  # matches its cookie: reach the password
        return {PRESESSION_COOKIE: nonce}
    page_form = DASHBOARD_TAG in (case.operation.tags or [])
    if real and form is not None and browser and page_form and case.operation.path not in KEEPS:
        form["csrf_token"] = browser.csrf
    if real and form is not None:
        with_real_values(case.operation.path, form)
    if real and case.path_parameters:
        for name in case.path_parameters:
            if name in world.ids:
                case.path_parameters[name] = world.ids[name]
    if real and case.operation.path.startswith("/api/"):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {world.management}"}
    elif real and case.headers and "Authorization" in case.headers:
        case.headers["Authorization"] = f"Bearer {world.token}"
    return browser.cookies if browser else None


@pytest.mark.parametrize("backend", ["sqlite"])
def test_fuzz_the_published_surface(
    live_url: str, page_url: str, vault: Vault, owner: tuple[str, str], settings: Settings
) -> None:
    things = world(live_url, vault, owner, settings)
    started = time.monotonic()
    schema = schemathesis.openapi.from_url(f"{live_url}/openapi.json")
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
        response_headers_conformance,
    ]
    extra = [no_secret_in(things.secrets), rfc6749_error_shape]
    problems: list[str] = []
    reached: dict[str, set[int]] = {}
    past_the_door: dict[str, set[int]] = {}  # signed in, with the real CSRF token
    # Operations the admin's own session tried for real: a member's try of an admins-only
    # form is a 403 by design, and the derandomised draws may give an operation only those.
    admin_tried: set[str] = set()
    spent: dict[str, float] = {}
    cases = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        for mode in schemathesis.GenerationMode:
            strategy = operation.as_strategy(generation_mode=mode)

            @given(
                case=strategy,
                who=st.sampled_from(sorted(things.sessions)),
                real=st.booleans(),
            )
            @hypothesis_settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any, who: str, real: bool) -> None:
                nonlocal cases
                cases += 1
                cookies = prepare(case, things, who, real)
                response = case.call(  # on the pages' host: a page on 127.0.0.1 is a 307
                    base_url=page_url, cookies=cookies, allow_redirects=False, timeout=15
                )
                reached.setdefault(operation.label, set()).add(response.status_code)
                if who != "signed out" and (real or case.method == "GET"):
                    past_the_door.setdefault(operation.label, set()).add(response.status_code)
                    if who == "admin":
                        admin_tried.add(operation.label)
                try:
                    case.validate_response(response, checks=checks, additional_checks=extra)
                except FailureGroup as exc:
                    for failure in exc.exceptions:
                        problems.append(
                            f"{case.method} {case.formatted_path} -> {response.status_code}: "
                            f"{failure.title}: {str(failure.message)[:300]}"
                        )

            began = time.monotonic()
            try:
                run()
            except Unsatisfiable:  # nothing to make invalid (no parameters)
                continue
            finally:
                spent[operation.label] = spent.get(operation.label, 0.0) + time.monotonic() - began
    took = time.monotonic() - started
    print(f"\nfuzz: {len(reached)} operations, {cases} cases in {took:.1f}s")
    for label, statuses in sorted(reached.items()):
        print(f"  {label}: {sorted(statuses)} ({spent[label]:.1f}s)")
    assert problems == [], "\n".join(sorted(set(problems))[:40])
    assert cases >= 600
    # Signed in with the real CSRF token, every dashboard form got past its sign-in and CSRF
    # checks (an answer other than 403), and the forms did their work for real ids.
    dashboard = {
        op.label
        for op in (r.ok() for r in schema.get_all_operations())  # type: ignore[union-attr]
        if DASHBOARD_TAG in (op.tags or []) and op.path not in ("/signin", "/setup", "/signout")
    }
    assert len(dashboard) >= 18, dashboard
    stuck = {
        label: past_the_door.get(label)
        for label in dashboard
        if not past_the_door.get(label, set()) - {403}
        and (label in admin_tried or not label.startswith("POST /admin/"))
    }
    assert not stuck, stuck
    assert 401 in reached["POST /signin"], reached["POST /signin"]  # the password was checked
    assert 200 in past_the_door["GET /pending/status"]
    for label, status in (
        ("POST /oauth/par", 201),
        ("POST /oauth/device_authorization", 200),
        ("POST /okap/authorize", 200),
        ("POST /okap/request", 200),
        ("GET /okap/usage", 200),
        ("POST /keys", 303),
        ("GET /api/v1/grants", 200),
        ("GET /api/v1/grants/{grant_id}", 200),
        ("GET /api/v1/provider-keys", 200),
        ("GET /api/v1/events", 200),
    ):
        assert status in reached[label], (label, reached[label])
    assert httpx.get(f"{live_url}/healthz").status_code == 200


def test_the_secret_check_catches_a_leak() -> None:
    check = no_secret_in([OPENAI_SECRET])

    @dataclass
    class Answer:
        text: str
        headers: dict[str, str]

    assert check(None, Answer("fine", {"x-a": "b"}), None)  # type: ignore[arg-type]
    for leaky in (Answer(f"key: {OPENAI_SECRET}", {}), Answer("", {"x-key": OPENAI_SECRET})):
        with pytest.raises(AssertionError, match="secrets in the response"):
            check(None, leaky, None)  # type: ignore[arg-type]
