"""The approval flows driven by hand: every protocol decision, no I/O at all."""

import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from okap_client import AccessDenied, AuthorizationExpired, OkapError
from okap_client.binding import okap_binding_flow
from okap_client.flows import (
    AwaitRedirect,
    FlowContext,
    HttpCall,
    Listen,
    Notice,
    OpenBrowser,
    Reply,
    ShowDeviceCode,
    Sleep,
    browser_flow,
    device_flow,
)
from okap_client.metadata import ServerMetadata
from okap_client.pkce import s256_challenge

VAULT = "http://vault.test"
METADATA = ServerMetadata.from_body(
    {
        "issuer": VAULT,
        "authorization_endpoint": f"{VAULT}/oauth/authorize",
        "token_endpoint": f"{VAULT}/oauth/token",
        "pushed_authorization_request_endpoint": f"{VAULT}/oauth/par",
        "device_authorization_endpoint": f"{VAULT}/oauth/device_authorization",
        "code_challenge_methods_supported": ["S256"],
    },
    VAULT,
)
DETAILS = [{"type": "ai_model_access", "provider": "openai", "models": ["gpt-4o-mini"]}]
TOKEN = {
    "access_token": "okap_x",
    "token_type": "Bearer",
    "expires_in": 60,
    "authorization_details": DETAILS,
}


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def context(clock=None, md=METADATA):
    return FlowContext(
        vault_url=VAULT,
        metadata=md,
        client_id="https://app.example",
        client_name="Example",
        client_uri="https://app.example",
        details=DETAILS,
        authorization_timeout=120,
        clock=clock or Clock(),
        now=lambda: datetime(2026, 1, 1, tzinfo=UTC),
    )


def start_browser_flow(md=METADATA):
    flow = browser_flow(context(md=md))
    assert isinstance(next(flow), Listen)
    return flow


def test_browser_flow_pushes_the_request_then_exchanges_the_code_with_the_verifier():
    flow = start_browser_flow()
    par = flow.send("http://127.0.0.1:5555/callback")
    assert isinstance(par, HttpCall) and par.url == f"{VAULT}/oauth/par"
    assert par.form["response_type"] == "code"
    assert par.form["code_challenge_method"] == "S256"
    assert par.form["redirect_uri"] == "http://127.0.0.1:5555/callback"
    assert json.loads(par.form["authorization_details"]) == DETAILS
    assert par.form["client_name"] == "Example"

    opened = flow.send(
        Reply(201, {"request_uri": "urn:ietf:params:oauth:request_uri:abc", "expires_in": 90})
    )
    assert isinstance(opened, OpenBrowser)
    query = parse_qs(urlsplit(opened.url).query)
    assert query == {
        "client_id": ["https://app.example"],
        "request_uri": ["urn:ietf:params:oauth:request_uri:abc"],
    }

    notice = flow.send(True)
    assert isinstance(notice, Notice) and notice.message.endswith(opened.url)
    wait = flow.send(None)
    assert isinstance(wait, AwaitRedirect) and wait.timeout == 120
    exchange = flow.send({"code": "c0de", "state": par.form["state"], "iss": VAULT})
    assert exchange.url == f"{VAULT}/oauth/token"
    assert exchange.form["grant_type"] == "authorization_code"
    assert exchange.form["code"] == "c0de"
    assert s256_challenge(exchange.form["code_verifier"]) == par.form["code_challenge"]
    with pytest.raises(StopIteration) as done:
        flow.send(Reply(200, TOKEN))
    assert done.value.value.key == "okap_x"


def _to_redirect(flow, opened=True):
    par = flow.send("http://127.0.0.1:5555/callback")
    flow.send(Reply(201, {"request_uri": "urn:x", "expires_in": 90}))
    step = flow.send(opened)
    if opened:
        step = flow.send(None)
    return par.form["state"], step


def test_if_no_browser_opens_the_person_is_shown_the_url():
    flow = start_browser_flow()
    _, step = _to_redirect(flow, opened=False)
    assert isinstance(step, Notice) and f"{VAULT}/oauth/authorize?" in step.message
    assert isinstance(flow.send(None), AwaitRedirect)


def test_a_denial_on_the_consent_page_raises_access_denied():
    flow = start_browser_flow()
    state, _ = _to_redirect(flow)
    with pytest.raises(AccessDenied) as info:
        flow.send(
            {"error": "access_denied", "error_description": "The person said no", "state": state}
        )
    assert info.value.description == "The person said no"


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ({"code": "c", "state": "forged"}, "invalid_state"),
        ({"code": "c", "iss": "http://evil.test"}, "invalid_issuer"),
    ],
)
def test_a_redirect_from_elsewhere_is_refused(answer, code):
    flow = start_browser_flow()
    state, _ = _to_redirect(flow)
    with pytest.raises(OkapError) as info:
        flow.send({"state": state, **answer})
    assert info.value.error == code


def test_no_answer_in_time_is_an_expired_authorization():
    flow = start_browser_flow()
    _to_redirect(flow)
    with pytest.raises(AuthorizationExpired):
        flow.send(None)


def test_a_refused_push_raises_the_vaults_error():
    flow = start_browser_flow()
    flow.send("http://127.0.0.1:5555/callback")
    with pytest.raises(OkapError) as info:
        flow.send(
            Reply(
                400,
                {"error": "invalid_authorization_details", "error_description": "unknown provider"},
            )
        )
    assert info.value.error == "invalid_authorization_details"


def test_without_par_the_parameters_go_in_the_authorize_url():
    md = ServerMetadata.from_body(
        {
            "issuer": VAULT,
            "authorization_endpoint": f"{VAULT}/oauth/authorize",
            "token_endpoint": f"{VAULT}/oauth/token",
        },
        VAULT,
    )
    flow = start_browser_flow(md)
    opened = flow.send("http://127.0.0.1:5555/callback")
    query = parse_qs(urlsplit(opened.url).query)
    assert query["code_challenge_method"] == ["S256"] and "authorization_details" in query


DEVICE = {
    "device_code": "dev",
    "user_code": "WDJB-MJHT",
    "verification_uri": f"{VAULT}/device",
    "verification_uri_complete": f"{VAULT}/device?user_code=WDJB-MJHT",
    "expires_in": 600,
    "interval": 5,
}


def start_device_flow(clock):
    flow = device_flow(context(clock))
    call = next(flow)
    assert call.url == f"{VAULT}/oauth/device_authorization"
    assert json.loads(call.form["authorization_details"]) == DETAILS
    show = flow.send(Reply(200, DEVICE))
    assert isinstance(show, ShowDeviceCode)
    assert show.code.message == f"Open {VAULT}/device?user_code=WDJB-MJHT and enter code WDJB-MJHT"
    return flow


def test_device_flow_polls_at_the_interval_and_slows_down_when_told():
    clock = Clock()
    flow = start_device_flow(clock)
    step = flow.send(None)
    assert step == Sleep(5)
    clock.t += 5
    poll = flow.send(None)
    assert poll.form == {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": "dev",
        "client_id": "https://app.example",
    }
    step = flow.send(Reply(400, {"error": "authorization_pending"}))
    assert step == Sleep(5)
    clock.t += 5
    flow.send(None)
    step = flow.send(Reply(400, {"error": "slow_down"}))
    assert step == Sleep(10)  # RFC 8628 §3.5: +5 seconds, for every later poll
    clock.t += 10
    flow.send(None)
    assert flow.send(Reply(400, {"error": "authorization_pending"})) == Sleep(10)
    clock.t += 10
    flow.send(None)
    with pytest.raises(StopIteration) as done:
        flow.send(Reply(200, TOKEN))
    assert done.value.value.provider == "openai"


def test_a_person_who_approved_while_the_code_was_shown_is_not_kept_waiting():
    clock = Clock()
    flow = start_device_flow(clock)
    clock.t += 30  # the person took 30 s to approve
    assert isinstance(flow.send(None), HttpCall)


@pytest.mark.parametrize(
    ("error", "cls"), [("access_denied", AccessDenied), ("expired_token", AuthorizationExpired)]
)
def test_device_flow_ends_on_denial_or_expiry(error, cls):
    clock = Clock()
    flow = start_device_flow(clock)
    clock.t += 5
    flow.send(None)
    with pytest.raises(cls):
        flow.send(Reply(400, {"error": error}))


def test_device_flow_gives_up_when_the_code_expires():
    clock = Clock()
    flow = start_device_flow(clock)
    clock.t += 601
    with pytest.raises(AuthorizationExpired):
        flow.send(None)


# -- the OKAP v1.0 binding -------------------------------------------------------------

OKAP_MD = ServerMetadata.okap_only(VAULT)
PENDING = {
    "okap": "1.0",
    "status": "pending",
    "poll_url": f"{VAULT}/okap/authorize/q3Zk",
    "consent_url": f"{VAULT}/consent/req_1",
    "interval": 2,
}


def start_okap_flow(can_open=True):
    ctx = context(md=OKAP_MD)
    ctx = FlowContext(**{**ctx.__dict__, "can_open_browser": can_open})
    flow = okap_binding_flow(ctx)
    post = next(flow)
    assert post.method == "POST" and post.url == f"{VAULT}/okap/authorize"
    assert post.json == {
        "okap": "1.0",
        "authorization_details": DETAILS,
        "client": {"name": "Example", "url": "https://app.example"},
    }
    assert post.headers == {"Prefer": "wait=0"}
    return flow


def test_okap_binding_opens_the_consent_page_and_polls_until_granted():
    flow = start_okap_flow()
    assert flow.send(Reply(200, PENDING)) == OpenBrowser(f"{VAULT}/consent/req_1")
    assert flow.send(True) == Sleep(2.0)
    assert flow.send(None) == HttpCall("GET", f"{VAULT}/okap/authorize/q3Zk")
    assert flow.send(Reply(200, PENDING)) == Sleep(2.0)
    flow.send(None)
    granted = {
        "okap": "1.0",
        "status": "granted",
        "token": "okap_y",
        "expires_at": "2026-12-31T00:00:00Z",
        "authorization_details": DETAILS,
    }
    with pytest.raises(StopIteration) as done:
        flow.send(Reply(200, granted))
    token = done.value.value
    assert token.key == "okap_y" and token.provider == "openai"
    assert token.expires_at == datetime(2026, 12, 31, tzinfo=UTC)


def test_okap_binding_without_a_browser_shows_the_consent_url():
    flow = start_okap_flow(can_open=False)
    step = flow.send(Reply(200, PENDING))
    assert step == Notice(f"Open {VAULT}/consent/req_1 to approve the request")


@pytest.mark.parametrize(
    ("answer", "cls"),
    [
        ({"status": "denied", "reason": "No."}, AccessDenied),
        (
            {"status": "denied", "reason": "Too late.", "error": "expired_token"},
            AuthorizationExpired,
        ),
    ],
)
def test_okap_binding_denials(answer, cls):
    flow = start_okap_flow()
    with pytest.raises(cls):
        flow.send(Reply(200, {"okap": "1.0", **answer}))
